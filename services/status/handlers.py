"""What each consumed event does to the queue, in one transaction with its processed id.

The event-to-handler map is the table at the bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.assignment import auto_assign, is_offline
from services.status.models import PROCESSED, Conversation
from shared.db import claim_event
from shared.events import (
    Action,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    Priority,
    RoutingDecided,
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
    )


async def _get_or_new(
    session: AsyncSession, conversation_id: str, channel: str, at: datetime
) -> Conversation:
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        conv = _new(conversation_id, channel, at)
        session.add(conv)
    return conv


async def on_interaction(
    session: AsyncSession, data: InteractionReceived, assigning: Assigning
) -> None:
    """A patron's message opens a conversation, or updates (and maybe reopens) it."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.received_at)
    conv.opened_at = min(conv.opened_at, data.received_at)
    conv.last_message_at = max(conv.last_message_at, data.received_at)
    conv.last_interaction_id = data.interaction_id
    if data.patron.contact and conv.converted_from is None:
        conv.patron_contact = data.patron.contact
    if conv.department is None and data.department_hint:
        conv.department = data.department_hint
    if conv.state == "closed":
        conv.state, conv.closed_at, conv.assignee = "open", None, None
    if conv.assignee and await is_offline(session=session, staff_id=conv.assignee):
        conv.assignee = None  # the patron replied, nobody is there: back to the queue
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_routing(session: AsyncSession, data: RoutingDecided, assigning: Assigning) -> None:
    """The router's (or a staff transfer's) decision sets department, priority and flags."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.decided_at)
    if conv.department != data.department:
        conv.department, conv.assignee = data.department, None
    # an overnight ticket stays overnight, and a later message never lowers the priority
    conv.overnight = conv.overnight or data.overnight
    if PRIORITY_RANK[data.priority.value] < PRIORITY_RANK.get(conv.priority, 2):
        conv.priority = data.priority.value
    crisis = data.action == Action.ESCALATE_CRISIS or data.priority == Priority.URGENT
    if crisis and not conv.crisis:
        conv.crisis, conv.crisis_at = True, data.decided_at
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_closed(session: AsyncSession, data: ConversationClosed, _assigning: Assigning) -> None:
    """A chat ended or a ticket was closed."""
    conv = await session.get(Conversation, data.conversation_id)
    if conv is not None and conv.state == "open":
        conv.state, conv.closed_at = "closed", data.closed_at


async def on_transferred(
    session: AsyncSession, data: ConversationTransferred, assigning: Assigning
) -> None:
    """The platform moved a conversation to another department."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.transferred_at)
    conv.department, conv.assignee, conv.note = data.department, None, data.note
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


Effect = Callable[[AsyncSession, Any, Assigning], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Effect] = {
    InteractionReceived: on_interaction,
    ConversationClosed: on_closed,
    ConversationTransferred: on_transferred,
    RoutingDecided: on_routing,
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
    await effect(session, data, assigning)
    await session.flush()
    return True
