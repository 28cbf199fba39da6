"""The queue's and the statistics' rows as plain rows in the consumer's units of work: each row
class names its table's columns, a commit writes new rows and only the columns that changed, a
rollback drops them, and the ORM changes of the same session are read back."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status import rows
from services.status.models import Conversation, ConversationRow
from services.status.stats.desktime import buckets
from services.status.stats.models import DeskStat, DeskStatRow


@pytest.mark.parametrize("cls", list(rows.KINDS))
def test_each_row_class_names_every_column_of_its_table(cls: type[Any]) -> None:
    table = rows.KINDS[cls].table
    assert [f.name for f in fields(cls)] == [column.key for column in table.columns]
    # a NOT NULL column is either given by the caller or has a value by default
    given = {f.name for f in fields(cls) if f.default is MISSING or f.default is not None}
    assert {c.key for c in table.columns if not c.nullable} <= given


def statements(session: AsyncSession) -> list[str]:
    """The SQL the session's connection runs from now on."""
    seen: list[str] = []
    engine = session.bind.sync_engine  # type: ignore[union-attr]

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(" ".join(sql.split()))

    event.listen(engine, "before_cursor_execute", record)
    return seen


def set_columns(update: str) -> list[str]:
    """The columns an UPDATE statement sets (either backend's parameter style)."""
    assignments = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return [part.split("=", 1)[0].strip() for part in assignments.split(",")]


async def test_a_commit_writes_new_rows_and_only_the_changed_columns(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        rows.add(
            session,
            ConversationRow(conversation_id="p-1", channel="sms", opened_at=T0, last_message_at=T0),
        )
        rows.add(
            session,
            DeskStatRow(conversation_id="p-1", channel="sms", received_at=T0, **buckets(T0)),
        )
        await session.commit()
    async with sessions() as first:
        stat_row = await rows.get(first, DeskStatRow, "p-1")
        assert stat_row is not None and stat_row.received_at == T0
        async with sessions() as other:  # another writer changes another column meanwhile
            stored_stat = await other.get(DeskStat, "p-1")
            assert stored_stat is not None
            stored_stat.lang = "es"
            await other.commit()
        sql = statements(first)
        stat_row.department = "nw-circulation"
        await first.commit()
    updates = [s for s in sql if s.startswith("UPDATE")]
    assert len(updates) == 1 and updates[0].startswith("UPDATE desk_stats SET ")
    assert set_columns(updates[0]) == ["department"]  # not the other writer's language
    async with sessions() as session:
        stat = await session.get(DeskStat, "p-1")
        assert stat is not None and (stat.department, stat.lang) == ("nw-circulation", "es")
        assert stat.desk_day == buckets(T0)["desk_day"]


async def test_conversation_rows_are_read_for_update(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The queue's rows are read FOR UPDATE (rendered on PostgreSQL; SQLite has one writer):
    a staff action on the same conversation waits for the unit, never deciding on what it is
    changing (`test_status_close_races.py` shows the race it closes)."""
    async with sessions() as session:
        rows.add(
            session,
            ConversationRow(conversation_id="p-2", channel="sms", opened_at=T0, last_message_at=T0),
        )
        await session.commit()
    async with sessions() as session:
        sql = statements(session)
        conv = await rows.get(session, ConversationRow, "p-2")
        stat = await rows.get(session, DeskStatRow, "p-2")
        assert conv is not None and stat is None
        reads = [s for s in sql if s.startswith("SELECT")]
        locked = session.bind.dialect.name == "postgresql"
        assert ("FOR UPDATE" in reads[0]) is locked and "FOR UPDATE" not in reads[1]


async def test_an_unchanged_unit_writes_nothing_and_a_rollback_drops_its_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        rows.add(
            session,
            ConversationRow(
                conversation_id="p-2", channel="chat", opened_at=T0, last_message_at=T0
            ),
        )
        await session.rollback()
        await session.commit()  # the next unit of the same session does not carry it over
    async with sessions() as session:
        assert await session.get(Conversation, "p-2") is None
        rows.add(
            session,
            ConversationRow(
                conversation_id="p-2", channel="chat", opened_at=T0, last_message_at=T0
            ),
        )
        await session.commit()
    async with sessions() as session:
        await rows.preload(session, ConversationRow, ["p-2", "p-missing"])
        sql = statements(session)
        assert await rows.get(session, ConversationRow, "p-missing") is None  # known missing
        await rows.get(session, ConversationRow, "p-2")
        await session.commit()
    assert [s for s in sql if not s.startswith(("BEGIN", "COMMIT"))] == []


async def test_changes_made_through_the_orm_are_read_back_and_a_second_write_adds_only_the_rest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        session.add(
            Conversation(
                conversation_id="p-3",
                channel="email",
                state="open",
                opened_at=T0,
                last_message_at=T0,
            )
        )
        conv = await rows.get(session, ConversationRow, "p-3")  # the pending object is flushed
        assert conv is not None and conv.channel == "email"
        conv.priority = "high"
        await session.run_sync(rows.write)
        conv.crisis, conv.crisis_at = True, T0
        await session.commit()
    async with sessions() as session:
        stored = await session.get(Conversation, "p-3")
        assert stored is not None
        assert (stored.priority, stored.crisis, stored.crisis_at) == ("high", True, T0)
