"""Migration 0035 builds the transcript's text index again where an earlier 0034 left it on
another expression: the search then reads it (PostgreSQL; SQLite searches its FTS5 table)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import create_engine, migrate


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_an_index_on_another_expression_is_built_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine, "status")
        async with engine.begin() as conn:  # as the first 0034 left it: not on normalize()
            await conn.execute(text("DROP INDEX ix_transcript_fts"))
            await conn.execute(
                text(
                    "CREATE INDEX ix_transcript_fts ON transcript_entries "
                    "USING gin (to_tsvector('simple', translate(coalesce(text, ''), 'é', 'e')))"
                )
            )
            await conn.execute(text("DROP TABLE care_reports"))  # 0036's, made again
            await conn.execute(text("UPDATE alembic_version_status SET version_num = '0034'"))
        await migrate(engine, "status")
        async with engine.connect() as conn:
            built = await conn.scalar(
                text("SELECT pg_get_indexdef(to_regclass('ix_transcript_fts'))")
            )
            version = await conn.scalar(text("SELECT version_num FROM alembic_version_status"))
        assert built is not None and "normalize(" in built.lower()
        assert version is not None and version >= "0035"  # and on to head
        await migrate(engine, "status")  # at head: nothing to do
    finally:
        await engine.dispose()
