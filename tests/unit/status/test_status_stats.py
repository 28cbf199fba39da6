"""Desk statistics match a direct count: a few hundred generated conversations go through the
status handlers, and every grouping of the summary equals what this test counts from the
generated facts by itself (SQLite; PostgreSQL too). Also: order across topics does not matter,
and the annual (fiscal-year) figures."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, bearer

from services.status.handlers import Assigning, apply, apply_batch
from services.status.models import Conversation
from services.status.stats import charts, queries
from services.status.stats.models import DeskStat
from shared.events import (
    SMS_KEYWORD_RULE,
    Action,
    CareReportFiled,
    Channel,
    ConversationClaimed,
    ConversationClosed,
    ConversationTagged,
    ConversationTransferred,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
    RuleHit,
)

DESK = ZoneInfo("America/Chicago")
START = T0 - timedelta(days=24)  # spans the change to daylight time on 9 March 2025
DAYS = 35
DEPARTMENTS = ("reference", "nw-circulation", "writing-center", "tutoring", "campus-ne")
STAFF = ("mgarcia", "jnguyen", "tbrooks", "rpatel", "lokafor", "rare1", "rare2")
STAFF_WEIGHTS = (30, 25, 15, 10, 10, 2, 1)
NOT_A_QUESTION = "not-a-question"
TOPICS = (
    "circulation",
    "citation",
    "research",
    "technology",
    "hours-policies",
    "other",
    NOT_A_QUESTION,
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Truth:
    """One generated conversation as this test knows it (not read back from the database)."""

    cid: str
    channel: str
    received: datetime
    department: str | None
    routed: bool = True
    overnight: bool = False
    crisis: bool = False
    safety: bool = False
    care_report: bool = False
    responses: list[datetime] = field(default_factory=list)
    closed: datetime | None = None
    closer: str | None = None
    read_scale: int | None = None
    topic: str | None = None
    transfers: list[str] = field(default_factory=list)
    ack_s: float | None = None
    events: list[tuple[str, datetime, BaseModel]] = field(default_factory=list)
    """(topic, when, event) in the order they happened."""

    @property
    def question(self) -> bool:
        """Counted: routed, and not set aside as not a question unless a crisis or flagged."""
        return self.routed and (self.topic != NOT_A_QUESTION or self.crisis or self.safety)

    @property
    def set_aside(self) -> bool:
        return self.routed and not self.question


def generate(count: int, seed: int = 18) -> list[Truth]:
    """Conversations with their events: routed, claimed, replied, transferred, closed, tagged."""
    rnd = random.Random(seed)
    out = []
    for n in range(count):
        cid = f"stat-{n:04d}"
        channel = rnd.choice(list(Channel))
        at = START + timedelta(minutes=rnd.randrange(DAYS * 24 * 60), seconds=rnd.randrange(60))
        dept = rnd.choice(DEPARTMENTS)
        truth = Truth(cid, channel.value, at, dept)
        text = InteractionReceived(
            interaction_id=f"i-{cid}",
            conversation_id=cid,
            channel=channel,
            provider="test",
            provider_message_id=cid,
            patron=Patron(contact="+18175550100"),
            text="question",
            received_at=at,
            blocked=n % 97 == 13,
        )
        truth.events.append(("interactions", at, text))
        if text.blocked:  # a blocked contact, never routed: not a question for the statistics
            truth.routed, truth.department = False, None
            out.append(truth)
            continue
        truth.overnight = rnd.random() < 0.3
        truth.crisis = rnd.random() < 0.06
        truth.safety = not truth.crisis and rnd.random() < 0.04
        decided = at + timedelta(seconds=rnd.randint(1, 4))
        truth.events.append(("routing", decided, _decision(cid, channel, dept, decided, truth)))
        if rnd.random() < 0.3:  # a second message from the patron, routed the same way
            later = at + timedelta(seconds=rnd.randint(5, 15))
            again = text.model_copy(update={"interaction_id": f"i2-{cid}", "received_at": later})
            truth.events.append(("interactions", later, again))
            decision = _decision(cid, channel, dept, later + timedelta(seconds=1), truth, "2")
            truth.events.append(("routing", later + timedelta(seconds=1), decision))
        clock = at + timedelta(seconds=5)
        if truth.crisis and rnd.random() < 0.8:
            ack = clock + timedelta(seconds=rnd.choice((40, 200, 600, 1800, 7200)))
            truth.ack_s = (ack - decided).total_seconds()
            event = CrisisAcknowledged(conversation_id=cid, staff_id="lokafor", at=ack)
            truth.events.append(("desk", ack, event))
        if (truth.crisis or truth.safety) and rnd.random() < 0.5:  # its CARE report, and again
            filed = clock + timedelta(seconds=rnd.randint(60, 3600))
            truth.care_report = True
            for staff in ("lokafor", "mgarcia"):
                report = CareReportFiled(conversation_id=cid, staff_id=staff, at=filed)
                truth.events.append(("desk", filed, report))
        staffer = rnd.choices(STAFF, STAFF_WEIGHTS)[0]
        if rnd.random() < 0.8:
            claim = clock + timedelta(seconds=rnd.randint(20, 4 * 3600))
            truth.responses.append(claim)
            truth.events.append(
                (
                    "desk",
                    claim,
                    ConversationClaimed(conversation_id=cid, staff_id=staffer, at=claim),
                )
            )
            clock = claim
        if rnd.random() < 0.6:
            reply = clock + timedelta(seconds=rnd.randint(10, 900))
            truth.responses.append(reply)
            truth.events.append(("notifications", reply, _reply(cid, channel, reply)))
            clock = reply
        if rnd.random() < 0.15:
            to = rnd.choice([d for d in DEPARTMENTS if d != dept])
            moved = clock + timedelta(seconds=rnd.randint(30, 600))
            truth.transfers.append(to)
            truth.responses.append(moved)
            truth.events.append(("routing", moved, _transfer(cid, channel, to, moved, staffer)))
            clock = moved
        elif rnd.random() < 0.04:
            to = rnd.choice([d for d in DEPARTMENTS if d != dept])
            moved = clock + timedelta(seconds=rnd.randint(30, 600))
            truth.transfers.append(to)
            platform = ConversationTransferred(
                conversation_id=cid, channel=channel, department=to, transferred_at=moved
            )
            truth.events.append(("interactions", moved, platform))
            clock = moved
        if rnd.random() < 0.85:
            closed = clock + timedelta(seconds=rnd.randint(60, 6 * 3600))
            truth.closed, truth.closer = closed, staffer
            truth.read_scale = rnd.choice((None, 1, 2, 2, 3, 3, 4, 5, 6))
            truth.topic = rnd.choice((None, *TOPICS))
            close = ConversationClosed(
                conversation_id=cid,
                channel=channel,
                closed_at=closed,
                closed_by=staffer,
                read_scale=truth.read_scale,
                topic=truth.topic,
            )
            truth.events.append(("interactions", closed, close))
            if rnd.random() < 0.1:  # edited within the day
                edited = closed + timedelta(hours=rnd.randint(1, 20))
                truth.read_scale, truth.topic = rnd.randint(1, 6), rnd.choice(TOPICS)
                tag = ConversationTagged(
                    conversation_id=cid,
                    staff_id=staffer,
                    read_scale=truth.read_scale,
                    topic=truth.topic,
                    at=edited,
                )
                truth.events.append(("desk", edited, tag))
        out.append(truth)
    return out


def _decision(
    cid: str, channel: Channel, dept: str, at: datetime, truth: Truth, n: str = "1"
) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d{n}-{cid}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        action=Action.ESCALATE_CRISIS if truth.crisis else Action.ANSWER,
        department=dept,
        priority=Priority.URGENT if truth.crisis else Priority.NORMAL,
        overnight=truth.overnight,
        safety_review=truth.safety,
        policy_version="t",
        decided_at=at,
    )


def _transfer(cid: str, channel: Channel, to: str, at: datetime, staff: str) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"t-{cid}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        action=Action.TRANSFER,
        department=to,
        priority=Priority.NORMAL,
        overnight=False,
        policy_version="staff",
        decided_at=at,
        decided_by=staff,
    )


def _reply(cid: str, channel: Channel, at: datetime) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"reply-{cid}",
        kind=NotificationKind.STAFF_REPLY,
        channel=channel,
        recipient="+18175550100",
        conversation_id=cid,
        requested_at=at,
    )


async def feed(
    sessions: async_sessionmaker[AsyncSession],
    events: list[tuple[str, datetime, BaseModel]],
) -> None:
    """Apply events through the status handlers, a batch per transaction like the consumer."""
    for start in range(0, len(events), 200):
        batch = [
            (f"e{n}", data) for n, (_t, _at, data) in enumerate(events[start : start + 200], start)
        ]
        async with sessions() as session:
            await apply_batch(session, batch, assigning=Assigning())
            await session.commit()


def in_time_order(truths: list[Truth]) -> list[tuple[str, datetime, BaseModel]]:
    return sorted((e for t in truths for e in t.events), key=lambda e: e[1])


# ---- the direct count -----------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, by the standard library."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return {0.5: deciles[4], 0.9: deciles[8]}[q]


KEYS: dict[str, Callable[[Truth], Any]] = {
    "hour": lambda t: t.received.astimezone(DESK).hour,
    "weekday": lambda t: t.received.astimezone(DESK).weekday(),
    "day": lambda t: t.received.astimezone(DESK).date().isoformat(),
    "week": lambda t: (
        t.received.astimezone(DESK).date() - timedelta(days=t.received.astimezone(DESK).weekday())
    ).isoformat(),
    "month": lambda t: t.received.astimezone(DESK).strftime("%Y-%m"),
    "channel": lambda t: t.channel,
    "department": lambda t: t.department,
    "topic": lambda t: t.topic,
    "read_scale": lambda t: t.read_scale,
    "staff": lambda t: t.closer,
}


def expected(truths: list[Truth], frm: date, to: date, group_by: str) -> dict[Any, dict[str, Any]]:
    counted = [t for t in truths if t.question and frm <= t.received.astimezone(DESK).date() <= to]
    groups: dict[Any, list[Truth]] = defaultdict(list)
    for t in counted:
        groups[KEYS[group_by](t)].append(t)
    return {key: figures(members) for key, members in groups.items()}


def figures(members: list[Truth]) -> dict[str, Any]:
    first = [(min(t.responses) - t.received).total_seconds() for t in members if t.responses]
    resolution = [(t.closed - t.received).total_seconds() for t in members if t.closed]

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 1)

    return {
        "questions": len(members),
        "closed": sum(1 for t in members if t.closed),
        "overnight": sum(1 for t in members if t.overnight),
        "transferred": sum(1 for t in members if t.transfers),
        "crisis": sum(1 for t in members if t.crisis),
        "first_response_p50_s": r(pct(first, 0.5)),
        "first_response_p90_s": r(pct(first, 0.9)),
        "resolution_p50_s": r(pct(resolution, 0.5)),
        "resolution_p90_s": r(pct(resolution, 0.9)),
    }


FIGURES = (
    "questions",
    "closed",
    "overnight",
    "transferred",
    "crisis",
    "first_response_p50_s",
    "first_response_p90_s",
    "resolution_p50_s",
    "resolution_p90_s",
)


def close_enough(got: dict[str, Any], want: dict[str, Any]) -> bool:
    for name in FIGURES:
        a, b = got[name], want[name]
        if (a is None) != (b is None):
            return False
        if a is not None and abs(a - b) > 0.11:  # both rounded to 0.1 s
            return False
    return True


@pytest.mark.slow  # a random week of traffic, every grouping counted twice
async def test_every_grouping_matches_a_direct_count(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    truths = generate(300)
    await feed(sessions, in_time_order(truths))
    frm, to = (START + timedelta(days=2)).date(), (START + timedelta(days=30)).date()
    for group_by in KEYS:
        response = await client.get(
            "/reports/summary",
            params={"from": frm.isoformat(), "to": to.isoformat(), "group_by": group_by},
            headers=bearer("dkim"),  # an admin: no cell suppressed
        )
        assert response.status_code == 200, response.text
        body = response.json()
        want = expected(truths, frm, to, group_by)
        got = {g["key"]: g for g in body["groups"] if g["questions"]}
        assert set(got) == set(want), group_by
        for key, figures_wanted in want.items():
            assert close_enough(got[key], figures_wanted), (group_by, key, got[key], figures_wanted)
        total = expected(truths, frm, to, "channel")
        assert body["totals"]["questions"] == sum(f["questions"] for f in total.values())
    in_range = [t for t in truths if frm <= t.received.astimezone(DESK).date() <= to]
    all_of_it = [t for t in in_range if t.question]
    assert body["set_aside"] == sum(1 for t in in_range if t.set_aside) > 0
    assert any(t.topic == NOT_A_QUESTION for t in all_of_it)  # a crisis tagged so: counted
    assert close_enough(body["totals"], figures(all_of_it))
    targets: dict[str, int] = defaultdict(int)
    for t in all_of_it:
        for to_dept in t.transfers:
            targets[to_dept] += 1
    assert {r["department"]: r["transfers"] for r in body["transfers_by_target"]} == targets
    crisis = body["crisis"]
    assert crisis["escalations"] == sum(1 for t in all_of_it if t.crisis)
    assert crisis["safety_reviews"] == sum(1 for t in all_of_it if t.safety)
    assert crisis["care_reports"] == sum(1 for t in all_of_it if t.care_report) > 0
    assert crisis["unacknowledged"] == sum(1 for t in all_of_it if t.crisis and t.ack_s is None)
    acks = [t.ack_s for t in all_of_it if t.ack_s is not None]
    assert crisis["acknowledged"] == {
        "within_5_min": sum(1 for s in acks if s <= 300),
        "within_15_min": sum(1 for s in acks if 300 < s <= 900),
        "within_1_h": sum(1 for s in acks if 900 < s <= 3600),
        "later": sum(1 for s in acks if s > 3600),
    }


async def test_hours_and_weekdays_are_desk_time_and_complete(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    truths = generate(60, seed=3)
    await feed(sessions, in_time_order(truths))
    params = {"from": START.date().isoformat(), "to": (START + timedelta(days=DAYS)).date()}
    hours = (
        await client.get(
            "/reports/summary", params={**params, "group_by": "hour"}, headers=bearer("lokafor")
        )
    ).json()["groups"]
    assert [g["key"] for g in hours] == list(range(24))
    assert hours[9]["label"] == "9 AM" and hours[0]["label"] == "12 AM"
    assert hours[13]["label"] == "1 PM"
    days = (
        await client.get(
            "/reports/summary", params={**params, "group_by": "weekday"}, headers=bearer("lokafor")
        )
    ).json()["groups"]
    assert [g["label"] for g in days] == list(WEEKDAYS)


async def test_events_from_several_topics_in_any_order_give_the_same_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A rewound group reads the topics' partitions at different paces: each topic stays in
    order, but interactions, routing, notifications and desk events interleave differently."""
    truths = generate(80, seed=7)
    ordered = in_time_order(truths)
    rnd = random.Random(1)
    by_topic: dict[str, list[tuple[str, datetime, BaseModel]]] = defaultdict(list)
    for event in ordered:
        by_topic[event[0]].append(event)
    shuffled: list[tuple[str, datetime, BaseModel]] = []
    topics = list(by_topic)
    while topics:  # desk events tend to come first here, then the rest catch up
        topic = rnd.choices(topics, [5 if t == "desk" else 1 for t in topics])[0]
        shuffled.append(by_topic[topic].pop(0))
        topics = [t for t in topics if by_topic[t]]
    await feed(sessions, shuffled)
    async with sessions() as session:
        rows = {r.conversation_id: r for r in (await session.scalars(select(DeskStat))).all()}
        queue = {c.conversation_id: c for c in (await session.scalars(select(Conversation))).all()}
    for truth in truths:
        row = rows[truth.cid]
        # the queue's row shows the newest tags too, whichever of close and edit came first
        assert (queue[truth.cid].read_scale, queue[truth.cid].topic) == (
            truth.read_scale,
            truth.topic,
        ), truth.cid
        assert row.received_at == truth.received
        assert row.received_by == truth.department
        assert row.channel == truth.channel
        assert row.closed_at == truth.closed
        assert (row.read_scale, row.topic) == (truth.read_scale, truth.topic), truth.cid
        assert row.transfers == len(truth.transfers)
        if truth.responses:
            assert row.first_response_at == min(truth.responses)
        assert row.ack_s == truth.ack_s


