"""The transcript's text index on PostgreSQL (`ix_transcript_fts`), built while the desk works.

The search reads words off an index on the very expression `search.text_vector()` computes:
each line's text without its accents (`folding.py`). Building it in a migration held the table
for the whole build inside the migration's transaction, and dropping the index it replaced then
needed the table alone: under a desk's traffic PostgreSQL found the two waiting on each other
and cancelled the migration, five times in five (an outside review of a rolling upgrade), and
each attempt held every transcript write for half a minute.

So the status service builds it at start, outside any transaction: CREATE INDEX CONCURRENTLY
beside the old index (reads and writes go on; the build waits only for transactions already
running), then DROP INDEX CONCURRENTLY of the old one and a rename. A session lock lets one
replica build while another starting beside it tries again until it finds it built; a build
cut short (a replica stopped mid-way) leaves an invalid index, dropped and built again at the
next start.
Until it is built, searches read every line (slower, never wrong), as an older replica's do
after it (an older replica searches on the plain text)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from sqlalchemy import text
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.status.conversations.folding import MARKS, STROKED, UNSTROKED
from services.status.conversations.search import text_vector

log = logging.getLogger(__name__)

INDEX = "ix_transcript_fts"
BUILDING = "ix_transcript_fts_folded"
LOCK_RETRY_S = 0.5
"""How often a replica waiting for another's build tries its lock again."""
_LOCK = int.from_bytes(
    hashlib.sha256(b"refdesk-status:search-index").digest()[:8], "big", signed=True
)


def expression() -> str:
    """The search's expression as an index on `transcript_entries` is written."""
    compiled = text_vector().compile(dialect=PGDialect())  # type: ignore[no-untyped-call]
    return str(compiled).replace("transcript_entries.text", "text")


async def _current(conn: AsyncConnection) -> bool:
    """Whether the index is there, valid, and on the folded text."""
    found = (
        await conn.execute(
            text(
                "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
                "WHERE i.indexrelid = to_regclass(:name)"
            ),
            {"name": INDEX},
        )
    ).first()
    if found is None or not found[1]:
        return False
    written = str(found[0])
    # the folding's own constants, so a change to `folding.py` builds it again
    return "normalize(" in written.lower() and all(
        f"'{part}'" in written for part in (MARKS, STROKED, UNSTROKED)
    )


async def ensure(engine: AsyncEngine) -> bool:
    """Build the index where it is missing, invalid or on another expression (PostgreSQL;
    SQLite's FTS5 table folds accents itself). True when this call built it."""
    if engine.dialect.name != "postgresql":
        return False
    async with engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="AUTOCOMMIT")
        # tried, not waited for: a session waiting for the lock is a transaction the
        # concurrent build would wait for in turn (PostgreSQL saw a deadlock)
        while True:
            if await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK}):
                break
            await asyncio.sleep(LOCK_RETRY_S)
        try:
            if await _current(conn):
                return False
            started = time.monotonic()
            log.info("building the transcript search index", extra={"index": INDEX})
            await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {BUILDING}"))
            await conn.execute(
                text(
                    f"CREATE INDEX CONCURRENTLY {BUILDING} ON transcript_entries "
                    f"USING gin ({expression()})"
                )
            )
            await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"))
            await conn.execute(text(f"ALTER INDEX {BUILDING} RENAME TO {INDEX}"))
            log.info(
                "transcript search index built",
                extra={"index": INDEX, "seconds": round(time.monotonic() - started, 1)},
            )
            return True
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK})
