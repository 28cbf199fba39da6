"""Whole units of database work in one hop from the event loop.

Through SQLAlchemy's asyncio layer on aiosqlite every statement, fetch and commit is its own
hand-off to the connection's worker thread (about 100 µs of CPU each on a small machine). A
batch written as one synchronous function over a `Connection` runs here instead:

- SQLite files: on a dedicated thread with its own synchronous connection (WAL, busy timeout,
  as `shared.db.create_engine` configures), so one unit of work costs one thread hop;
- PostgreSQL (asyncpg) and in-memory SQLite: through the async engine's `run_sync`.

Each `UnitRunner` runs one unit at a time, in one transaction, committed when the function
returns and rolled back if it raises.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import sqlite_pragmas

T = TypeVar("T")


class UnitRunner:
    """Runs `fn(connection)` as one transaction, one unit at a time."""

    def __init__(self, engine: AsyncEngine, *, name: str) -> None:
        self.engine = engine
        self._sync: Engine | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        url = make_url(str(engine.url.render_as_string(hide_password=False)))
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=1,
            )
            event.listen(self._sync, "connect", sqlite_pragmas)
            self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    async def __call__(self, fn: Callable[[Connection], T]) -> T:
        """Run fn in a transaction and return its result."""
        if self._sync is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        sync = self._sync
        if self._thread is None:
            raise RuntimeError("closed")

        def unit() -> T:
            with sync.begin() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._thread, unit)

    def close(self) -> None:
        """Release the connection and the thread (after the unit in progress, if any)."""
        thread, self._thread = self._thread, None
        if thread is not None and self._sync is not None:
            thread.submit(self._sync.dispose).result()
            thread.shutdown(wait=True)
