"""Wire contracts: CloudEvents 1.0 (structured JSON) envelopes and the data of every refdesk event.

These models carry no logic. Services translate provider payloads and events into
their own types at their edges.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

NAMESPACE = uuid.UUID("6f1c2a4e-5d7b-4f0e-9a61-3b8d2c7e9f10")
"""Namespace for ids derived deterministically from other ids (uuid5)."""


class Channel(StrEnum):
    CHAT = "chat"
    SMS = "sms"
    EMAIL = "email"


class PatronRole(StrEnum):
    STUDENT = "student"
    FACULTY = "faculty"
    UNKNOWN = "unknown"


class Action(StrEnum):
    ANSWER = "answer"
    TRANSFER = "transfer"
    EMAIL_CIRCULATION = "email_circulation"
    REFER_FACULTY = "refer_faculty"
    REFER_COUNSELING = "refer_counseling"
    ESCALATE_CRISIS = "escalate_crisis"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class StaffStatus(StrEnum):
    ONLINE = "Online"
    AWAY = "Away"
    OFFLINE = "Offline"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- refdesk.interactions -------------------------------------------------------------


class Patron(_Data):
    contact: str | None = Field(None, description="E.164 phone or lower-cased email; student data")
    name: str | None = Field(None, description="as the patron or platform gave it; student data")
    role: PatronRole = PatronRole.UNKNOWN


class InteractionReceived(_Data):
    """A patron's message reached the desk on one channel."""

    interaction_id: str
    conversation_id: str
    channel: Channel
    provider: str = Field(description="twilio, mailgun, mime, chat")
    provider_message_id: str
    patron: Patron
    text: str = Field(description="the patron's new text, quoted history removed; student data")
    subject: str | None = None
    received_at: AwareDatetime
    campus_hint: str | None = None
    department_hint: str | None = None
    sequence: int | None = Field(None, description="sender-side sequence within the conversation")


class ConversationClosed(_Data):
    """A chat ended or a ticket was closed (by the platform or by staff)."""

    conversation_id: str
    channel: Channel
    closed_at: AwareDatetime
    closed_by: str | None = Field(None, description="staff id, or the platform")
    patron_contact: str | None = Field(None, description="where the survey goes; student data")
    reason: str = "closed"


class ConversationTransferred(_Data):
    """The chat platform (or a staff member) moved a conversation to another department."""

    conversation_id: str
    channel: Channel
    department: str
    transferred_at: AwareDatetime
    by: str | None = None
    note: str | None = None


# ---- refdesk.routing ------------------------------------------------------------------


class RuleHit(_Data):
    rule_id: str
    matched: list[str] = Field(default_factory=list)


class StaffGuidance(_Data):
    summary: str = ""
    missing_fields: list[str] = Field(default_factory=list)
    extracted: dict[str, str] = Field(default_factory=dict, description="student data")


class RoutingDecided(_Data):
    """The router (or a staff transfer) decided where a conversation belongs."""

    decision_id: str
    interaction_id: str
    conversation_id: str
    channel: Channel
    action: Action
    department: str
    priority: Priority
    overnight: bool
    rules: list[RuleHit] = Field(default_factory=list)
    handoff_text: str | None = None
    guidance: StaffGuidance = Field(default_factory=StaffGuidance)
    fallback: str | None = Field(None, description="why a live transfer became a ticket")
    policy_version: str
    decided_at: AwareDatetime
    decided_by: str = "router"


# ---- refdesk.notifications ------------------------------------------------------------


class NotificationKind(StrEnum):
    CIRCULATION_EMAIL = "circulation_email"
    SURVEY = "survey"
    HANDOFF = "handoff"
    CRISIS_ALERT = "crisis_alert"
    CRISIS_RESOURCES = "crisis_resources"
    AFTER_HOURS_ACK = "after_hours_ack"
    KEYWORD_REPLY = "keyword_reply"
    CRISIS_REESCALATION = "crisis_reescalation"


class NotificationRequested(_Data):
    """A command: send one message, exactly once per idempotency key."""

    idempotency_key: str
    kind: NotificationKind
    channel: Channel = Field(description="the channel the message is delivered on")
    recipient: str = Field(
        description="email address, E.164 phone or chat conversation; student data"
    )
    conversation_id: str
    interaction_id: str | None = None
    priority: Priority = Priority.NORMAL
    context: dict[str, Any] = Field(default_factory=dict, description="template values")
    requested_at: AwareDatetime


