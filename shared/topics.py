"""The topic registry: every topic refdesk uses, with retention, cleanup and the event types it
carries (which the AsyncAPI documents list, shared/asyncapi.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from shared.events import (
    PUBLIC_EVENT_TYPES,
    TYPE_OF,
    CareReportFiled,
    CareReportWithdrawn,
    ContactBlocked,
    ContactUnblocked,
    ConversationClaimed,
    ConversationClosed,
    ConversationConverted,
    ConversationErased,
    ConversationReleased,
    ConversationTagged,
    ConversationTransferred,
    CrisisAcknowledged,
    DeadLetter,
    InteractionReceived,
    NotificationDelivered,
    NotificationRequested,
    PresenceChanged,
    RoutingDecided,
    SmsStatusReported,
    StaffNoteAdded,
)

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    cleanup_policy: str = "delete"
    retention_days: int | None = None
    """None means: the configured retention for topics that carry patron data."""
    carries_patron_data: bool = True
    dlq: bool = False
    """Whether consumers of this topic dead-letter into `<name>.dlq`."""
    carries: tuple[type[BaseModel], ...] = ()
    """The data models of the CloudEvent types published on it (shared.events)."""

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"

    @property
    def event_types(self) -> tuple[str, ...]:
        """The CloudEvent types published on it, in the order listed."""
        return tuple(TYPE_OF[model] for model in self.carries)


INTERACTIONS = Topic(
    "refdesk.interactions",
    dlq=True,
    carries=(InteractionReceived, ConversationClosed, ConversationTransferred),
)
ROUTING = Topic("refdesk.routing", dlq=True, carries=(RoutingDecided,))
NOTIFICATIONS = Topic("refdesk.notifications", dlq=True, carries=(NotificationRequested,))
PRESENCE = Topic(
    "refdesk.presence",
    cleanup_policy="compact",
    carries_patron_data=False,
    dlq=True,
    carries=(PresenceChanged,),
)
PUBLIC = Topic(
    "refdesk.public",
    retention_days=365,
    carries_patron_data=False,
    carries=tuple(PUBLIC_EVENT_TYPES[name] for name in sorted(PUBLIC_EVENT_TYPES)),
)
DELIVERIES = Topic("refdesk.deliveries", dlq=True, carries=(NotificationDelivered,))
"""The notifier's outcome of each command (sent or failed), with the text as delivered."""
SMS_REPORTS = Topic("refdesk.sms-reports", dlq=True, carries=(SmsStatusReported,))
"""What the SMS provider reported about each text after accepting it (delivered, undelivered,
failed), as ingest received it; keyed by the provider's message id."""
DESK = Topic(
    "refdesk.desk",
    dlq=True,
    carries=(
        StaffNoteAdded,
        ConversationClaimed,
        ConversationReleased,
        CrisisAcknowledged,
        CareReportFiled,
        CareReportWithdrawn,
        ConversationConverted,
        ConversationTagged,
        ConversationErased,
        ContactBlocked,
        ContactUnblocked,
    ),
)
"""Staff actions no other topic records: notes, claims and releases, crisis acknowledgements,
CARE Team reports filed (and records of them taken back), conversions, statistics tags,
erasures on a patron's request, contacts blocked and unblocked."""

TOPICS: tuple[Topic, ...] = (
    INTERACTIONS,
    ROUTING,
    NOTIFICATIONS,
    PRESENCE,
    PUBLIC,
    DELIVERIES,
    DESK,
    SMS_REPORTS,
)


SEGMENT_MS = DAY_MS
"""How long a topic's active segment takes records before the broker rolls it. Kafka deletes
whole closed segments, so a record lives up to its retention plus this: with Kafka's default
of 7 days, a desk's few records a day sat in the active segment all week, and patron data
stayed up to twice REFDESK_RAW_RETENTION_DAYS (a privacy review)."""


def topic_configs(topic: Topic, *, raw_retention_days: int) -> dict[str, str]:
    """Broker-side configuration of a topic."""
    config = {"cleanup.policy": topic.cleanup_policy, "min.insync.replicas": "1"}
    if topic.cleanup_policy == "delete":
        days = topic.retention_days or raw_retention_days
        config["retention.ms"] = str(days * DAY_MS)
        config["segment.ms"] = str(min(SEGMENT_MS, days * DAY_MS))
    return config


def retention_days_of(names: Iterable[str], *, raw_retention_days: int) -> list[int]:
    """The retention in days of each named topic (a compacted one counts as the raw topics')."""
    by_name = {topic.name: topic for topic in TOPICS}
    return [by_name[name].retention_days or raw_retention_days for name in names]


def all_topic_names() -> list[str]:
    """Every topic name, DLQs included."""
    names = [t.name for t in TOPICS]
    names += [t.dlq_name for t in TOPICS if t.dlq]
    return names


def carried_types(name: str) -> tuple[str, ...]:
    """The CloudEvent types published on a topic (a DLQ: dead letters); KeyError if refdesk has
    no such topic."""
    for topic in TOPICS:
        if name == topic.name:
            return topic.event_types
        if topic.dlq and name == topic.dlq_name:
            return (TYPE_OF[DeadLetter],)
    raise KeyError(name)
