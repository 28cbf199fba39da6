"""Rows of the tables the consumer's events change, as plain rows (`ConversationRow` for the
queue, `DeskStatRow` for the statistics, each registered beside its model).

A unit of work (one consumer batch, or one staff request that applies an event itself) reads
the rows in one query per table, changes them as attributes, and writes them when it ends: one
INSERT per table for new rows and one UPDATE per set of changed columns, the changes found by
comparing each row with its values as read. The ORM's instrumentation, identity map and flush
had cost the consumer about as much as the rest of applying an event (docs/performance.md);
the console's reads and staff actions keep the ORM models, which map the same tables.

A row class is a dataclass of its table's columns; `tests/unit/status/test_status_rows.py`
checks that each names every column of its table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

Row = TypeVar("Row")


class _Kind:
    """What the unit needs of one row class: its table, columns and prebuilt statements."""

    def __init__(self, cls: type[Any], table: Table, *, locked: bool) -> None:
        self.table = table
        self.names = tuple(f.name for f in fields(cls))
        self.values = attrgetter(*self.names)
        (key,) = table.primary_key.columns
        self.key = key.key
        self.select = select(*table.columns).where(key.in_(bindparam("keys", expanding=True)))
        if locked:
            # in key order, as the writes: two units lock rows in one order
            self.select = self.select.order_by(key).with_for_update()
        self.insert = insert(table)


@lru_cache(maxsize=128)
def update_by_key(table: Table, names: tuple[str, ...]) -> Any:
    """UPDATE of these columns of a table by its primary key (parameters `key` and
    `v_<column>`), built once per table and set of columns: how every plain-row unit writes
    what it changed."""
    (key,) = table.primary_key.columns
    return (
        update(table)
        .where(key == bindparam("key"))
        .values({name: bindparam(f"v_{name}") for name in names})
    )


KINDS: dict[type[Any], _Kind] = {}


def register(cls: type[Any], table: Any, *, locked: bool = False) -> None:
    """Make a row class (a dataclass of the table's columns, by name) usable in units.
    `locked`: its rows are read FOR UPDATE (on PostgreSQL; SQLite has one writer at a time),
    so a staff action on the same row waits for the unit or the unit for it, never each
    deciding on what the other is changing."""
    KINDS[cls] = _Kind(cls, cast(Table, table), locked=locked)


class _Unit:
    def __init__(self) -> None:
        self.rows: dict[tuple[type[Any], str], Any] = {}  # None: known not to exist
        self.stored: dict[tuple[type[Any], str], tuple[Any, ...]] = {}  # as read or last written
        self.new: list[tuple[type[Any], str]] = []


_UNIT = "refdesk.plain_rows"


def _unit(session: AsyncSession | Session) -> _Unit:
    unit: _Unit = session.info.setdefault(_UNIT, _Unit())
    return unit


async def preload(session: AsyncSession, cls: type[Row], keys: Iterable[str | None]) -> None:
    """Read the rows with these keys (and which do not exist yet) in one query."""
    unit, kind = _unit(session), KINDS[cls]
    wanted = {key for key in keys if key is not None and (cls, key) not in unit.rows}
    if not wanted:
        return
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what the session changed through the ORM is read back as well
    result = await session.execute(kind.select, {"keys": sorted(wanted)})
    for values in result.mappings():
        row = cls(**values)
        key = getattr(row, kind.key)
        unit.rows[cls, key] = row
        unit.stored[cls, key] = kind.values(row)
        wanted.discard(key)
    for key in wanted:
        unit.rows[cls, key] = None


async def get(session: AsyncSession, cls: type[Row], key: str | None) -> Row | None:
    """The row as this unit of work has it (its own changes included), or None."""
    if key is None:
        return None
    unit = _unit(session)
    if (cls, key) not in unit.rows:
        await preload(session, cls, [key])
    row: Row | None = unit.rows[cls, key]
    return row


def add(session: AsyncSession, row: Row) -> Row:
    """A new row, written when the unit ends (the caller made sure it did not exist)."""
    cls = type(row)
    key = getattr(row, KINDS[cls].key)
    if not session.in_transaction():
        session.sync_session.begin()  # so that a rollback before any statement drops it too
    unit = _unit(session)
    unit.rows[cls, key] = row
    unit.new.append((cls, key))
    return row


def write(session: Session) -> None:
    """Write the unit's new rows and changed columns (synchronous session: `await
    session.run_sync(write)` from async code; a commit does it itself). Later changes to the
    same rows are written by the next call."""
    unit: _Unit | None = session.info.get(_UNIT)
    if unit is None:
        return
    fresh = set(unit.new)
    for cls, kind in KINDS.items():
        new = sorted(ref for ref in fresh if ref[0] is cls)
        if new:
            rows = [kind.values(unit.rows[ref]) for ref in new]
            params = [dict(zip(kind.names, values, strict=True)) for values in rows]
            session.execute(kind.insert, params)
            unit.stored.update(zip(new, rows, strict=True))
    unit.new.clear()
    by_columns: dict[tuple[type[Any], tuple[str, ...]], list[dict[str, Any]]] = {}
    for ref, before in unit.stored.items():
        if ref in fresh:
            continue
        cls, key = ref
        kind = KINDS[cls]
        now = kind.values(unit.rows[ref])
        if now == before:
            continue
        changed = {n: a for n, a, b in zip(kind.names, now, before, strict=True) if a != b}
        by_columns.setdefault((cls, tuple(changed)), []).append(
            {"key": key, **{f"v_{n}": a for n, a in changed.items()}}
        )
        unit.stored[ref] = now
    # in key order, as the ORM's flush wrote them: two transactions lock rows in one order
    for (cls, names), params in by_columns.items():
        session.execute(
            update_by_key(KINDS[cls].table, names), sorted(params, key=itemgetter("key"))
        )


def forget(session: AsyncSession | Session) -> None:
    """Drop the unit's rows (at its end: a later unit in the same session must not trust what
    another transaction may have changed since)."""
    session.info.pop(_UNIT, None)


_AT_COMMIT: list[tuple[Callable[[Session], None], str]] = []


def written_at_commit(write: Callable[[Session], None], info_key: str) -> None:
    """Have a unit of plain rows kept in `session.info[info_key]` written by `write` before
    each commit of any session, and dropped when its transaction ends either way."""
    _AT_COMMIT.append((write, info_key))


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    for write, _key in _AT_COMMIT:
        write(session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_at_the_end(session: Session) -> None:
    for _write, key in _AT_COMMIT:
        session.info.pop(key, None)


written_at_commit(write, _UNIT)