# ---- refdesk.presence -----------------------------------------------------------------


class PresenceChanged(_Data):
    """A staff member's availability changed (compacted topic, keyed by staff id)."""

    staff_id: str
    status: StaffStatus
    departments: list[str]
    campus: str | None = None
    changed_at: AwareDatetime
    changed_by: str | None = None


# ---- *.dlq ----------------------------------------------------------------------------


class DeadLetter(_Data):
    """A message a consumer could not process, with the reason."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: str = Field(description="the original bytes, decoded as UTF-8 with replacement")
    reason: str
    consumer_group: str
    failed_at: AwareDatetime


# ---- envelope -------------------------------------------------------------------------

D = TypeVar("D")

EVENT_TYPES: dict[str, type[BaseModel]] = {
    "edu.tccd.refdesk.interaction.received.v1": InteractionReceived,
    "edu.tccd.refdesk.conversation.closed.v1": ConversationClosed,
    "edu.tccd.refdesk.conversation.transferred.v1": ConversationTransferred,
    "edu.tccd.refdesk.routing.decided.v1": RoutingDecided,
    "edu.tccd.refdesk.notification.requested.v1": NotificationRequested,
    "edu.tccd.refdesk.presence.changed.v1": PresenceChanged,
    "edu.tccd.refdesk.dead_letter.v1": DeadLetter,
}
TYPE_OF: dict[type[BaseModel], str] = {model: name for name, model in EVENT_TYPES.items()}


class CloudEvent(BaseModel, Generic[D]):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    time: AwareDatetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: D


AnyEvent = CloudEvent[dict[str, Any]]


def new_event(
    data: BaseModel, *, source: str, subject: str | None = None, event_id: str | None = None
) -> CloudEvent[Any]:
    """Wrap event data in a CloudEvents envelope with its registered type."""
    return CloudEvent[Any](
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=TYPE_OF[type(data)],
        time=datetime.now(UTC),
        subject=subject,
        data=data,
    )


def derived_id(*parts: str) -> str:
    """A deterministic id derived from other ids, so a retried step yields the same id."""
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def parse_data(event: AnyEvent) -> BaseModel:
    """Validate an envelope's data against the model its type names; KeyError if unknown."""
    return EVENT_TYPES[event.type].model_validate(event.data)


# ---- refdesk.public -------------------------------------------------------------------
# What other campus systems may read: no names, contacts, TCC IDs, staff ids or message
# text; conversation ids replaced by a keyed hash. Unknown fields are ignored (not
# forbidden) so an additive change keeps the type; a breaking change gets a new .vN type.


class _PublicData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PublicInteractionReceived(_PublicData):
    """A patron's message reached the desk (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    campus_hint: str | None = Field(None, description="a campus id the platform gave, if any")
    department_hint: str | None = Field(None, description="a department id the platform gave")
    received_at: AwareDatetime
    overnight: bool | None = Field(
        None, description="not known yet when a message arrives; see conversation.routed"
    )


class PublicConversationRouted(_PublicData):
    """A conversation was routed to a department (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    action: Action
    department: str
    priority: Priority
    overnight: bool
    decided_at: AwareDatetime


class PublicConversationClosed(_PublicData):
    """A chat ended or a ticket was closed (public view)."""

    conversation_hash: str = Field(description="HMAC-SHA256 of the conversation id, hex")
    channel: Channel
    closed_at: AwareDatetime
    reason: str | None = Field(None, description="a short reason id such as closed or ended")


class PublicDepartmentPresence(_PublicData):
    """How many staff are Online for a department, after a presence change."""

    department: str
    online: int = Field(ge=0, description="staff currently Online for this department")
    changed_at: AwareDatetime


PUBLIC_EVENT_TYPES: dict[str, type[BaseModel]] = {
    "edu.tccd.refdesk.public.interaction.received.v1": PublicInteractionReceived,
    "edu.tccd.refdesk.public.conversation.routed.v1": PublicConversationRouted,
    "edu.tccd.refdesk.public.conversation.closed.v1": PublicConversationClosed,
    "edu.tccd.refdesk.public.department.presence.v1": PublicDepartmentPresence,
}
EVENT_TYPES.update(PUBLIC_EVENT_TYPES)
TYPE_OF.update({model: name for name, model in PUBLIC_EVENT_TYPES.items()})
