"""What each consumed event does to the queue and the transcripts, in one transaction with its
processed id.

The event-to-handler map is the table at the bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import stats
from services.status.assignment import auto_assign, is_offline
from services.status.conversations import transcript
from services.status.models import PROCESSED, Conversation
from shared.db import claim_event
from shared.events import (
    Action,
    ConversationClaimed,
    ConversationClosed,
    ConversationConverted,
    ConversationTagged,
    ConversationTransferred,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationDelivered,
    NotificationRequested,
    Priority,
    RoutingDecided,
    StaffNoteAdded,
)

CONSUMER = "status"
PRIORITY_RANK = {Priority.URGENT.value: 0, Priority.HIGH.value: 1, Priority.NORMAL.value: 2}


@dataclass(frozen=True)
class Assigning:
    """Auto-assignment settings the handlers need."""

    enabled: bool = False
    capacity: int = 3


def _new(conversation_id: str, channel: str, at: datetime) -> Conversation:
    return Conversation(
        conversation_id=conversation_id,
        channel=channel,
        priority=Priority.NORMAL.value,
        overnight=False,
        state="open",
        opened_at=at,
        last_message_at=at,
        crisis=False,
        lang="en",
        safety_review=False,
        blocked=False,
        routed=False,
    )


async def _get_or_new(
    session: AsyncSession, conversation_id: str, channel: str, at: datetime
) -> Conversation:
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        conv = _new(conversation_id, channel, at)
        session.add(conv)
    return conv


def _unassign(conv: Conversation, at: datetime) -> None:
    conv.assignee, conv.assignee_since = None, at


def _newer(conv: Conversation, at: datetime) -> bool:
    return conv.assignee_since is None or at >= conv.assignee_since


async def on_interaction(
    session: AsyncSession, data: InteractionReceived, assigning: Assigning
) -> None:
    """A patron's message opens a conversation, or updates (and maybe reopens) it."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.received_at)
    conv.opened_at = min(conv.opened_at, data.received_at)
    conv.last_message_at = max(conv.last_message_at, data.received_at)
    conv.last_interaction_id = data.interaction_id
    # the first sender is the patron: a later message into the same thread from another
    # address (a forwarded copy, a crafted ticket tag) never redirects the desk's replies
    if data.patron.contact and conv.patron_contact is None and conv.converted_from is None:
        conv.patron_contact = data.patron.contact
    if conv.department is None and data.department_hint:
        conv.department = data.department_hint
    if conv.state == "closed" and data.received_at > (conv.closed_at or data.received_at):
        conv.state, conv.closed_at = "open", None
        _unassign(conv, data.received_at)
    if conv.assignee and await is_offline(session=session, staff_id=conv.assignee):
        _unassign(conv, data.received_at)  # the patron replied, nobody is there: back to the queue
    await transcript.on_interaction(session, conv, data)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_routing(session: AsyncSession, data: RoutingDecided, assigning: Assigning) -> None:
    """The router's (or a staff transfer's) decision sets department, priority and flags."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.decided_at)
    if conv.department != data.department and _newer(conv, data.decided_at):
        conv.department = data.department
        _unassign(conv, data.decided_at)
    # an overnight ticket stays overnight, and a later message never lowers the priority
    conv.overnight = conv.overnight or data.overnight
    if PRIORITY_RANK[data.priority.value] < PRIORITY_RANK.get(conv.priority, 2):
        conv.priority = data.priority.value
    crisis = data.action == Action.ESCALATE_CRISIS or data.priority == Priority.URGENT
    if crisis and not conv.crisis:
        conv.crisis, conv.crisis_at = True, data.decided_at
    await transcript.on_routing(session, conv, data)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_closed(session: AsyncSession, data: ConversationClosed, _assigning: Assigning) -> None:
    """A chat ended or a ticket was closed."""
    conv = await session.get(Conversation, data.conversation_id)
    if conv is None:
        return
    if conv.state == "open":
        conv.state, conv.closed_at, conv.closed_by = "closed", data.closed_at, data.closed_by
    if data.read_scale is not None:
        conv.read_scale = data.read_scale
    if data.topic is not None:
        conv.topic = data.topic
    await transcript.on_closed(session, conv, data)


async def on_transferred(
    session: AsyncSession, data: ConversationTransferred, assigning: Assigning
) -> None:
    """The platform moved a conversation to another department."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.transferred_at)
    conv.department, conv.note = data.department, data.note
    _unassign(conv, data.transferred_at)
    await transcript.on_transferred(session, conv, data)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_notification(
    session: AsyncSession, data: NotificationRequested, _assigning: Assigning
) -> None:
    """A message refdesk will send: a queued transcript line."""
    # the line is kept even if the conversation's first event has not arrived yet
    conv = await session.get(Conversation, data.conversation_id)
    await transcript.on_notification(session, conv, data)


