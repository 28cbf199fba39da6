"""Database helpers: async engines, sessions, Alembic migrations per service, processed ids.

Each service owns its tables and its migrations (services/<name>/migrations, version table
`alembic_version_<name>`). SQLite is the embedded default; PostgreSQL via REFDESK_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
from collections.abc import AsyncIterator, Collection, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    delete,
    event,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite files get WAL and a busy timeout so readers never block writers."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = _create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    return engine


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL (readers never block the writer), NORMAL sync, foreign keys: every SQLite
    connection refdesk opens."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


async def checkpoint(session: AsyncSession) -> None:
    """Copy a SQLite file's write-ahead log back into the database (PASSIVE: it waits for no
    reader or writer); nothing on PostgreSQL. Run from a periodic task, so the log stays short
    and the commit that crosses SQLite's 1,000-page threshold (which then checkpoints inside
    its own request, holding up the writes behind it for as long as the disk takes) is rare."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))


def session_factory(
    engine: AsyncEngine, *, sync: sessionmaker[Session] | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit. `sync`, if given, makes their
    synchronous sessions, so Session events listened for on it apply to them."""
    if sync is None:
        return async_sessionmaker(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=sync)


async def ping(engine: AsyncEngine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _alembic_config(service: str, connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    cfg.attributes["connection"] = connection
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    return cfg


async def migrate(engine: AsyncEngine, service: str, revision: str = "head") -> None:
    """Upgrade a service's schema to `revision` with Alembic, one process at a time.

    Replicas that start together on a fresh database would otherwise both create the service's
    version table, and the second would fail to start. On PostgreSQL the upgrade's transaction
    first takes an advisory lock named after the service (released at its commit); on SQLite a
    lock file beside the database is held around it. Whoever waited then finds the schema at
    head and has nothing to do."""
    from alembic import command

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _migration_lock_key(service)}
            )
        command.upgrade(_alembic_config(service, connection), revision)

    async with _sqlite_file_lock(engine), engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _migration_lock_key(service: str) -> int:
    """The advisory lock of a service's migrations: a signed 64-bit number from its name."""
    digest = hashlib.sha256(f"refdesk-migrate:{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold `<database>.migrate-lock` exclusively (flock) for a SQLite file; nothing otherwise."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock = await asyncio.to_thread(Path(f"{database}.migrate-lock").open, "a+b")
    try:
        await asyncio.to_thread(fcntl.flock, lock.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        lock.close()  # closing the file releases the lock


def run_migrations_online(target_metadata: MetaData | None) -> None:
    """Body of every service's migrations/env.py (the connection is passed in by `migrate`)."""
    from alembic import context

    cfg = context.config
    connection = cfg.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=cfg.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def processed_table(metadata: MetaData, name: str) -> Table:
    """The processed-event-ids table a consumer writes in the same transaction as its effect
    (pruned by its time: `purge_processed`)."""
    return Table(
        name,
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("event_id", String(128), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{name}_processed_at", "processed_at"),
    )


PROCESSED_PURGED = Counter(
    "refdesk_processed_ids_purged_total",
    "Processed-event ids deleted once no topic the consumer reads can hold their events",
    ["table"],
)
PURGE_PROCESSED_BATCH = 2000
"""Most processed ids one purge deletes (a consumer's writes wait for it)."""


def processed_cutoff(now: datetime, *, retention_days: Iterable[int]) -> datetime:
    """Processed ids recorded before this can go: no topic a consumer reads (their retentions
    in days) still holds their events, not even in a segment the broker has not yet deleted
    (a day past the retention: `shared.topics.SEGMENT_MS`)."""
    return now - timedelta(days=max(retention_days) + 1)


def purge_processed(conn: Connection, table: Table, *, before: datetime) -> int:
    """Delete up to PURGE_PROCESSED_BATCH processed ids recorded before `before` (read off the
    table's `processed_at` index); how many. The ids guard against applying an event twice,
    and an event whose topic no longer holds it cannot come again."""
    oldest = conn.execute(
        select(table.c.consumer, table.c.event_id)
        .where(table.c.processed_at < before)
        .limit(PURGE_PROCESSED_BATCH)
    ).all()
    if not oldest:  # the usual case: a read, no write lock taken (the status sweep's 5 s)
        return 0
    keys = [tuple(row) for row in oldest]
    conn.execute(delete(table).where(tuple_(table.c.consumer, table.c.event_id).in_(keys)))
    PROCESSED_PURGED.labels(table=table.name).inc(len(keys))
    return len(keys)


def processed_among(
    conn: Connection, table: Table, consumer: str, event_ids: Collection[str]
) -> set[str]:
    """Which of these event ids are already recorded as processed, in one query (a unit of work
    for `shared.syncdb.UnitRunner`)."""
    if not event_ids:
        return set()
    found = conn.execute(
        select(table.c.event_id).where(
            table.c.consumer == consumer, table.c.event_id.in_(sorted(set(event_ids)))
        )
    )
    return {row[0] for row in found}


def record_processed(
    conn: Connection, table: Table, consumer: str, event_ids: Iterable[str]
) -> None:
    """Record event ids as processed (a unit of work for `shared.syncdb.UnitRunner`, which
    commits it).

    One multi-row insert that leaves rows already there alone (ON CONFLICT DO NOTHING): a
    concurrent replica's row, or an id repeated in the batch, never fails the others.
    """
    now = datetime.now(UTC)
    rows = [
        {"consumer": consumer, "event_id": event_id, "processed_at": now}
        for event_id in dict.fromkeys(event_ids)
    ]
    if rows:
        conn.execute(insert_ignoring_duplicates(conn, table), rows)


async def claim_events(
    conn: AsyncConnection | AsyncSession, table: Table, consumer: str, event_ids: Iterable[str]
) -> set[str]:
    """Record a batch of event ids as processed in one statement; the ids this call claimed
    (not those already recorded, nor those a concurrent replica claimed first).

    INSERT ... ON CONFLICT DO NOTHING RETURNING: only the rows inserted come back. On
    PostgreSQL a concurrent transaction inserting the same id makes this one wait for it,
    then skip that row.
    """
    now = datetime.now(UTC)
    rows = [
        {"consumer": consumer, "event_id": event_id, "processed_at": now}
        for event_id in dict.fromkeys(event_ids)
    ]
    if not rows:
        return set()
    statement = insert_ignoring_duplicates(conn, table).returning(table.c.event_id)
    result = await conn.execute(statement, rows)
    return {row[0] for row in result}


def insert_ignoring_duplicates(
    conn: Connection | AsyncConnection | AsyncSession, table: Table
) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the connection's backend (SQLite or PostgreSQL)."""
    bind = conn.get_bind() if isinstance(conn, AsyncSession) else conn
    dialect = bind.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no ON CONFLICT DO NOTHING for {dialect}")


UTC_MIN = datetime.min.replace(tzinfo=UTC)
UTC_MAX = datetime.max.replace(tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """An aware time in UTC; one whose UTC instant falls outside the calendar datetime holds
    (9999-12-31T23:00-06:00, 0001-01-01T00:30+01:00) becomes its nearest end, which compares
    the same with every time that can be stored."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return UTC_MAX if value.year > 1 else UTC_MIN


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Broad(ColumnElement[bool]):
    """A condition most rows meet (`broad`)."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition, not a boolean column to compare with 1
    _traverse_internals = [("clause", InternalTraversal.dp_clauseelement)]

    def __init__(self, clause: ColumnElement[bool]) -> None:
        self.clause = clause


def broad(clause: ColumnElement[bool]) -> Broad:
    """A condition most rows meet, such as `state = 'open'`: SQLite's planner, which has no table
    statistics, is told so (`likelihood(..., 0.9)`) and prefers another index over one that
    condition would pick. It still counts as the condition it wraps when SQLite matches the query
    to a partial index. Other databases read it as it is."""
    return Broad(clause)


@compiles(Broad)
def _broad(element: Broad, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clause, **kw))


@compiles(Broad, "sqlite")
def _broad_sqlite(element: Broad, compiler: Any, **kw: Any) -> str:
    return f"likelihood({compiler.process(element.clause, **kw)}, 0.9)"
