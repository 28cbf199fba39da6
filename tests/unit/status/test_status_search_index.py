"""The transcript's text index on PostgreSQL is built by the status service, concurrently: the
desk's reads and writes go on while it builds (built in a migration's transaction it had
deadlocked with the desk's writes under traffic), a replica starting beside it finds it built,
and an index left on another expression, or cut short, is built again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.status import search_index
from shared.db import create_engine, migrate

pytestmark = pytest.mark.parametrize("db_url", ["postgres"], indirect=True)

LINE = (
    "INSERT INTO transcript_entries (id, conversation_id, direction, at, author, kind, text,"
    " attachments) VALUES (:id, 'c-1', 'in', now(), 'patron', 'message',"
    " 'José García pregunta', '[]')"
)


async def indexdef(conn: AsyncConnection) -> tuple[str | None, bool | None]:
    found = (
        await conn.execute(
            text(
                "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
                "WHERE i.indexrelid = to_regclass('ix_transcript_fts')"
            )
        )
    ).first()
    return (found[0], found[1]) if found else (None, None)


async def test_the_index_is_built_once_on_the_folded_text(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine, "status")
        async with engine.connect() as conn:
            before, _ = await indexdef(conn)
        assert before is not None and "normalize(" not in before.lower()  # the plain one
        # two replicas starting together: one builds, the other finds it built
        built = await asyncio.gather(search_index.ensure(engine), search_index.ensure(engine))
        assert sorted(built) == [False, True]
        async with engine.connect() as conn:
            after, valid = await indexdef(conn)
            leftover = await conn.scalar(text("SELECT to_regclass('ix_transcript_fts_folded')"))
        assert after is not None and "normalize(" in after.lower() and valid is True
        assert leftover is None
        assert await search_index.ensure(engine) is False
    finally:
        await engine.dispose()


async def test_another_expression_or_a_build_cut_short_is_built_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await migrate(engine, "status")
        async with engine.begin() as conn:  # as a first 0034 left it, and a build stopped mid-way
            await conn.execute(text("DROP INDEX ix_transcript_fts"))
            await conn.execute(
                text(
                    "CREATE INDEX ix_transcript_fts ON transcript_entries USING gin "
                    "(to_tsvector('simple', translate(coalesce(text, ''), 'é', 'e')))"
                )
            )
            await conn.execute(
                text(
                    "CREATE INDEX ix_transcript_fts_folded ON transcript_entries "
                    "USING gin (to_tsvector('simple', coalesce(text, '')))"
                )
            )
            await conn.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false "
                    "WHERE indexrelid = to_regclass('ix_transcript_fts_folded')"
                )
            )
        assert await search_index.ensure(engine) is True
        async with engine.connect() as conn:
            after, valid = await indexdef(conn)
        assert after is not None and "normalize(" in after.lower() and valid is True
    finally:
        await engine.dispose()


async def test_the_desk_writes_while_the_index_builds(db_url: str) -> None:
    """A transaction that read the transcript and then writes a line, open while the build
    starts: the migration's build had deadlocked with exactly this."""
    engine = create_engine(db_url)
    try:
        await migrate(engine, "status")
        async with engine.connect() as desk:
            await desk.execute(text("SELECT count(*) FROM transcript_entries"))
            build = asyncio.create_task(search_index.ensure(engine))
            async with engine.connect() as plain:  # the build waits for this transaction
                watch = await plain.execution_options(isolation_level="AUTOCOMMIT")
                while not await watch.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event IS NOT NULL"
                    )
                ):
                    await asyncio.sleep(0.05)
            await desk.execute(text(LINE), {"id": "line-during-build"})
            await desk.commit()
        assert await build is True
        async with engine.connect() as conn:
            found = await conn.scalar(
                text(
                    f"SELECT count(*) FROM transcript_entries WHERE {search_index.expression()} "
                    "@@ to_tsquery('simple', 'jose & garcia')"
                )
            )
        assert found == 1
    finally:
        await engine.dispose()
