"""`shared.syncdb.UnitRunner` on a SQLite file and on PostgreSQL (psycopg): each unit one
transaction on the runner's own thread, committed when it returns and rolled back when it
raises, in the order handed over; a caller that stops waiting does not stop the runner;
close() finishes what was handed over; every unit is timed, and a slow one is logged by name,
without its data."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from shared import syncdb
from shared.db import create_engine
from shared.syncdb import UnitRunner


@pytest.fixture
async def runner(database_url: str) -> AsyncIterator[UnitRunner]:
    engine = create_engine(database_url)
    units = UnitRunner(engine, name="test-units")
    await units(lambda conn: conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")))
    yield units
    units.close()
    await engine.dispose()


def rows(conn: Connection) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in conn.execute(text("SELECT id, v FROM t ORDER BY id"))]


def insert(row_id: int, value: str) -> Callable[[Connection], None]:
    def unit(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (id, v) VALUES (:id, :v)"), {"id": row_id, "v": value})

    return unit


async def test_a_unit_commits_when_it_returns_and_rolls_back_when_it_raises(
    runner: UnitRunner,
) -> None:
    await runner(insert(1, "kept"))

    def half_then_fail(conn: Connection) -> None:
        insert(2, "dropped")(conn)
        insert(1, "duplicate")(conn)

    with pytest.raises(IntegrityError):
        await runner(half_then_fail)
    assert await runner(rows) == [(1, "kept")]


async def test_units_run_on_the_runners_thread_in_the_order_handed_over(runner: UnitRunner) -> None:
    names: list[str] = []

    def where(conn: Connection) -> None:
        names.append(threading.current_thread().name)

    await asyncio.gather(*(runner(insert(i, f"v{i}")) for i in range(1, 51)), runner(where))
    assert [row_id for row_id, _ in await runner(rows)] == list(range(1, 51))
    assert names == ["test-units"]


async def test_a_caller_that_stops_waiting_leaves_the_runner_working(runner: UnitRunner) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(conn: Connection) -> None:
        started.set()
        release.wait(5)
        insert(7, "written anyway")(conn)

    waiting = asyncio.create_task(runner(slow))
    await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    assert await runner(rows) == [(7, "written anyway")]


async def test_close_finishes_the_units_handed_over_then_refuses_more(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'close.db'}")
    units = UnitRunner(engine, name="test-close")
    await units(lambda conn: conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")))
    pending = [asyncio.ensure_future(units(insert(i, "late"))) for i in range(3)]
    await asyncio.sleep(0)  # handed over
    await asyncio.to_thread(units.close)
    await asyncio.gather(*pending)  # each answered, none failed
    with pytest.raises(RuntimeError, match="closed"):
        await units(rows)
    reopened = UnitRunner(engine, name="test-reopen")
    assert len(await reopened(rows)) == 3
    reopened.close()
    await engine.dispose()


def unit_seconds(runner: str, phase: str) -> tuple[float, float]:
    """(count, sum) of refdesk_db_unit_duration_seconds for one runner and phase."""
    count = REGISTRY.get_sample_value(
        "refdesk_db_unit_duration_seconds_count", {"runner": runner, "phase": phase}
    )
    total = REGISTRY.get_sample_value(
        "refdesk_db_unit_duration_seconds_sum", {"runner": runner, "phase": phase}
    )
    return count or 0.0, total or 0.0


async def test_each_unit_is_timed_and_a_slow_one_is_named_without_its_data(
    runner: UnitRunner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(syncdb, "SLOW_UNIT_S", 0.2)
    before_run, before_wait = unit_seconds("test-units", "run"), unit_seconds("test-units", "wait")

    def slow_write(conn: Connection) -> None:
        insert(9, "Maria Lopez 1234567")(conn)
        time.sleep(0.3)

    with caplog.at_level(logging.WARNING, logger="shared.syncdb"):
        await asyncio.gather(runner(slow_write), runner(rows))  # rows waits behind slow_write

    run_count, run_sum = unit_seconds("test-units", "run")
    wait_count, wait_sum = unit_seconds("test-units", "wait")
    assert run_count - before_run[0] == 2 and wait_count - before_wait[0] == 2
    assert run_sum - before_run[1] >= 0.3
    assert wait_sum - before_wait[1] >= 0.25  # the second unit's wait for the first

    slow = [r for r in caplog.records if r.getMessage() == "a unit of database work was slow"]
    assert [r.__dict__["unit"] for r in slow] == [
        "test_each_unit_is_timed_and_a_slow_one_is_named_without_its_data.<locals>.slow_write",
        "rows",
    ]
    first, second = (r.__dict__ for r in slow)
    assert first["runner"] == "test-units" and first["ran_ms"] >= 300
    assert second["waited_ms"] >= 250  # named for its wait behind slow_write
    assert all("Maria" not in str(r.__dict__) and "1234567" not in str(r.__dict__) for r in slow)


async def test_a_postgres_url_with_asyncpg_options_keeps_the_async_engine(
    database_url: str,
) -> None:
    """psycopg would not understand asyncpg's options in the URL's query: such a URL keeps
    its units on the async engine (`run_sync`)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    assert await driver_of(f"{database_url}?command_timeout=30") == "asyncpg"
    assert await driver_of(database_url) == "psycopg"


