"""The status service's Prometheus metrics (refdesk_ prefix) and their refresh from the DB."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram
from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import Conversation, Presence, Staff
from services.status.queue import SHOWN

STAFF = Gauge("refdesk_staff", "Active staff by department and status", ["department", "status"])
QUEUE_OPEN = Gauge(
    "refdesk_queue_open_conversations",
    "Open conversations by department and channel",
    ["department", "channel"],
)
OLDEST_WAITING = Gauge(
    "refdesk_queue_oldest_waiting_age_seconds",
    "Age of the oldest unassigned open conversation",
    ["department"],
)
OVERNIGHT_WAITING = Gauge("refdesk_overnight_tickets_waiting", "Open overnight tickets")
OUTBOX_WAITING = Gauge(
    "refdesk_status_outbox_waiting",
    "Staff actions' events saved but not yet acknowledged by the broker (the relay retries)",
)
CRISES_UNACKED = Gauge("refdesk_crises_unacknowledged", "Open crises nobody acknowledged yet")
REFUSED = PromCounter(
    "refdesk_status_refused_total",
    "Staff actions refused on a conversation the caller may not see or act on",
    ["action"],
)
FIRST_RESPONSE = Histogram(
    "refdesk_first_response_seconds",
    "Time from a conversation's arrival to staff's first action",
    ["department", "channel"],
    buckets=(30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)


def observe_first_response(conv: Conversation, now: datetime) -> None:
    """Record a conversation's first-response time."""
    seconds = max(0.0, (now - conv.opened_at).total_seconds())
    FIRST_RESPONSE.labels(department=conv.department or "unrouted", channel=conv.channel).observe(
        seconds
    )


# the open queue's gauges, counted by the database (one row per department and channel): a
# refresh every few seconds must not load every open conversation. Only what the desk shows
# counts: a conversation only mail systems wrote to, or a blocked sender's, waits for nobody.
_OPEN_QUEUE = (
    select(
        Conversation.department,
        Conversation.channel,
        func.count(),
        func.sum(case((Conversation.overnight, 1), else_=0)),
        func.sum(
            case((and_(Conversation.crisis, Conversation.acknowledged_at.is_(None)), 1), else_=0)
        ),
        func.min(case((Conversation.assignee.is_(None), Conversation.opened_at))),
    )
    .where(Conversation.state == "open", SHOWN)
    .group_by(Conversation.department, Conversation.channel)
)


async def refresh(*, session: AsyncSession, now: datetime) -> None:
    """Recompute every gauge from the database."""
    staff_counts: Counter[tuple[str, str]] = Counter()
    rows = await session.execute(
        select(Staff, Presence)
        .outerjoin(Presence, Presence.staff_id == Staff.id)
        .where(Staff.active.is_(True))
    )
    for staff, presence in rows:
        status = presence.status if presence is not None else "Offline"
        staff_counts.update((d, status) for d in staff.departments)
    queue: Counter[tuple[str, str]] = Counter()
    oldest: dict[str, float] = {}
    overnight = crises = 0
    for department, channel, count, nights, unacked, first in await session.execute(_OPEN_QUEUE):
        label = department or "unrouted"
        queue[(label, channel)] += count
        overnight += nights or 0
        crises += unacked or 0
        if first is not None:
            age = max(0.0, (now - first).total_seconds())
            oldest[label] = max(oldest.get(label, 0.0), age)
    _replace(STAFF, staff_counts)
    _replace(QUEUE_OPEN, queue)
    OLDEST_WAITING.clear()
    for department, age in oldest.items():
        OLDEST_WAITING.labels(department=department).set(age)
    OVERNIGHT_WAITING.set(overnight)
    CRISES_UNACKED.set(crises)


def _replace(gauge: Gauge, counts: Counter[tuple[str, str]]) -> None:
    gauge.clear()
    for labels, value in counts.items():
        gauge.labels(*labels).set(value)