async def test_a_later_message_reopens_and_a_new_close_ends_it_again(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    truth = generate(1, seed=5)[0]
    start = truth.received
    message = truth.events[0][2]
    assert isinstance(message, InteractionReceived)
    close = ConversationClosed(
        conversation_id=truth.cid,
        channel=message.channel,
        closed_at=start + timedelta(minutes=10),
        closed_by="mgarcia",
        read_scale=3,
    )
    reopen = message.model_copy(
        update={"interaction_id": "again", "received_at": start + timedelta(minutes=20)}
    )
    events = [truth.events[0], truth.events[1], ("i", start, close), ("i", start, reopen)]
    await feed(sessions, events)
    async with sessions() as session:
        row = await session.get(DeskStat, truth.cid)
        assert row is not None and row.closed_at is None and row.resolution_s is None
        assert row.read_scale == 3
    # reopened: nobody's close yet (a probe's staff table still credited the closer)
    day = start.astimezone(DESK).date().isoformat()
    by_staff = await client.get(
        "/reports/summary",
        params={"from": day, "to": day, "group_by": "staff"},
        headers=bearer("dkim"),
    )
    groups = {g["key"]: g["questions"] for g in by_staff.json()["groups"] if g["questions"]}
    assert groups == {None: 1}
    again = close.model_copy(
        update={"closed_at": start + timedelta(minutes=30), "read_scale": None, "topic": "other"}
    )
    async with sessions() as session:
        await apply(session, event_id="close-again", data=again, assigning=Assigning())
        await session.commit()
        row = await session.get(DeskStat, truth.cid)
        assert row is not None and row.resolution_s == 30 * 60
        assert (row.read_scale, row.topic) == (3, "other")


async def test_a_question_after_keywords_only_is_received_where_it_is_routed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """STOP, START, then a question about calculators: a librarian-shift probe found it
    counted as a Reference question transferred to NW Circulation."""
    cid, at = "sms-kw", T0

    def text(words: str, n: int) -> InteractionReceived:
        return InteractionReceived(
            interaction_id=f"i{n}-{cid}",
            conversation_id=cid,
            channel=Channel.SMS,
            provider="twilio",
            provider_message_id=f"SM{n}",
            patron=Patron(contact="+18175550166"),
            text=words,
            received_at=at + timedelta(minutes=n),
        )

    keyword = RoutingDecided(
        decision_id=f"k-{cid}",
        interaction_id=f"i1-{cid}",
        conversation_id=cid,
        channel=Channel.SMS,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.NORMAL,
        overnight=False,
        policy_version="t",
        rules=[RuleHit(rule_id=SMS_KEYWORD_RULE, matched=["stop"])],
        decided_at=at + timedelta(minutes=1),
    )
    question = keyword.model_copy(
        update={
            "decision_id": f"q-{cid}",
            "interaction_id": f"i3-{cid}",
            "action": Action.TRANSFER,
            "department": "nw-circulation",
            "rules": [],
            "decided_at": at + timedelta(minutes=3),
        }
    )
    events = [
        ("i", at, text("STOP", 1)),
        ("r", at, keyword),
        ("i", at, text("can i borrow a calculator", 3)),
        ("r", at, question),
    ]
    await feed(sessions, events)
    async with sessions() as session:
        row = await session.get(DeskStat, cid)
    assert row is not None
    assert (row.received_by, row.department, row.transfers) == (
        "nw-circulation",
        "nw-circulation",
        0,
    )
    assert row.action == "transfer"
    # a number that texted only keywords asked nothing: its conversation is not a question
    only = "sms-kw-only"
    stop = keyword.model_copy(
        update={"conversation_id": only, "decision_id": f"k-{only}", "interaction_id": f"i-{only}"}
    )
    hours = stop.model_copy(
        update={
            "decision_id": f"h-{only}",
            "rules": [RuleHit(rule_id=SMS_KEYWORD_RULE, matched=["hours"])],
            "overnight": True,
        }
    )
    message = text("STOP", 1).model_copy(
        update={"conversation_id": only, "interaction_id": f"i-{only}"}
    )
    async with sessions() as session:  # event ids of their own (feed's are e0, e1, ...)
        batch = [(f"only-{n}", data) for n, data in enumerate((stop, message, hours))]
        await apply_batch(session, batch, assigning=Assigning())
        await session.commit()
    async with sessions() as session:
        kept = await session.get(DeskStat, only)
        counted = await session.scalar(
            select(func.count()).select_from(DeskStat).where(queries.counted(at.date(), at.date()))
        )
    assert kept is None or kept.received_by is None
    assert counted == 1  # the calculator question only


def fiscal_truths() -> list[Truth]:
    """Questions either side of 1 July in desk time (05:00 UTC is midnight in Texas)."""
    out = []
    stamps = [
        datetime.fromisoformat("2025-07-01T04:59:00+00:00"),  # 30 June, 23:59 at the desk
        datetime.fromisoformat("2025-07-01T05:00:00+00:00"),  # 1 July, 00:00
        datetime.fromisoformat("2026-01-15T18:00:00+00:00"),
        datetime.fromisoformat("2026-06-30T22:00:00+00:00"),
        datetime.fromisoformat("2026-07-01T06:00:00+00:00"),  # next fiscal year
        datetime.fromisoformat("2026-02-02T15:00:00+00:00"),  # a wrong number, set aside
    ]
    scales = [2, 1, None, 4, 3, 1]
    topics = ["research", "citation", "hours-policies", None, "other", NOT_A_QUESTION]
    for n, (at, scale, topic) in enumerate(zip(stamps, scales, topics, strict=True)):
        base = generate(1, seed=100 + n)[0]
        first = base.events[0][2]
        assert isinstance(first, InteractionReceived)
        cid = f"fy-{n}"
        text = first.model_copy(update={"conversation_id": cid, "received_at": at})
        decision = RoutingDecided(
            decision_id=f"fy-d-{n}",
            interaction_id=cid,
            conversation_id=cid,
            channel=first.channel,
            action=Action.ANSWER,
            department="reference",
            priority=Priority.NORMAL,
            overnight=False,
            policy_version="t",
            decided_at=at + timedelta(seconds=2),
        )
        close = ConversationClosed(
            conversation_id=cid,
            channel=first.channel,
            closed_at=at + timedelta(minutes=5),
            closed_by="mgarcia",
            read_scale=scale,
            topic=topic,
        )
        truth = Truth(cid, first.channel.value, at, "reference", read_scale=scale, topic=topic)
        truth.events = [("i", at, text), ("r", at, decision), ("i", at, close)]
        if n:  # fy-0 is closed with nobody having answered it: no reference transaction
            claim = ConversationClaimed(conversation_id=cid, staff_id="mgarcia", at=at)
            truth.events.insert(2, ("d", at, claim))
        out.append(truth)
    return out


async def test_annual_summary_counts_a_fiscal_year_july_to_june(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    truths = fiscal_truths()
    await feed(sessions, in_time_order(truths))
    body = (
        await client.get("/reports/annual", params={"fiscal_year": 2026}, headers=bearer("lokafor"))
    ).json()
    assert (body["from"], body["to"]) == ("2025-07-01", "2026-06-30")
    assert body["questions"] == 3
    # the READ 1 question and the hours/policies one are not reference transactions (ACRL)
    assert body["reference_transactions"] == 1 and body["directional_or_policy"] == 2
    months = {m["month"]: m["questions"] for m in body["by_month"]}
    assert len(months) == 12 and months["2025-07"] == 1 and months["2026-01"] == 1
    assert months["2026-06"] == 1 and sum(months.values()) == 3
    assert body["by_read_scale"]["1"] == 1 and body["by_read_scale"]["untagged"] == 1
    assert body["by_topic"]["citation"] == 1 and body["by_topic"]["untagged"] == 1
    assert sum(body["by_channel"].values()) == 3
    assert body["not_responded"] == 0
    assert body["set_aside"] == 1 and body["by_topic"][NOT_A_QUESTION] == 0
    earlier = (
        await client.get("/reports/annual", params={"fiscal_year": 2025}, headers=bearer("dkim"))
    ).json()
    # closed, tagged READ 2, but nobody claimed, answered or transferred it: ACRL's "contact
    # with a member of the library staff" never happened
    assert earlier["questions"] == 1 and earlier["reference_transactions"] == 0
    assert earlier["not_responded"] == 1


@pytest.mark.parametrize(
    ("value", "counts", "axis"),
    [
        (2, True, (2.0, 1.0)),  # 0, 1, 2: never 0, 0.5, 1, 1.5, 2 shown as 0, 0, 1, 2, 2
        (3, True, (3.0, 1.0)),
        (7, True, (8.0, 2.0)),
        (40, True, (40.0, 10.0)),
        (2, False, (2.0, 0.5)),  # minutes may be fractional
    ],
)
def test_an_axis_of_counts_has_whole_ticks(
    value: float, counts: bool, axis: tuple[float, float]
) -> None:
    assert charts.nice_max(value, counts=counts) == axis


def test_a_bound_is_rounded_up_and_a_typical_time_down() -> None:
    """An outside probe: "9 in 10 within 6 min" of a 90th percentile of 6 min 14 s."""
    from services.status.stats.overview import duration

    assert duration(373.9) == "6 min" and duration(373.9, up=True) == "7 min"
    assert duration(629) == "10 min" and duration(629, up=True) == "11 min"
    assert duration(360, up=True) == "6 min"  # exactly six minutes is within six
    assert duration(45.2, up=True) == "46 s" and duration(None, up=True) == "\u2013"


async def test_questions_staff_responded_to_are_counted_and_a_patrons_close_is_nobodys(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """No figure said how many questions got a staff response, and a chat the patron left
    showed in the staff breakdown as a staff member called "patron" (an outside probe)."""
    events: list[BaseModel] = []
    for cid, closer, claimed in (("chat-r1", "mgarcia", True), ("chat-r2", "patron", False)):
        first = generate(1, seed=7)[0].events[0][2]
        assert isinstance(first, InteractionReceived)
        events += [
            first.model_copy(
                update={"conversation_id": cid, "interaction_id": f"i-{cid}", "received_at": T0}
            ),
            _decision(
                cid,
                first.channel,
                "reference",
                T0 + timedelta(seconds=1),
                Truth(cid, first.channel.value, T0, "reference"),
            ),
        ]
        if claimed:
            events.append(
                ConversationClaimed(
                    conversation_id=cid, staff_id="mgarcia", at=T0 + timedelta(minutes=1)
                )
            )
        events.append(
            ConversationClosed(
                conversation_id=cid,
                channel=first.channel,
                closed_at=T0 + timedelta(minutes=5),
                closed_by=closer,
            )
        )
    async with sessions() as session:
        await apply_batch(
            session, [(f"resp-{n}", e) for n, e in enumerate(events)], assigning=Assigning()
        )
        await session.commit()
    day = T0.date().isoformat()
    params = {"from": day, "to": day, "group_by": "staff"}
    body = (await client.get("/reports/summary", params=params, headers=bearer("dkim"))).json()
    assert body["totals"]["questions"] == 2 and body["totals"]["responded"] == 1
    keys = [g["key"] for g in body["groups"]]
    assert "patron" not in keys and None in keys
    csv = await client.get("/reports/summary.csv", params=params, headers=bearer("dkim"))
    assert csv.text.splitlines()[0].endswith(",crisis,responded")
