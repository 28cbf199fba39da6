"""A generated term of desk traffic for the statistics benchmark and the reports screenshot:
conversations shaped like a college library's chat desk (busy weekday afternoons and evenings,
a quiet spring break, a finals rush, tickets overnight), each as the events refdesk's topics
carry: the patron's messages, the router's decisions, the automated messages, claims, staff
replies and transfers, crisis acknowledgements, closes with READ Scale and topic, tag edits.

Deterministic for a seed. No real patron data: contacts are fictitious (555 numbers,
example.edu), texts are placeholders.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from shared.events import (
    Action,
    Channel,
    ConversationClaimed,
    ConversationClosed,
    ConversationTagged,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING

DESK_TZ = ZoneInfo("America/Chicago")
TERM_START = date(2026, 1, 12)  # a Monday; spring term, 16 weeks
WEEKS = 16
HOURS = {0: (8, 21), 1: (8, 21), 2: (8, 21), 3: (8, 21), 4: (8, 17), 5: (9, 13)}
"""Desk hours by weekday (Monday 0), as in the default routing policy; Sunday closed."""
WEEK_FACTOR = {0: 0.7, 6: 1.2, 7: 1.25, 9: 0.3, 10: 1.1, 11: 1.15, 12: 1.15, 13: 1.1, 15: 1.35}
"""Term shape: a slow first week, midterms, spring break (week 10), papers, finals."""
ROUTES = (
    # (action, department, share)
    (Action.ANSWER, "reference", 0.62),
    (Action.TRANSFER, "nw-circulation", 0.09),
    (Action.TRANSFER, "writing-center", 0.08),
    (Action.TRANSFER, "tutoring", 0.04),
    (Action.TRANSFER, "campus-ne", 0.015),
    (Action.TRANSFER, "campus-se", 0.015),
    (Action.TRANSFER, "campus-south", 0.01),
    (Action.TRANSFER, "campus-tr", 0.01),
    (Action.EMAIL_CIRCULATION, "circulation-managers", 0.06),
    (Action.REFER_FACULTY, "faculty-support", 0.03),
    (Action.REFER_COUNSELING, "counseling", 0.018),
    (Action.ESCALATE_CRISIS, "care-team", 0.006),
)
STAFF = {
    "mgarcia": 24,
    "jnguyen": 20,
    "aramirez": 16,
    "kchen": 12,
    "tbrooks": 10,
    "rpatel": 8,
    "lokafor": 6,
    "sub-weekend": 3,
    "trainee": 1,
}
TOPICS = {
    "research": 30,
    "circulation": 22,
    "citation": 15,
    "technology": 13,
    "hours-policies": 12,
    "other": 8,
}
SCALES = {1: 15, 2: 35, 3: 28, 4: 12, 5: 5, 6: 2}

Event = tuple[str, datetime, BaseModel]
"""(topic, when, event data)."""


def hour_weight(weekday: int, hour: int) -> float:
    """How busy an hour of the week is (relative)."""
    if weekday == 6:
        return 0.25 if 12 <= hour <= 22 else 0.05
    if hour < 7:
        return 0.06
    open_, close = HOURS[weekday]
    if open_ <= hour < close:
        shape = (
            1.0 + 0.5 * math.exp(-((hour - 11) ** 2) / 4) + 0.6 * math.exp(-((hour - 14) ** 2) / 3)
        )
        shape += 0.5 * math.exp(-((hour - 19.5) ** 2) / 2) if weekday < 4 else 0
        return shape * (0.6 if weekday == 5 else 1.0)
    return 0.35 if hour < 23 else 0.15


def is_open(local: datetime) -> bool:
    """Whether the desk is open at a desk-time moment."""
    hours = HOURS.get(local.weekday())
    return hours is not None and hours[0] <= local.hour < hours[1]


def next_opening(local: datetime) -> datetime:
    """The next time the desk opens after a desk-time moment."""
    probe = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while not is_open(probe):
        probe += timedelta(hours=1)
    return probe


@dataclass
class Term:
    """The generated events, in time order, and how many conversations they make."""

    events: list[Event]
    conversations: int
    first_day: date
    last_day: date


def slots() -> tuple[list[datetime], list[float]]:
    """Every desk-time hour of the term and its weight."""
    starts, weights = [], []
    for day in range(WEEKS * 7):
        d = TERM_START + timedelta(days=day)
        factor = WEEK_FACTOR.get(day // 7, 1.0)
        for hour in range(24):
            starts.append(datetime(d.year, d.month, d.day, hour, tzinfo=DESK_TZ))
            weights.append(factor * hour_weight(d.weekday(), hour))
    return starts, weights


def generate(conversations: int = 20_000, seed: int = 2026) -> Term:
    """A term of traffic."""
    rnd = random.Random(seed)
    starts, weights = slots()
    chosen = rnd.choices(starts, weights, k=conversations)
    events: list[Event] = []
    for n, hour in enumerate(sorted(chosen)):
        at = hour + timedelta(seconds=rnd.randrange(3600))
        events += conversation(rnd, f"bench-{n:06d}", at.astimezone(UTC))
    events.sort(key=lambda e: e[1])
    return Term(events, conversations, TERM_START, TERM_START + timedelta(weeks=WEEKS, days=-1))


def _lognormal(rnd: random.Random, median_s: float, sigma: float = 0.8) -> timedelta:
    return timedelta(seconds=median_s * math.exp(rnd.gauss(0, sigma)))


def conversation(rnd: random.Random, cid: str, at: datetime) -> list[Event]:
    """One conversation's events."""
    local = at.astimezone(DESK_TZ)
    overnight = not is_open(local)
    if overnight:
        channel = rnd.choices(list(Channel), [20, 30, 50])[0]
    else:
        channel = rnd.choices(list(Channel), [60, 15, 25])[0]
    action, dept, _ = rnd.choices(ROUTES, [r[2] for r in ROUTES])[0]
    crisis = action == Action.ESCALATE_CRISIS
    safety = not crisis and rnd.random() < 0.008
    lang = "es" if rnd.random() < 0.12 else "en"
    contact = _recipient(cid, channel) if channel != Channel.CHAT else None
    priority = Priority.URGENT if crisis else Priority.HIGH if overnight else Priority.NORMAL
    out: list[Event] = []
    message = InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        provider="bench",
        provider_message_id=f"m-{cid}",
        patron=Patron(contact=contact),
        text="(generated question)",
        received_at=at,
    )
    out.append((INTERACTIONS.name, at, message))
    decided = at + timedelta(milliseconds=rnd.randint(20, 400))
    decision = RoutingDecided(
        decision_id=f"d-{cid}",
        interaction_id=message.interaction_id,
        conversation_id=cid,
        channel=channel,
        action=action,
        department=dept,
        priority=priority,
        overnight=overnight,
        policy_version="bench",
        decided_at=decided,
        lang=lang,
        safety_review=safety,
    )
    out.append((ROUTING.name, decided, decision))
    if overnight:
        out.append((NOTIFICATIONS.name, decided, _notice(cid, channel, "ack", decided)))
    # staff are there from the next opening; chat is answered fastest, email slowest
    ready = next_opening(local).astimezone(UTC) if overnight else at
    median = {Channel.CHAT: 90, Channel.SMS: 360, Channel.EMAIL: 2400}[channel]
    staff = rnd.choices(list(STAFF), list(STAFF.values()))[0]
    clock = ready + _lognormal(rnd, median if not overnight else 1500)
    if crisis:
        ack = decided + _lognormal(rnd, 120, 1.1)
        out.append(
            (DESK.name, ack, CrisisAcknowledged(conversation_id=cid, staff_id="lokafor", at=ack))
        )
        clock = max(clock, ack)
    if rnd.random() < 0.9:
        out.append(
            (DESK.name, clock, ConversationClaimed(conversation_id=cid, staff_id=staff, at=clock))
        )
    if rnd.random() < 0.85:
        clock += _lognormal(rnd, 120)
        out.append((NOTIFICATIONS.name, clock, _reply(cid, channel, staff, clock)))
    if dept == "reference" and rnd.random() < 0.07:
        to = rnd.choice(("nw-circulation", "writing-center", "tutoring", "campus-nw"))
        clock += _lognormal(rnd, 240)
        moved = decision.model_copy(
            update={
                "decision_id": f"t-{cid}",
                "action": Action.TRANSFER,
                "department": to,
                "decided_at": clock,
                "decided_by": staff,
                "policy_version": "staff",
            }
        )
        out.append((ROUTING.name, clock, moved))
        out.append((NOTIFICATIONS.name, clock, _notice(cid, channel, "handoff", clock)))
    if rnd.random() < 0.95:
        clock += _lognormal(rnd, 600 if channel == Channel.CHAT else 5400, 1.0)
        tagged = rnd.random() < 0.88
        scale = rnd.choices(list(SCALES), list(SCALES.values()))[0] if tagged else None
        topic = rnd.choices(list(TOPICS), list(TOPICS.values()))[0] if tagged else None
        close = ConversationClosed(
            conversation_id=cid,
            channel=channel,
            closed_at=clock,
            closed_by=staff,
            patron_contact=contact,
            read_scale=scale,
            topic=topic,
        )
        out.append((INTERACTIONS.name, clock, close))
        if channel != Channel.CHAT:
            out.append((NOTIFICATIONS.name, clock, _notice(cid, channel, "survey", clock)))
        if rnd.random() < 0.03:
            edited = clock + timedelta(hours=rnd.uniform(0.1, 20))
            edit = ConversationTagged(
                conversation_id=cid,
                staff_id=staff,
                read_scale=rnd.choices(list(SCALES), list(SCALES.values()))[0],
                topic=rnd.choices(list(TOPICS), list(TOPICS.values()))[0],
                at=edited,
            )
            out.append((DESK.name, edited, edit))
    return out


KINDS = {
    "ack": NotificationKind.AFTER_HOURS_ACK,
    "handoff": NotificationKind.HANDOFF,
    "survey": NotificationKind.SURVEY,
}


def _recipient(cid: str, channel: Channel) -> str:
    return {Channel.CHAT: cid, Channel.SMS: "+18175550100", Channel.EMAIL: "pat@example.edu"}[
        channel
    ]


def _notice(cid: str, channel: Channel, what: str, at: datetime) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"{what}-{cid}",
        kind=KINDS[what],
        channel=channel,
        recipient=_recipient(cid, channel),
        conversation_id=cid,
        requested_at=at,
    )


def _reply(cid: str, channel: Channel, staff: str, at: datetime) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"reply-{cid}",
        kind=NotificationKind.STAFF_REPLY,
        channel=channel,
        recipient=_recipient(cid, channel),
        conversation_id=cid,
        requested_at=at,
        context={"reply_id": f"r-{cid}", "staff_id": staff, "text": "(generated reply)"},
    )
