"""The desk queue: ordering, listing and what staff do with a conversation.

Order (written once, here): crises first, then overnight tickets oldest first, then the
rest oldest first. Functions change the session; the caller commits, then publishes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor, has_role
from services.status.errors import Conflict, NotFound
from services.status.metrics import observe_first_response
from services.status.models import Conversation
from shared.events import (
    Action,
    Channel,
    ConversationClosed,
    NotificationKind,
    NotificationRequested,
    Priority,
    RoutingDecided,
    derived_id,
)

STAFF_POLICY = "staff"


def queue_sort_key(conv: Conversation) -> tuple[int, datetime, str]:
    """Crisis first, then overnight, then the rest; oldest first within each band."""
    band = 0 if conv.crisis else 1 if conv.overnight else 2
    return band, conv.opened_at, conv.conversation_id


def row_view(conv: Conversation, now: datetime) -> dict[str, Any]:
    """A queue row: what staff need to pick a conversation, no patron data."""
    return {
        "conversation_id": conv.conversation_id,
        "channel": conv.channel,
        "department": conv.department,
        "priority": conv.priority,
        "overnight": conv.overnight,
        "crisis": conv.crisis,
        "acknowledged": conv.acknowledged_at is not None,
        "age_s": int(max(0.0, (now - conv.opened_at).total_seconds())),
        "assignee": conv.assignee,
        "opened_at": conv.opened_at.isoformat(),
        "converted_from": conv.converted_from,
    }


async def open_queue(
    *, session: AsyncSession, department: str | None = None, channel: Channel | None = None
) -> list[Conversation]:
    """Open conversations in desk order, optionally for one department and/or channel."""
    query = select(Conversation).where(Conversation.state == "open")
    if department:
        query = query.where(Conversation.department == department)
    if channel:
        query = query.where(Conversation.channel == channel.value)
    rows = (await session.execute(query)).scalars().all()
    return sorted(rows, key=queue_sort_key)


async def get_open(*, session: AsyncSession, conversation_id: str) -> Conversation:
    """An open conversation; NotFound or Conflict otherwise."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        raise NotFound("no such conversation")
    if conv.state != "open":
        raise Conflict("conversation is closed")
    return conv


def record_first_response(conv: Conversation, now: datetime) -> None:
    """Stamp (and measure) staff's first action on a conversation."""
    if conv.first_response_at is None:
        conv.first_response_at = now
        observe_first_response(conv, now)


async def claim(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Conversation:
    """Assign a conversation to the actor; someone else's only for supervisors."""
    conv = await get_open(session=session, conversation_id=conversation_id)
    if conv.assignee not in (None, actor.id) and not has_role(actor, "supervisor"):
        raise Conflict("conversation is assigned to someone else")
    conv.assignee = actor.id
    record_first_response(conv, now)
    await session.flush()
    return conv


async def transfer(
    *,
    session: AsyncSession,
    conversation_id: str,
    department: str,
    note: str | None,
    actor: Actor,
    now: datetime,
) -> tuple[RoutingDecided, NotificationRequested]:
    """Move a conversation to another department; the routing decision and warm hand-off."""
    conv = await get_open(session=session, conversation_id=conversation_id)
    if department == conv.department:
        raise Conflict("conversation is already with that department")
    previous = conv.department
    conv.department, conv.assignee, conv.note = department, None, note
    record_first_response(conv, now)
    await session.flush()
    decision_id = str(uuid.uuid4())
    text = note or f"Someone from {department} will join this conversation to help you."
    decision = RoutingDecided(
        decision_id=decision_id,
        interaction_id=conv.last_interaction_id or conv.conversation_id,
        conversation_id=conv.conversation_id,
        channel=Channel(conv.channel),
        action=Action.TRANSFER,
        department=department,
        priority=Priority(conv.priority),
        overnight=conv.overnight,
        handoff_text=text,
        policy_version=STAFF_POLICY,
        decided_at=now,
        decided_by=actor.id,
    )
    handoff = NotificationRequested(
        idempotency_key=derived_id(decision_id, "handoff"),
        kind=NotificationKind.HANDOFF,
        channel=Channel(conv.channel),
        recipient=_recipient(conv),
        conversation_id=conv.conversation_id,
        interaction_id=conv.last_interaction_id,
        priority=Priority(conv.priority),
        requested_at=now,
        context={"department": department, "from_department": previous, "handoff_text": text},
    )
    return decision, handoff


def _recipient(conv: Conversation) -> str:
    if conv.channel != Channel.CHAT.value and conv.patron_contact:
        return conv.patron_contact
    return conv.conversation_id


async def close(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> ConversationClosed:
    """Close a conversation; the event the router turns into the survey command."""
    conv = await get_open(session=session, conversation_id=conversation_id)
    conv.state, conv.closed_at = "closed", now
    record_first_response(conv, now)
    await session.flush()
    return ConversationClosed(
        conversation_id=conv.conversation_id,
        channel=Channel(conv.channel),
        closed_at=now,
        closed_by=actor.id,
        patron_contact=conv.patron_contact,
        reason="closed",
    )


async def acknowledge(
    *, session: AsyncSession, conversation_id: str, actor: Actor, now: datetime
) -> Conversation:
    """Acknowledge a crisis, which stops its re-escalation."""
    conv = await get_open(session=session, conversation_id=conversation_id)
    if not conv.crisis:
        raise Conflict("conversation is not a crisis")
    if conv.acknowledged_at is None:
        conv.acknowledged_at, conv.acknowledged_by = now, actor.id
    await session.flush()
    return conv


async def convert_to_email(
    *, session: AsyncSession, conversation_id: str, email: str
) -> Conversation:
    """Turn an SMS thread into an email ticket under the same id (its history stays)."""
    conv = await get_open(session=session, conversation_id=conversation_id)
    if conv.channel != Channel.SMS.value:
        raise Conflict("only SMS conversations can be converted to email")
    conv.channel, conv.converted_from, conv.patron_contact = Channel.EMAIL.value, "sms", email
    await session.flush()
    return conv
