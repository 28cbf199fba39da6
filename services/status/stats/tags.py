"""Changing a closed question's tags (READ Scale, topic): the closer or a supervisor, for 24 h
after the close. The change is an event, so the statistics rebuild from the topics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.auth import Actor, has_role
from services.status.conversations.actions import get
from services.status.errors import Conflict, Forbidden
from services.status.models import Conversation, ConversationRow
from services.status.stats.projection import observe
from shared.events import ConversationTagged

EDIT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Change:
    """New tag values; only the fields named in `fields` change (None clears one)."""

    read_scale: int | None = None
    topic: str | None = None
    fields: frozenset[str] = frozenset({"read_scale", "topic"})


async def on_tagged(session: AsyncSession, data: ConversationTagged, _assigning: object) -> None:
    """The queue's row shows the edited tags too (an effect in the status handlers' table)."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is not None and (conv.closed_at is None or data.at >= conv.closed_at):
        conv.read_scale, conv.topic = data.read_scale, data.topic


def editable_until(conv: Conversation) -> datetime | None:
    """When the tags stop being editable (None while the conversation is open)."""
    return conv.closed_at + EDIT_WINDOW if conv.closed_at is not None else None


async def edit(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime, change: Change
) -> tuple[ConversationTagged, datetime]:
    """Set the tags; the event to publish after the commit, and the end of the edit window."""
    conv = await get(session=session, conversation_id=conversation_id)
    if actor.id != conv.closed_by and not has_role(actor, "supervisor"):
        raise Forbidden("only the staff member who closed it, or a supervisor, may change its tags")
    until = editable_until(conv)
    if conv.state != "closed" or until is None:
        raise Conflict("tags are set when the conversation is closed")
    if now > until:
        raise Conflict("tags can be changed for 24 hours after the close")
    event = ConversationTagged(
        conversation_id=conv.conversation_id,
        staff_id=actor.id,
        read_scale=change.read_scale if "read_scale" in change.fields else conv.read_scale,
        topic=change.topic if "topic" in change.fields else conv.topic,
        at=now,
    )
    await on_tagged(session, event, None)
    await observe(session, event)
    await session.flush()
    return event, until
