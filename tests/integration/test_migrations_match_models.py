"""Each service's migrations build the schema its models describe: a table, column or index
added to one and not the other fails here, on SQLite and (where configured) PostgreSQL.

Left out of the comparison, because the models cannot say them: the transcript search (an FTS5
table on SQLite, a GIN index on PostgreSQL) and the queue's order index, which indexes an
expression."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import create_engine, migrate

MODELS = {
    "ingest": ("services.ingest.tables",),
    "router": ("services.router.tables",),
    "notifier": ("services.notifier.tables",),
    "status": ("services.status.models", "services.status.stats.models"),
    "publisher": ("services.publisher.tables",),
}
MIGRATIONS_ONLY = {"ix_conversations_queue", "ix_transcript_fts"}


def metadata_of(service: str) -> MetaData:
    """The metadata every model module of the service fills (importing them all)."""
    modules = [importlib.import_module(name) for name in MODELS[service]]
    first = modules[0]
    found = getattr(first, "metadata", None)
    if not isinstance(found, MetaData):
        found = first.Base.metadata
    return found


def _kept(obj: Any, name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
    if kind == "table" and name is not None and name.startswith("transcript_fts"):
        return False
    return not (kind == "index" and name in MIGRATIONS_ONLY)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.parametrize("service", sorted(MODELS))
async def test_migrations_build_what_the_models_describe(database_url: str, service: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, service)
        metadata = metadata_of(service)

        def differences(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": f"alembic_version_{service}",
                    "include_object": _kept,
                    "compare_type": True,
                },
            )
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
        assert diff == [], diff
    finally:
        await engine.dispose()
