"""The status service's Prometheus metrics (refdesk_ prefix) and their refresh from the DB."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from prometheus_client import Gauge, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import Conversation, Presence, Staff

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
CRISES_UNACKED = Gauge("refdesk_crises_unacknowledged", "Open crises nobody acknowledged yet")
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
    open_rows = (
        (await session.execute(select(Conversation).where(Conversation.state == "open")))
        .scalars()
        .all()
    )
    queue: Counter[tuple[str, str]] = Counter()
    oldest: dict[str, float] = {}
    overnight = crises = 0
    for conv in open_rows:
        department = conv.department or "unrouted"
        queue[(department, conv.channel)] += 1
        overnight += int(conv.overnight)
        crises += int(conv.crisis and conv.acknowledged_at is None)
        if conv.assignee is None:
            age = max(0.0, (now - conv.opened_at).total_seconds())
            oldest[department] = max(oldest.get(department, 0.0), age)
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
