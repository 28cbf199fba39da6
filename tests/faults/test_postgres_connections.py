"""On PostgreSQL, the database compose deploys: every connection the services hold is dropped
twice while texts and chats arrive (as a restart of the server, or a failover, drops them),
and every interaction still arrives once, decided once and answered once.

Runs where REFDESK_TEST_POSTGRES_URL names a server (.ci/run starts one): the deployment gets a
fresh database per service there, dropped at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.eventually import eventually
from tests.faults import report
from tests.faults.system import SERVICES, System, ledger_summary, start_system
from tests.faults.test_short import assert_clean
from tests.faults.traffic import Progress, drive, flatten, make_traffic, settle

SERVER = os.environ.get("REFDESK_TEST_POSTGRES_URL", "")
pytestmark = [
    pytest.mark.short_faults,
    pytest.mark.postgres,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not SERVER, reason="REFDESK_TEST_POSTGRES_URL not set"),
]
PREFIX = f"refdesk_f_{uuid.uuid4().hex[:8]}"


async def on_server(sql: str, *args: object) -> list[asyncpg.Record]:
    url = make_url(SERVER)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database or "postgres",
    )
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole deployment, each service on a database of its own on the server."""
    names = [f"{PREFIX}_{service}" for service in SERVICES]
    for name in names:
        asyncio.run(on_server(f'CREATE DATABASE "{name}"'))
    url = make_url(SERVER).set(database="DATABASE").render_as_string(hide_password=False)
    try:
        running = start_system(
            Path(tmp_path_factory.mktemp("faults-postgres")),
            REFDESK_DATABASE_URL=url.replace("DATABASE", f"{PREFIX}_{{service}}"),
        )
        try:
            yield running
        finally:
            running.stop()
    finally:
        for name in names:
            asyncio.run(on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def drop_connections() -> int:
    """End every session on the deployment's databases; how many there were."""
    rows = await on_server(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE $1",
        f"{PREFIX}_%",
    )
    return len(rows)


async def test_every_database_connection_dropped_twice_under_traffic(system: System) -> None:
    convs = make_traffic(200, sms_every=4)
    dropped: list[int] = []

    async def twice(progress: Progress) -> None:
        for after in (30, 90):
            await eventually(lambda n=after: progress.answered >= n, "answers", every=0.01)
            dropped.append(await drop_connections())

    await drive(system, convs, during=twice)
    outcome = await settle(
        system, flatten(convs), "PostgreSQL: every connection dropped twice (short)", timeout=240
    )
    report.add(outcome.row(), full=False)
    assert all(n >= len(SERVICES) for n in dropped), dropped  # each service had at least one
    assert_clean(outcome)
    assert (await ledger_summary(system))["pending"] == 0
