"""Erasing a patron's closed conversations on their request (records.py takes the request):
the transcript and the patron's details go at once, as retention would take them later, and
the conversation row stays with ids, times and flags (the desk's statistics), marked purged.

The staff action publishes a ConversationErased per conversation first and erases once the
broker has them (a 503 before that changes nothing, and asking again erases); every replica's
consumer applies the events again, which finds nothing left to remove. A status service
rebuilt from the topics applies them whatever the order: a conversation it has not seen yet
is kept as a closed, purged row as of the erasure, so the replayed messages from before it
are dropped as a purged conversation's are, and only the patron's messages written after it
open it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.conversations import transcript
from services.status.models import Conversation, ConversationRow, TranscriptEntry
from shared.events import ConversationErased

ERASED: dict[str, Any] = {
    "patron_contact": None,
    "texted_from": None,
    "patron_name": None,
    "subject": None,
    "preview": None,
    "note": None,
}
"""The patron's details on a conversation row, as an erasure (and retention) leaves them."""


async def erase_closed(
    session: AsyncSession, conversation_ids: Iterable[str], now: datetime
) -> None:
    """Remove the transcripts and patron details of these closed conversations (the staff
    action's own session; the caller commits)."""
    wanted = sorted(set(conversation_ids))
    if not wanted:
        return
    # still closed now: one the patron reopened meanwhile keeps its lines (their events erase
    # what came before, `on_erased`)
    closed = await session.scalars(
        select(Conversation.conversation_id).where(
            Conversation.conversation_id.in_(wanted), Conversation.state == "closed"
        )
    )
    ids = list(closed)
    if not ids:
        return
    await session.execute(delete(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(ids)))
    await session.execute(
        update(Conversation)
        .where(Conversation.conversation_id.in_(ids))
        .values(**ERASED, purged_at=now)
    )


async def on_erased(session: AsyncSession, data: ConversationErased, _assigning: object) -> None:
    """Apply an erasure in a consumer's unit of work (idempotent: what is gone stays gone)."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is None:  # not seen yet (a rebuild): kept erased as of the erasure
        conv = rows.add(
            session,
            ConversationRow(
                conversation_id=data.conversation_id,
                channel=data.channel.value,
                opened_at=data.opened_at,
                last_message_at=data.opened_at,
                state="closed",
                closed_at=data.erased_at,
                routed=True,
            ),
        )
    await transcript.drop_lines(session, data.conversation_id, until=data.erased_at)
    if conv.state != "closed" and conv.last_message_at > data.erased_at:
        return  # the patron wrote again after the erasure: their new messages stay
    if conv.state != "closed":  # its close, on another topic, is not applied yet (a rebuild)
        conv.state, conv.closed_at = "closed", data.erased_at
    for name, value in ERASED.items():
        setattr(conv, name, value)
    if conv.purged_at is None:
        conv.purged_at = data.erased_at
