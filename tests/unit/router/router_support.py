"""Shared data helpers for the router policy tests (imported by name: pytest prepend mode)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
OPEN = datetime(2025, 10, 1, 15, 0, tzinfo=UTC)
"""A Wednesday, 10:00 in Chicago: the desk is open."""


def read_jsonl(name: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file in tests/unit/router/data."""
    text = (DATA / name).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
