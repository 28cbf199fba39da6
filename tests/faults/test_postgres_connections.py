"""On PostgreSQL, the database compose deploys: every connection the services hold is dropped
twice while texts and chats arrive (as a restart of the server, or a failover, drops them),
and every interaction still arrives once, decided once and answered once.

Runs where REFDESK_TEST_POSTGRES_URL names a server (.ci/run starts one): the deployment gets a
fresh database per service there, dropped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.system import Postgres
from tests.eventually import eventually
from tests.faults import report
from tests.faults.conftest import ON_POSTGRES
from tests.faults.system import SERVICES, System, ledger_summary, start_system
from tests.faults.test_short import assert_clean
from tests.faults.traffic import Progress, drive, flatten, make_traffic, settle

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(600), *ON_POSTGRES]


@pytest.fixture(scope="module")
def system(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole deployment, each service on a database of its own on the server."""
    running = start_system(
        Path(tmp_path_factory.mktemp("faults-postgres")),
        REFDESK_DATABASE_URL=postgres.database_url("faults"),
    )
    try:
        yield running
    finally:
        running.stop()


def drop_connections(postgres: Postgres) -> int:
    """End every session on the deployment's databases; how many there were."""
    (ended,) = postgres.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname LIKE '{postgres.prefix}%'"
    )
    return int(ended)


async def test_every_database_connection_dropped_twice_under_traffic(
    system: System, postgres: Postgres
) -> None:
    convs = make_traffic(200, sms_every=4)
    dropped: list[int] = []

    async def twice(progress: Progress) -> None:
        for after in (30, 90):
            await eventually(lambda n=after: progress.answered >= n, "answers", every=0.01)
            dropped.append(drop_connections(postgres))

    await drive(system, convs, during=twice)
    outcome = await settle(
        system, flatten(convs), "PostgreSQL: every connection dropped twice (short)", timeout=240
    )
    report.add(outcome.row(), full=False)
    assert all(n >= len(SERVICES) for n in dropped), dropped  # each service had at least one
    assert_clean(outcome)
    assert (await ledger_summary(system))["pending"] == 0
