"""The topic registry: every topic refdesk uses, with partitions, retention and cleanup."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def dlq_name(self) -> str:
        return f"{self.name}.dlq"


INTERACTIONS = Topic("refdesk.interactions", dlq=True)
ROUTING = Topic("refdesk.routing", dlq=True)
NOTIFICATIONS = Topic("refdesk.notifications", dlq=True)
PRESENCE = Topic("refdesk.presence", cleanup_policy="compact", carries_patron_data=False, dlq=True)
PUBLIC = Topic("refdesk.public", retention_days=365, carries_patron_data=False)
DELIVERIES = Topic("refdesk.deliveries", dlq=True)
"""The notifier's outcome of each command (sent or failed), with the text as delivered."""
DESK = Topic("refdesk.desk", dlq=True)
"""Staff actions no other topic records: notes, claims, crisis acknowledgements, conversions."""

TOPICS: tuple[Topic, ...] = (
    INTERACTIONS,
    ROUTING,
    NOTIFICATIONS,
    PRESENCE,
    PUBLIC,
    DELIVERIES,
    DESK,
)


def topic_configs(topic: Topic, *, raw_retention_days: int) -> dict[str, str]:
    """Broker-side configuration of a topic."""
    config = {"cleanup.policy": topic.cleanup_policy, "min.insync.replicas": "1"}
    if topic.cleanup_policy == "delete":
        days = topic.retention_days or raw_retention_days
        config["retention.ms"] = str(days * DAY_MS)
    return config


def all_topic_names() -> list[str]:
    """Every topic name, DLQs included."""
    names = [t.name for t in TOPICS]
    names += [t.dlq_name for t in TOPICS if t.dlq]
    return names
