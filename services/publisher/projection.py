"""The public view of refdesk's raw events: what other campus systems may read.

Pure functions. Each keeps only fields that are not student data (DOMAIN.md): no names,
contacts, TCC IDs, staff ids, message text, hand-off text or guidance. Conversation ids
become a keyed hash; free-text labels pass only when they look like an id (`campus-nw`).
The public event id is derived from the source event id, and its time is the source
event's time, so a redelivered source event republishes the very same public event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.events import (
    AnyEvent,
    CloudEvent,
    ConversationClosed,
    InteractionReceived,
    PublicConversationClosed,
    PublicConversationRouted,
    PublicInteractionReceived,
    RoutingDecided,
    derived_id,
    new_event,
)

SOURCE = "refdesk/publisher"
_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


@dataclass(frozen=True)
class Outgoing:
    """A public event and the Kafka key it is published under."""

    event: CloudEvent[Any]
    key: str


def conversation_hash(conversation_id: str, *, key: str) -> str:
    """HMAC-SHA256 of a conversation id under the public hash key, hex."""
    return hmac.new(key.encode(), conversation_id.encode(), hashlib.sha256).hexdigest()


def slug(value: str | None) -> str | None:
    """The value if it looks like a canonical id (lower-case, digits, dashes), else None."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if _SLUG.match(value) else None


def public_event(source: AnyEvent, data: BaseModel, *, part: str = "public") -> CloudEvent[Any]:
    """Wrap public data with an id and time derived from the source event."""
    event = new_event(data, source=SOURCE, event_id=derived_id(source.id, part))
    return event.model_copy(update={"time": source.time, "subject": None})


def received(event: AnyEvent, data: InteractionReceived, *, key: str) -> Outgoing:
    """interaction.received -> public.interaction.received."""
    digest = conversation_hash(data.conversation_id, key=key)
    public = PublicInteractionReceived(
        conversation_hash=digest,
        channel=data.channel,
        campus_hint=slug(data.campus_hint),
        department_hint=slug(data.department_hint),
        received_at=data.received_at,
        automatic=data.automatic is not None,
    )
    return Outgoing(public_event(event, public), digest)


def routed(event: AnyEvent, data: RoutingDecided, *, key: str) -> Outgoing:
    """routing.decided -> public.conversation.routed."""
    digest = conversation_hash(data.conversation_id, key=key)
    public = PublicConversationRouted(
        conversation_hash=digest,
        channel=data.channel,
        action=data.action,
        department=data.department,
        priority=data.priority,
        overnight=data.overnight,
        decided_at=data.decided_at,
        follow_up=data.follow_up,
    )
    return Outgoing(public_event(event, public), digest)


def closed(event: AnyEvent, data: ConversationClosed, *, key: str) -> Outgoing:
    """conversation.closed -> public.conversation.closed."""
    digest = conversation_hash(data.conversation_id, key=key)
    public = PublicConversationClosed(
        conversation_hash=digest,
        channel=data.channel,
        closed_at=data.closed_at,
        reason=slug(data.reason),
    )
    return Outgoing(public_event(event, public), digest)


def project(event: AnyEvent, data: BaseModel, *, key: str) -> list[Outgoing]:
    """The public events one raw conversation event yields (none for types kept private)."""
    if isinstance(data, InteractionReceived):
        return [received(event, data, key=key)]
    if isinstance(data, RoutingDecided):
        return [routed(event, data, key=key)]
    if isinstance(data, ConversationClosed):
        return [closed(event, data, key=key)]
    return []
