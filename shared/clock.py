"""The one clock: every service reads the time through `utcnow()`.

Always timezone-aware UTC. Columns that hold times are `shared.db.UTCDateTime`, which stores
UTC on every backend and reads it back aware, so a time read from a database compares with
`utcnow()` without conversion. Code that decides by time takes `now` (or a `clock`) as a
parameter, so tests pass their own.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)
