"""The notifier's unit tier: a migrated send ledger in a SQLite file, for the tests that run the
Deliverer over a real database."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.db import create_engine, migrate


@pytest.fixture
async def ledger_url(tmp_path: Path) -> str:
    """The URL of a fresh send ledger, migrated to head."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    engine = create_engine(url)
    await migrate(engine, "notifier")
    await engine.dispose()
    return url
