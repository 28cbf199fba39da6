"""Session-wide real infrastructure: a Kafka broker (KRaft, from Maven's jars) and PostgreSQL.

The broker is started once per test session on a free port unless REFDESK_KAFKA_BOOTSTRAP
points at one. PostgreSQL tests run when REFDESK_TEST_POSTGRES_URL is set (.ci/run sets it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from refdesk_cli.kafka_local import LocalKafka, free_port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    given = os.environ.get("REFDESK_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    kafka = LocalKafka(data_dir=Path(tmp_path_factory.mktemp("kafka")), port=free_port())
    kafka.start()
    try:
        kafka.wait_ready()
        os.environ["REFDESK_KAFKA_BOOTSTRAP"] = kafka.bootstrap
        yield kafka.bootstrap
    finally:
        os.environ.pop("REFDESK_KAFKA_BOOTSTRAP", None)
        kafka.stop()


def _db_params() -> list[object]:
    params: list[object] = ["sqlite"]
    if os.environ.get("REFDESK_TEST_POSTGRES_URL"):
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(params=_db_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, and PostgreSQL where configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    yield from _fresh_postgres(os.environ["REFDESK_TEST_POSTGRES_URL"])


def _fresh_postgres(base_url: str) -> Iterator[str]:
    """Create a throwaway database on the server base_url points at, and drop it afterwards."""
    import asyncio
    import uuid

    import asyncpg
    import sqlalchemy as sa

    url = sa.engine.make_url(base_url)
    name = f"refdesk_t_{uuid.uuid4().hex[:10]}"

    async def _run(sql: str) -> None:
        conn = await asyncpg.connect(
            user=url.username,
            password=url.password,
            host=url.host,
            port=url.port or 5432,
            database=url.database,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_run(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BROKER_TIER_UNIT_MARKS = ("browser", "slow", "postgres")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker-tier",
        action="store_true",
        help="of tests/unit, keep only the tests marked browser, slow or postgres (the fast "
        "tier, `make test-unit`, ran the rest): one run with the broker tests, no idle tail "
        "between two",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("broker_tier"):
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        in_unit = item.nodeid.startswith("tests/unit/")
        marked = any(item.get_closest_marker(m) for m in BROKER_TIER_UNIT_MARKS)
        (dropped if in_unit and not marked else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist loadfile`, with the end-to-end files as one unit: they share one system (its
    own broker and five services, ~15 s to start), which each worker would otherwise start."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _EndToEndTogether(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/e2e/"):
                return "tests/e2e"
            return str(super()._split_scope(nodeid))

    return _EndToEndTogether(config, log)
