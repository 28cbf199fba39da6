"""A poll batch applied at once: each event once, the same rows as one by one, and the rows a
batch touches loaded in one query per table, however many events it carries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from bench.status_apply import lost_book as bench_lost_book
from services.status.handlers import Assigning, apply_batch
from services.status.models import Conversation, DeskChange, TranscriptEntry
from services.status.stats.models import DeskStat


def lost_book(cid: str, minute: int) -> list[tuple[str, BaseModel]]:
    """The four events of a lost-book text: message, decision, circulation email, its outcome."""
    return bench_lost_book(cid, T0 + timedelta(minutes=minute))


async def rows(session: AsyncSession) -> dict[str, Any]:
    """What the projection holds, comparable across databases."""
    convs = await session.execute(select(Conversation).order_by(Conversation.conversation_id))
    lines = await session.execute(
        select(TranscriptEntry.id, TranscriptEntry.kind, TranscriptEntry.delivery_state).order_by(
            TranscriptEntry.id
        )
    )
    stats = await session.execute(select(DeskStat.conversation_id, DeskStat.department))
    return {
        "conversations": [
            (c.conversation_id, c.department, c.action, c.preview) for c in convs.scalars()
        ],
        "lines": list(lines.all()),
        "stats": sorted(stats.all()),
    }


async def test_a_batch_applies_each_event_once_like_one_at_a_time(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first, second = lost_book("c-1", 0), lost_book("c-2", 1)
    # interleaved as two partitions would be, with a repeat inside the batch
    batch = [first[0], second[0], first[1], first[0], second[1], first[2], first[3], second[2]]
    async with sessions() as session:
        done = await apply_batch(session, batch, assigning=Assigning())
        await session.commit()
    assert done == [True, True, True, False, True, True, True, True]
    async with sessions() as session:
        changes = (
            await session.execute(select(DeskChange.conversation_id, DeskChange.department))
        ).all()
    # one live-feed row per conversation and department: before routing, then after
    assert sorted(changes, key=str) == sorted(
        [("c-1", None), ("c-1", "nw-circulation"), ("c-2", None), ("c-2", "nw-circulation")],
        key=str,
    )
    async with sessions() as session:
        again = await apply_batch(session, [*batch, second[3]], assigning=Assigning())
        await session.commit()
    assert again == [False] * len(batch) + [True]
    async with sessions() as session:
        batched = await rows(session)
    assert batched["conversations"] == [
        ("c-1", "nw-circulation", "email_circulation", "I lost my library book"),
        ("c-2", "nw-circulation", "email_circulation", "I lost my library book"),
    ]
    assert ("mail-c-1", "circulation_email", "sent") in batched["lines"]
    assert ("mail-c-2", "circulation_email", "sent") in batched["lines"]
    assert batched["stats"] == [("c-1", "nw-circulation"), ("c-2", "nw-circulation")]

    # the same events one at a time, into conversations of other ids, give the same rows
    async with sessions() as session:
        for event_id, data in [*batch, second[3]]:
            renamed = data.model_copy(
                update={"conversation_id": "x" + data.conversation_id}  # type: ignore[attr-defined]
            )
            await apply_batch(session, [("x" + event_id, renamed)], assigning=Assigning())
        await session.commit()
    async with sessions() as session:
        both = await rows(session)
    singly = [row for row in both["conversations"] if row[0].startswith("x")]
    assert [(cid[1:], *rest) for cid, *rest in singly] == batched["conversations"]
    assert sorted(s for s in both["stats"] if s[0].startswith("x")) == [
        ("xc-1", "nw-circulation"),
        ("xc-2", "nw-circulation"),
    ]


async def test_a_batch_loads_its_conversations_in_one_query_however_long_it_is(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def selects_of_conversations(conversations: int) -> int:
        batch = [
            item for n in range(conversations) for item in lost_book(f"q{conversations}-{n}", n)
        ]
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if (
                statement.lstrip().upper().startswith("SELECT")
                and "FROM conversations" in statement
            ):
                seen.append(statement)

        async with sessions() as session:
            engine = session.get_bind()
            event.listen(engine, "before_cursor_execute", note)
            try:
                done = await apply_batch(session, batch, assigning=Assigning())
                await session.commit()
            finally:
                event.remove(engine, "before_cursor_execute", note)
        assert all(done)
        return len(seen)

    assert await selects_of_conversations(1) == 1
    assert await selects_of_conversations(25) == 1
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(Conversation))
    assert count == 26


async def test_what_a_batch_loaded_is_not_trusted_by_the_next_one_in_the_same_session(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    interaction, _decision, requested, delivered = lost_book("c-9", 0)
    async with sessions() as first:
        # the email is requested before the conversation's first message is seen
        assert await apply_batch(first, [requested], assigning=Assigning()) == [True]
        await first.commit()
        async with sessions() as other:  # another replica applies the message meanwhile
            assert await apply_batch(other, [interaction], assigning=Assigning()) == [True]
            await other.commit()
        assert await apply_batch(first, [delivered], assigning=Assigning()) == [True]
        await first.commit()
    async with sessions() as session:
        whats = (
            await session.execute(
                select(DeskChange.what).where(DeskChange.conversation_id == "c-9")
            )
        ).scalars()
        # the delivery reached the live feed: the conversation was found, not "still missing"
        assert sorted(whats) == ["delivery", "message"]
