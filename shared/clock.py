"""The one clock: every service reads the time through `utcnow()`.

Always timezone-aware UTC. Columns that hold times are `shared.db.UTCDateTime`, which stores
UTC on every backend and reads it back aware, so a time read from a database compares with
`utcnow()` without conversion. Code that decides by time takes `now` (or a `clock`) as a
parameter, so tests pass their own. `woken` is the one way a loop waits for a wake-up or
its interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

DESK_TZ = ZoneInfo("America/Chicago")
"""The desk's time zone: what staff read (the console, reports, staff emails) is in it. The
routing policy states its own (`timezone`) for desk hours."""


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


async def woken(event: asyncio.Event, within_s: float) -> bool:
    """Wait until `event` is set or `within_s` seconds pass; whether it was set. A cancel always
    reaches the caller: `asyncio.timeout`, not `asyncio.wait_for`, which on Python 3.11 returns
    the event's result when a cancel lands in the same loop iteration and drops the cancel."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            return await event.wait()
    return False
