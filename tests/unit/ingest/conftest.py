"""Ingest's use cases through fakes of its ports: a broker that records what is published, and
the real store on a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.ingest.service import Ingest
from services.ingest.store import IngestStore
from shared.db import create_engine, migrate
from tests.fakes import FakeBroker


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[IngestStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}")
    await migrate(engine, "ingest")
    store = IngestStore(engine, ttl=timedelta(days=7))
    await store.start()
    yield store
    await store.close()
    await engine.dispose()


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def ingest(broker: FakeBroker, store: IngestStore) -> Ingest:
    return Ingest(
        broker=broker,  # type: ignore[arg-type]
        store=store,
        publish_timeout_s=2.0,
        sms_window=timedelta(hours=24),
        connected=True,
    )
