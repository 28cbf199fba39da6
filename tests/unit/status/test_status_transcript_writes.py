"""Transcript lines and live-feed rows are plain rows written when the unit of work commits:
what a commit writes, what a rollback drops, and that an update writes only its own columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.conversations import transcript
from services.status.models import Conversation, DeskChange, TranscriptEntry


async def stored(session: AsyncSession, entry_id: str) -> TranscriptEntry | None:
    return (
        await session.execute(select(TranscriptEntry).where(TranscriptEntry.id == entry_id))
    ).scalar_one_or_none()


async def test_a_commit_writes_the_lines_and_feed_rows_of_its_unit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    conv = Conversation(conversation_id="w-1", channel="sms", state="open", opened_at=T0)
    async with sessions() as session:
        await transcript.upsert(
            session,
            "note:1",
            conversation_id="w-1",
            direction="note",
            at=T0,
            author="dkim",
            kind="note",
            text="Called the patron back",
        )
        transcript.changed(session, conv, "note", T0)
        assert await transcript.line(session, "note:1") is not None  # seen before the commit
        await session.commit()
    async with sessions() as session:
        line = await stored(session, "note:1")
        assert line is not None and (line.text, line.attachments) == ("Called the patron back", [])
        feed = (await session.execute(select(DeskChange.conversation_id, DeskChange.what))).all()
        assert feed == [("w-1", "note")]


async def test_a_rolled_back_unit_writes_nothing_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await transcript.upsert(
            session, "note:2", conversation_id="w-2", direction="note", at=T0, author="dkim"
        )
        await session.rollback()
        await session.commit()  # a later unit in the same session does not carry it over
    async with sessions() as session:
        assert await stored(session, "note:2") is None


async def test_an_update_writes_only_the_columns_it_changed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await transcript.upsert(
            session,
            "mail-1",
            conversation_id="w-3",
            direction="out",
            at=T0,
            author="refdesk",
            delivery_state="queued",
        )
        await session.commit()
    async with sessions() as first:
        await transcript.preload(first, ["mail-1"])  # read while another replica writes
        async with sessions() as other:
            await transcript.upsert(other, "mail-1", delivery_state="sent", message_id="m-1")
            await other.commit()
        await transcript.upsert(first, "mail-1", text="Your hold is ready", delivery_state=None)
        await first.commit()
    async with sessions() as session:
        line = await stored(session, "mail-1")
        assert line is not None
        assert (line.text, line.delivery_state, line.message_id) == (
            "Your hold is ready",
            "sent",
            "m-1",
        )


async def _chat_lines(
    sessions: async_sessionmaker[AsyncSession],
    conversation_id: str,
    messages: list[tuple[str, str, int]],
) -> list[Any]:
    """Apply chat messages (interaction id, text, the platform's sequence) stamped to one
    second, in this order; the conversation's transcript lines after."""
    from services.status.conversations.reading import transcript_of
    from services.status.handlers import Assigning, apply
    from shared.events import Channel, InteractionReceived, Patron

    async with sessions() as session:
        for interaction_id, text, sequence in messages:
            await apply(
                session,
                event_id=f"event-{interaction_id}",
                assigning=Assigning(),
                data=InteractionReceived(
                    interaction_id=interaction_id,
                    conversation_id=conversation_id,
                    channel=Channel.CHAT,
                    provider="chat",
                    provider_message_id=f"m-{interaction_id}",
                    patron=Patron(contact=f"visitor-{conversation_id}"),
                    text=text,
                    received_at=T0,
                    sequence=sequence,
                ),
            )
        await session.commit()
    async with sessions() as session:
        return list(await transcript_of(session, conversation_id))


async def test_a_chat_burst_stamped_to_one_second_keeps_the_platforms_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An outside probe's four chat messages of one second read "hi", "no author on it",
    "with APA...", "i need help": ordered by the lines' ids, not the platform's sequence."""
    words = ["hi", "i need help", "with APA citations for a website", "no author on it"]
    # ids sort in none of these orders
    burst = [(f"{'zyxw'[n - 1]}-burst", words[n - 1], n) for n in (4, 1, 3, 2)]
    lines = await _chat_lines(sessions, "chat-burst", burst)
    assert [line.text for line in lines if line.direction == "in"] == words


async def test_a_chat_sequence_of_millisecond_timestamps_is_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A platform numbering messages by milliseconds (1.7e12) failed every batch on PostgreSQL's
    32-bit column until the message was dead-lettered; the largest number ingest accepts fits."""
    from shared.events import SEQUENCE_MAX

    sequences = [1_764_950_400_123, SEQUENCE_MAX]
    lines = await _chat_lines(
        sessions, "chat-ms", [(f"ms-{n}", f"message {n}", s) for n, s in enumerate(sequences)]
    )
    assert [line.seq for line in lines] == sequences
