"""Whole units of database work in one hop from the event loop.

Through SQLAlchemy's asyncio layer on aiosqlite every statement, fetch and commit is its own
hand-off to the connection's worker thread (about 100 µs of CPU each on a small machine). A
batch written as one synchronous function over a `Connection` runs here instead:

- SQLite files: on a dedicated thread holding one synchronous connection for its life (WAL,
  busy timeout, as `shared.db.create_engine` configures), so one unit of work costs one hand-off
  to the thread and one wake-up back: a `queue.SimpleQueue` there and
  `loop.call_soon_threadsafe` back, as aiosqlite hands off its statements. A thread pool's
  future chaining and a pool check-out per unit had cost 220-250 µs of CPU per unit against
  135-145 µs (docs/performance.md);
- PostgreSQL: the same, on a thread holding one synchronous psycopg connection. Through the
  async engine's `run_sync` every statement of a unit had been a greenlet switch and an
  asyncpg round trip driven from the event loop (docs/performance.md, "December 5"). asyncpg's
  `ssl` option becomes libpq's `sslmode`; a URL with any other query parameter (asyncpg's own
  connection options) keeps that path;
- in-memory SQLite: through the async engine's `run_sync`.

Each `UnitRunner` runs one unit at a time, in one transaction, committed when the function
returns and rolled back if it raises. Every unit's time is observed by runner
(`refdesk_db_unit_duration_seconds`: waiting for the runner, then running), and a unit that
took SLOW_UNIT_S or more in all is logged at WARNING with both figures and the unit's name
(never its statements or parameters), so a stalled database is named when it happens.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import sqlite_pragmas
from shared.metrics import DB_UNIT_SECONDS

log = logging.getLogger(__name__)

T = TypeVar("T")

SLOW_UNIT_S = 1.0
"""A unit that waited and ran this long in all is logged at WARNING: at the desk's rates a
unit takes a few milliseconds, so a second means the database (a lock, a checkpoint, the disk)
held every request of the service behind it."""

_Unit = tuple[Callable[[Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]", float]


class _Timing:
    """One runner's unit timings: its two histogram series, bound once."""

    def __init__(self, runner: str) -> None:
        self.runner = runner
        self.wait = DB_UNIT_SECONDS.labels(runner=runner, phase="wait")
        self.run = DB_UNIT_SECONDS.labels(runner=runner, phase="run")

    def observe(self, fn: Callable[..., Any], handed: float, began: float, ended: float) -> None:
        """Count one unit's time: handed over, begun and ended (time.perf_counter)."""
        waited, ran = began - handed, ended - began
        self.wait.observe(waited)
        self.run.observe(ran)
        if waited + ran >= SLOW_UNIT_S:
            log.warning(
                "a unit of database work was slow",
                extra={
                    "runner": self.runner,
                    "unit": getattr(fn, "__qualname__", type(fn).__name__),
                    "waited_ms": round(waited * 1e3, 1),
                    "ran_ms": round(ran * 1e3, 1),
                },
            )


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the caller stopped waiting; the unit ran (or failed) all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


LIBPQ_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def _psycopg(url: URL) -> URL | None:
    """The async engine's PostgreSQL URL for psycopg: the driver swapped, asyncpg's `ssl` mode
    given as libpq's `sslmode`. None if the URL has options psycopg would read otherwise."""
    query = dict(url.query)
    ssl = query.pop("ssl", None)
    if query or (ssl is not None and ssl not in LIBPQ_SSL_MODES):
        return None
    psycopg = url.set(drivername="postgresql+psycopg", query={})
    return psycopg if ssl is None else psycopg.update_query_dict({"sslmode": ssl})


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


class UnitRunner:
    """Runs `fn(connection)` as one transaction, one unit at a time."""

    def __init__(self, engine: AsyncEngine, *, name: str) -> None:
        self.engine = engine
        self._timing = _Timing(name)
        self._sync: Engine | None = None
        self._units: queue.SimpleQueue[_Unit | None] | None = None
        self._thread: threading.Thread | None = None
        url = make_url(str(engine.url.render_as_string(hide_password=False)))
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._sync = create_engine(
                url.set(drivername="sqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=1,
            )
            event.listen(self._sync, "connect", sqlite_pragmas)
        elif url.get_backend_name() == "postgresql" and (synchronous := _psycopg(url)):
            self._sync = create_engine(synchronous, pool_size=1)
        if self._sync is not None:
            self._units = queue.SimpleQueue()
            # a daemon: an interpreter that exits without close() is not held by an idle
            # thread (a unit cut short is a transaction the database rolls back)
            self._thread = threading.Thread(
                target=self._work,
                args=(self._timing, self._sync, self._units),
                name=name,
                daemon=True,
            )
            self._thread.start()

    @staticmethod
    def _work(timing: _Timing, sync: Engine, units: queue.SimpleQueue[_Unit | None]) -> None:
        """The database thread: run units in arrival order until close() sends None."""
        conn: Connection | None = None
        try:
            while (unit := units.get()) is not None:
                fn, loop, future, handed = unit
                began = time.perf_counter()
                result, error = None, None
                try:
                    if conn is not None and (conn.invalidated or conn.closed):
                        # dropped before connecting anew: when that connect failed (the
                        # database restarting, refusing connections for a few seconds), the
                        # closed connection had stayed, and every later unit failed on it
                        # until the process restarted
                        conn.close()
                        conn = None
                    if conn is None:
                        conn = sync.connect()
                    with conn.begin():
                        result = fn(conn)
                except BaseException as exc:  # whatever it is, the caller gets it
                    error = exc
                try:
                    timing.observe(fn, handed, began, time.perf_counter())
                finally:  # the caller has its answer whatever the metrics did
                    try:
                        loop.call_soon_threadsafe(_settle, future, result, error)
                    except RuntimeError:  # the caller's loop is closed: nobody to tell
                        pass
        finally:
            if conn is not None:
                conn.close()
            sync.dispose()

    async def __call__(self, fn: Callable[[Connection], T]) -> T:
        """Run fn in a transaction and return its result."""
        handed = time.perf_counter()
        if self._sync is None:
            began = handed
            try:
                async with self.engine.begin() as conn:
                    began = time.perf_counter()  # a pool connection and BEGIN are the wait
                    return await conn.run_sync(fn)  # the commit is part of the run
            finally:
                self._timing.observe(fn, handed, began, time.perf_counter())
        if self._units is None:
            raise RuntimeError("closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._units.put((fn, loop, future, handed))
        return await future

    async def ping(self, timeout_s: float = 1.0) -> bool:
        """Whether a trivial unit runs within `timeout_s` on this runner: its thread's own
        connection answers and no unit holds the thread (a database that stopped answering
        keeps the engine's fresh connections working, or failing fast, while every unit of the
        hot path waits). /readyz asks it, so a balancer stops sending work to a replica whose
        database work is stuck."""
        try:
            await asyncio.wait_for(self(_select_one), timeout_s)
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Release the connection and the thread (after the units already handed over)."""
        units, self._units = self._units, None
        if units is not None and self._thread is not None:
            units.put(None)
            self._thread.join()