async def on_delivered(
    session: AsyncSession, data: NotificationDelivered, _assigning: Assigning
) -> None:
    """The notifier's outcome for a message."""
    conv = await session.get(Conversation, data.conversation_id)
    await transcript.on_delivered(session, conv, data)


async def on_note(session: AsyncSession, data: StaffNoteAdded, _assigning: Assigning) -> None:
    """A staff note."""
    conv = await session.get(Conversation, data.conversation_id)
    await transcript.on_note(session, conv, data)


async def on_claimed(
    session: AsyncSession, data: ConversationClaimed, _assigning: Assigning
) -> None:
    """A claim, unless a later transfer or claim already changed the assignee."""
    conv = await session.get(Conversation, data.conversation_id)
    if conv is None:
        return
    if _newer(conv, data.at):
        conv.assignee, conv.assignee_since = data.staff_id, data.at
    if conv.first_response_at is None:
        conv.first_response_at = data.at
    await transcript.on_claimed(session, conv, data)


async def on_acknowledged(
    session: AsyncSession, data: CrisisAcknowledged, _assigning: Assigning
) -> None:
    """A crisis acknowledged (its re-escalation stops)."""
    conv = await session.get(Conversation, data.conversation_id)
    if conv is None:
        return
    if conv.acknowledged_at is None:
        conv.acknowledged_at, conv.acknowledged_by = data.at, data.staff_id
    await transcript.on_acknowledged(session, conv, data)


async def on_converted(
    session: AsyncSession, data: ConversationConverted, _assigning: Assigning
) -> None:
    """An SMS thread became an email ticket."""
    conv = await session.get(Conversation, data.conversation_id)
    if conv is None:
        return
    conv.channel, conv.converted_from, conv.patron_contact = "email", "sms", data.email
    await transcript.on_converted(session, conv, data)


async def _purged(session: AsyncSession, data: BaseModel) -> bool:
    """Whether the event belongs to a closed conversation whose transcript retention removed:
    a replay from a rewound group must not bring the student data back. A new message from
    the patron after the close is not such an event: it reopens the conversation."""
    conversation_id = getattr(data, "conversation_id", None)
    if conversation_id is None:
        return False
    conv = await session.get(Conversation, conversation_id)
    if conv is None or conv.purged_at is None or conv.state != "closed":
        return False
    if isinstance(data, InteractionReceived) and conv.closed_at is not None:
        if data.received_at > conv.closed_at:
            conv.purged_at = None
            return False
    return True


Effect = Callable[[AsyncSession, Any, Assigning], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Effect] = {
    InteractionReceived: on_interaction,
    ConversationClosed: on_closed,
    ConversationTransferred: on_transferred,
    RoutingDecided: on_routing,
    NotificationRequested: on_notification,
    NotificationDelivered: on_delivered,
    StaffNoteAdded: on_note,
    ConversationClaimed: on_claimed,
    CrisisAcknowledged: on_acknowledged,
    ConversationConverted: on_converted,
    ConversationTagged: stats.on_tagged,
}


async def apply(
    session: AsyncSession, *, event_id: str, data: BaseModel, assigning: Assigning
) -> bool:
    """Apply one event once (claim + effect, same transaction; caller commits); False if seen
    before or of a type this service ignores."""
    effect = HANDLERS.get(type(data))
    if effect is None:
        return False
    if not await claim_event(session, PROCESSED, CONSUMER, event_id):
        return False
    if await _purged(session, data):
        return False
    await effect(session, data, assigning)
    await stats.observe(session, data)
    await session.flush()
    return True