async def driver_of(url: str) -> str:
    """The driver a runner's units run on."""
    engine = create_engine(url)
    units = UnitRunner(engine, name="test-driver-units")
    try:
        return await units(lambda conn: str(conn.dialect.driver))
    finally:
        units.close()
        await engine.dispose()


@pytest.mark.parametrize(
    ("given", "synchronous"),
    [
        (
            "postgresql+asyncpg://u:p@db:5432/refdesk_router",
            "postgresql+psycopg://u:p@db:5432/refdesk_router",
        ),
        (
            "postgresql+asyncpg://u:p@db/r?ssl=require",
            "postgresql+psycopg://u:p@db/r?sslmode=require",
        ),
        (
            "postgresql+asyncpg://u:p@db/r?ssl=verify-full",
            "postgresql+psycopg://u:p@db/r?sslmode=verify-full",
        ),
        ("postgresql+asyncpg://u:p@db/r?ssl=true", None),
        ("postgresql+asyncpg://u:p@db/r?command_timeout=30", None),
    ],
)
def test_the_postgres_url_for_psycopg(given: str, synchronous: str | None) -> None:
    made = syncdb._psycopg(make_url(given))
    assert (None if made is None else made.render_as_string(hide_password=False)) == synchronous


async def test_a_runner_whose_connection_died_connects_again_for_the_next_unit(
    database_url: str,
) -> None:
    """PostgreSQL restarted (or an operator ended the session): the unit that meets the dead
    connection fails, as any database error does (the caller retries: a consumer's batch comes
    again, a webhook is answered 503), and the next unit runs on a new connection."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = create_engine(database_url)
    units = UnitRunner(engine, name="test-reconnecting-units")
    try:
        first = await units(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(OperationalError):
            await units(lambda conn: conn.execute(text("SELECT 1")).scalar())
        second = await units(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
        assert second != first
    finally:
        units.close()
        await engine.dispose()


async def test_units_through_the_async_engine_are_timed_with_their_commit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """In-memory SQLite (and PostgreSQL) run units through the async engine's run_sync."""
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    units = UnitRunner(engine, name="test-async-units")
    monkeypatch.setattr(syncdb, "SLOW_UNIT_S", 0.2)
    before = unit_seconds("test-async-units", "run")

    def slow(conn: Connection) -> int:
        time.sleep(0.25)
        return int(conn.execute(text("SELECT 1")).scalar_one())

    with caplog.at_level(logging.WARNING, logger="shared.syncdb"):
        assert await units(slow) == 1
    count, total = unit_seconds("test-async-units", "run")
    assert count - before[0] == 1 and total - before[1] >= 0.25
    [warned] = [r for r in caplog.records if r.getMessage() == "a unit of database work was slow"]
    assert warned.__dict__["runner"] == "test-async-units"
    units.close()
    await engine.dispose()


async def test_a_runner_that_cannot_connect_for_a_while_connects_once_it_can(
    database_url: str,
) -> None:
    """The database refused connections for a few seconds after the runner's connection died
    (a restart, a failover): the unit that tried to connect failed, and so did every unit
    after it, on the closed connection left behind, until the process restarted (ingest
    answered 500 to every webhook, the notifier sent nothing, the router decided nothing)."""
    engine = create_engine(database_url)
    units = UnitRunner(engine, name="test-refused-units")
    refusing = threading.Event()
    sync = units._sync
    assert sync is not None

    def connect(*_: object) -> None:
        if refusing.is_set():
            raise OperationalError("connect", {}, Exception("the database refuses connections"))

    event.listen(sync, "do_connect", connect)
    try:
        await units(lambda conn: conn.execute(text("SELECT 1")).scalar())
        refusing.set()

        def dies(conn: Connection) -> None:
            conn.invalidate()
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

        with pytest.raises(OperationalError):
            await units(dies)  # the connection died under a unit
        for _ in range(3):
            with pytest.raises(OperationalError):
                await units(lambda conn: conn.execute(text("SELECT 1")).scalar())
        refusing.clear()  # the database is back
        assert await units(lambda conn: conn.execute(text("SELECT 2")).scalar()) == 2
    finally:
        units.close()
        await engine.dispose()


async def test_ping_says_whether_a_unit_runs_in_time(runner: UnitRunner) -> None:
    """/readyz asks the runner itself: a thread held by a unit that does not end (a database
    that stopped answering) is not ready, whatever a fresh connection of the pool says."""
    assert await runner.ping()
    release = threading.Event()
    held = asyncio.ensure_future(runner(lambda _conn: release.wait(30)))
    try:
        assert not await runner.ping(timeout_s=0.3)
    finally:
        release.set()
        await held
    assert await runner.ping()
