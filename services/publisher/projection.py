"""The public view of refdesk's raw events: what other campus systems may read.

Pure functions. Each keeps only fields that are not student data (DOMAIN.md): no names,
contacts, TCC IDs, staff ids, message text, hand-off text or guidance. Conversation ids
become a keyed hash; free-text labels pass only when they are one of the desk's canonical ids
(`campus-nw`, `shared.domain`): a value that merely looks like one may be a name or a number.
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

from shared.domain import CAMPUSES, CLOSE_REASONS, DEPARTMENTS, canonical
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
    """The value if it looks like an id (lower-case, digits, dashes), else None: for staff's
    departments, which an administrator set (a patron's hints must be `canonical`)."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if _SLUG.match(value) else None


def public_event(source: AnyEvent, data: BaseModel, *, part: str = "public") -> CloudEvent[Any]:
    """Wrap public data with an id and time derived from the source event."""
    event = new_event(data, source=SOURCE, event_id=derived_id(source.id, part))
    return event.model_copy(update={"time": source.time, "subject": None})


def received(
    event: AnyEvent, data: InteractionReceived, *, key: str, departments: frozenset[str]
) -> Outgoing:
    """interaction.received -> public.interaction.received."""
    digest = conversation_hash(data.conversation_id, key=key)
    public = PublicInteractionReceived(
        conversation_hash=digest,
        channel=data.channel,
        campus_hint=canonical(data.campus_hint, CAMPUSES),
        department_hint=canonical(data.department_hint, departments),
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
        reason=canonical(data.reason, CLOSE_REASONS),
    )
    return Outgoing(public_event(event, public), digest)


def project(
    event: AnyEvent,
    data: BaseModel,
    *,
    key: str,
    departments: frozenset[str] = DEPARTMENTS,
) -> list[Outgoing]:
    """The public events one raw conversation event yields (none for types kept private);
    `departments`: the ids a department hint may name."""
    if isinstance(data, InteractionReceived):
        # a blocked contact's message is spam to every count (a crisis from one is still
        # escalated, and its routing event is published)
        return [] if data.blocked else [received(event, data, key=key, departments=departments)]
    if isinstance(data, RoutingDecided):
        return [routed(event, data, key=key)]
    if isinstance(data, ConversationClosed):
        return [closed(event, data, key=key)]
    return []
