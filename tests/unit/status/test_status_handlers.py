"""Consumed events fill the queue: given these events, then this queue (SQLite; PostgreSQL too)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from status_fakes import T0

from services.status.auth import Actor
from services.status.console import views
from services.status.conversations.reading import message_view
from services.status.handlers import Assigning, apply
from services.status.models import PROCESSED, Conversation, DeskChange, TranscriptEntry
from services.status.presence import set_status
from services.status.queue import ANSWERED, open_queue, row_view
from services.status.stats.models import DeskStat
from services.status.sweep import reopen_unsent
from shared.events import (
    SMS_KEYWORD_RULE,
    Action,
    Channel,
    ConversationClaimed,
    ConversationClosed,
    ConversationTransferred,
    CrisisAcknowledged,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
    RuleHit,
    SmsStatusReported,
    StaffStatus,
)

OFF = Assigning()


def received(
    cid: str, *, minutes: int = 0, channel: Channel = Channel.SMS, contact: str = "+18175550100"
) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=f"i-{cid}-{minutes}",
        conversation_id=cid,
        channel=channel,
        provider="twilio",
        provider_message_id=f"SM{cid}{minutes}",
        patron=Patron(contact=contact),
        text="when does the library close?",
        received_at=T0 + timedelta(minutes=minutes),
    )


def routed(
    cid: str,
    department: str = "reference",
    *,
    action: Action = Action.ANSWER,
    priority: Priority = Priority.NORMAL,
    overnight: bool = False,
    channel: Channel = Channel.SMS,
) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d-{cid}-{department}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=channel,
        action=action,
        department=department,
        priority=priority,
        overnight=overnight,
        policy_version="test",
        decided_at=T0 + timedelta(seconds=5),
    )


async def test_interaction_then_routing_opens_a_routed_conversation(session: AsyncSession) -> None:
    assert await apply(session, event_id="e1", data=received("c1"), assigning=OFF)
    assert await apply(
        session,
        event_id="e2",
        data=routed("c1", overnight=True, priority=Priority.HIGH),
        assigning=OFF,
    )
    conv = await session.get(Conversation, "c1")
    assert conv is not None
    assert (conv.channel, conv.department, conv.priority, conv.overnight, conv.state) == (
        "sms",
        "reference",
        "high",
        True,
        "open",
    )
    assert conv.opened_at == T0 and conv.patron_contact == "+18175550100"


async def test_routing_before_interaction_still_yields_one_conversation(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="r", data=routed("c2", "writing-center"), assigning=OFF)
    await apply(session, event_id="i", data=received("c2"), assigning=OFF)
    rows = await open_queue(session=session, actor=Actor(id="sup", role="supervisor"))
    assert [(c.conversation_id, c.department, c.opened_at) for c in rows] == [
        ("c2", "writing-center", T0)
    ]


async def test_redelivered_event_is_applied_once(session: AsyncSession) -> None:
    assert await apply(session, event_id="same", data=received("c3"), assigning=OFF)
    assert not await apply(session, event_id="same", data=received("c3", minutes=9), assigning=OFF)
    conv = await session.get(Conversation, "c3")
    assert conv is not None and conv.last_message_at == T0
    count = await session.scalar(select(func.count()).select_from(PROCESSED))
    assert count == 1


async def test_crisis_routing_sets_the_crisis_flag(session: AsyncSession) -> None:
    await apply(
        session,
        event_id="x",
        data=routed("c4", "care-team", action=Action.ESCALATE_CRISIS, priority=Priority.URGENT),
        assigning=OFF,
    )
    conv = await session.get(Conversation, "c4")
    assert conv is not None and conv.crisis and conv.crisis_at is not None


async def test_a_crisis_keeps_what_kind_the_router_saw_for_the_reescalation(
    session: AsyncSession,
) -> None:
    """The kinds come from the crisis rules' ids (never the words), each once, in the order
    first seen; a later decision adds its own; a staff escalation adds none."""
    crisis = {"action": Action.ESCALATE_CRISIS, "priority": Priority.URGENT}
    first = routed("c4k", "care-team", **crisis).model_copy(
        update={
            "rules": [
                RuleHit(rule_id="crisis-signals"),
                RuleHit(rule_id="crisis-suicide-plan"),
                RuleHit(rule_id="reference-default"),
            ],
            "net": "rules",
        }
    )
    await apply(session, event_id="k1", data=first, assigning=OFF)
    conv = await session.get(Conversation, "c4k")
    assert conv is not None and conv.crisis_kinds == "suicide_self_harm"
    later = first.model_copy(
        update={
            "decision_id": "d-c4k-2",
            "rules": [RuleHit(rule_id="crisis-violence-threat")],
            "decided_at": first.decided_at + timedelta(minutes=2),
        }
    )
    model = later.model_copy(update={"decision_id": "d-c4k-3", "rules": [], "net": "model"})
    staff = later.model_copy(
        update={"decision_id": "d-c4k-4", "rules": [], "net": None, "decided_by": "lokafor"}
    )
    for n, data in enumerate((later, model, staff)):
        await apply(session, event_id=f"k{n + 2}", data=data, assigning=OFF)
    await session.refresh(conv)
    assert conv.crisis_kinds == "suicide_self_harm,violence,learned_model"
    plain = routed("c4n", "reference")
    await apply(session, event_id="k9", data=plain, assigning=OFF)
    other = await session.get(Conversation, "c4n")
    assert other is not None and other.crisis_kinds is None


async def test_close_and_transfer_events(session: AsyncSession) -> None:
    await apply(session, event_id="a", data=received("c5", channel=Channel.CHAT), assigning=OFF)
    await apply(
        session,
        event_id="b",
        data=ConversationTransferred(
            conversation_id="c5",
            channel=Channel.CHAT,
            department="tutoring",
            transferred_at=T0 + timedelta(minutes=1),
        ),
        assigning=OFF,
    )
    conv = await session.get(Conversation, "c5")
    assert conv is not None and conv.department == "tutoring"
    await apply(
        session,
        event_id="c",
        data=ConversationClosed(
            conversation_id="c5", channel=Channel.CHAT, closed_at=T0 + timedelta(minutes=2)
        ),
        assigning=OFF,
    )
    await session.refresh(conv)  # the consumer writes plain rows, not this object
    assert conv.state == "closed"
    await apply(
        session, event_id="d", data=received("c5", minutes=30, channel=Channel.CHAT), assigning=OFF
    )
    await session.refresh(conv)
    assert conv.state == "open"  # the patron wrote again: reopened


async def test_reply_to_ticket_of_offline_assignee_returns_it_to_the_queue(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="1", data=received("c6"), assigning=OFF)
    conv = await session.get(Conversation, "c6")
    assert conv is not None
    conv.assignee = "mgarcia"
    await set_status(
        session=session, staff_id="mgarcia", status=StaffStatus.ONLINE, actor_id="mgarcia", now=T0
    )
    await apply(session, event_id="2", data=received("c6", minutes=1), assigning=OFF)
    await session.refresh(conv)  # the consumer writes plain rows, not this object
    assert conv.assignee == "mgarcia"  # still there
    await set_status(
        session=session, staff_id="mgarcia", status=StaffStatus.OFFLINE, actor_id="mgarcia", now=T0
    )
    await apply(session, event_id="3", data=received("c6", minutes=2), assigning=OFF)
    await session.refresh(conv)
    assert conv.assignee is None
    # and the timeline says why (a shift probe saw the name vanish with no word)
    await session.commit()
    entry = await session.scalar(
        select(TranscriptEntry).where(
            TranscriptEntry.conversation_id == "c6", TranscriptEntry.kind == "unassigned"
        )
    )
    assert entry is not None
    line = message_view(entry, names={"mgarcia": "Maria Garcia"})
    assert line["direction"] == "event" and line["text"] == (
        "Back in the queue (its librarian was Offline when the patron wrote):"
        " claimed until then by Maria Garcia"
    )


async def test_a_crisis_whose_librarian_went_offline_waits_to_be_acknowledged_again(
    session: AsyncSession,
) -> None:
    """A verifying probe's librarian acknowledged a crisis, claimed it and went Offline; the
    patron wrote again ("i took some pills") and the conversation went back to the queue still
    "Crisis, acknowledged", with nobody on it. Now it waits for someone to acknowledge it again:
    on top of every queue, and re-escalated to supervisors if nobody does within the minutes."""
    await apply(session, event_id="c1", data=received("cr"), assigning=OFF)
    crisis = routed("cr", "care-team", action=Action.ESCALATE_CRISIS, priority=Priority.URGENT)
    await apply(session, event_id="c2", data=crisis, assigning=OFF)
    conv = await session.get(Conversation, "cr")
    assert conv is not None and conv.crisis
    conv.assignee, conv.acknowledged_at, conv.acknowledged_by = "mgarcia", T0, "mgarcia"
    conv.reescalated_at = T0
    await set_status(
        session=session, staff_id="mgarcia", status=StaffStatus.OFFLINE, actor_id="mgarcia", now=T0
    )
    await apply(session, event_id="c3", data=received("cr", minutes=20), assigning=OFF)
    await session.refresh(conv)
    assert conv.assignee is None
    assert (conv.acknowledged_at, conv.acknowledged_by, conv.reescalated_at) == (None, None, None)
    assert conv.crisis_at == T0 + timedelta(minutes=20)  # the re-escalation's minutes from now
    entry = await session.scalar(
        select(TranscriptEntry).where(
            TranscriptEntry.conversation_id == "cr", TranscriptEntry.kind == "unassigned"
        )
    )
    assert entry is not None and "the crisis needs acknowledging again" in (entry.text or "")


async def test_auto_assign_least_busy_online_staff_within_capacity(session: AsyncSession) -> None:
    on = Assigning(enabled=True, capacity=2)
    for staff_id in ("mgarcia", "jnguyen", "tbrooks"):
        await set_status(
            session=session, staff_id=staff_id, status=StaffStatus.ONLINE, actor_id=staff_id, now=T0
        )
    assignees = []
    for n in range(5):
        cid = f"auto-{n}"
        await apply(session, event_id=f"i{n}", data=received(cid), assigning=on)
        await apply(session, event_id=f"r{n}", data=routed(cid), assigning=on)
        conv = await session.get(Conversation, cid)
        assert conv is not None
        assignees.append(conv.assignee)
    # reference staff online: jnguyen, mgarcia (tbrooks is NW circulation); 2 each, then full
    assert assignees == ["jnguyen", "mgarcia", "jnguyen", "mgarcia", None]


async def test_later_decisions_keep_overnight_and_never_lower_priority(
    session: AsyncSession,
) -> None:
    await apply(
        session,
        event_id="n1",
        data=routed("c7", overnight=True, priority=Priority.HIGH),
        assigning=OFF,
    )
    later = routed("c7", overnight=False).model_copy(update={"decision_id": "d-later"})
    await apply(session, event_id="n2", data=later, assigning=OFF)
    conv = await session.get(Conversation, "c7")
    assert conv is not None and (conv.overnight, conv.priority) == (True, "high")


def follow_up(cid: str, department: str, *, minutes: int, **kw: object) -> RoutingDecided:
    decided = routed(cid, department, **kw)  # type: ignore[arg-type]
    return decided.model_copy(
        update={
            "decision_id": f"d-{cid}-follow-up-{minutes}",
            "follow_up": True,
            "decided_at": T0 + timedelta(minutes=minutes),
        }
    )


async def routing_lines(session: AsyncSession, cid: str) -> list[str]:
    rows = await session.scalars(
        select(TranscriptEntry.text)
        .where(TranscriptEntry.conversation_id == cid, TranscriptEntry.kind == "routed")
        .order_by(TranscriptEntry.at)
    )
    return [text or "" for text in rows]


async def test_a_follow_up_leaves_the_conversation_with_its_department_and_librarian(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="f1", data=received("c8"), assigning=OFF)
    await apply(session, event_id="f2", data=routed("c8", "reference"), assigning=OFF)
    await apply(
        session,
        event_id="f3",
        data=ConversationClaimed(
            conversation_id="c8", staff_id="mgarcia", at=T0 + timedelta(minutes=1)
        ),
        assigning=OFF,
    )
    later = follow_up("c8", "writing-center", minutes=3, action=Action.TRANSFER)
    await apply(session, event_id="f4", data=later, assigning=OFF)
    conv = await session.get(Conversation, "c8")
    assert conv is not None
    assert (conv.department, conv.assignee, conv.action) == ("reference", "mgarcia", "answer")
    assert len(await routing_lines(session, "c8")) == 1  # the follow-up says nothing new


async def test_a_crisis_conversation_never_leaves_the_care_team_on_a_follow_up(
    session: AsyncSession,
) -> None:
    crisis = routed("c9", "care-team", action=Action.ESCALATE_CRISIS, priority=Priority.URGENT)
    await apply(session, event_id="g1", data=crisis, assigning=OFF)
    flagged = follow_up("c9", "reference", minutes=4).model_copy(update={"safety_review": True})
    await apply(session, event_id="g2", data=flagged, assigning=OFF)
    conv = await session.get(Conversation, "c9")
    assert conv is not None and (conv.department, conv.crisis) == ("care-team", True)
    lines = await routing_lines(session, "c9")
    assert lines[-1] == "Follow-up flagged for safety review — learned safety net"


async def test_a_crisis_in_a_follow_up_moves_the_conversation_to_the_care_team(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="h1", data=routed("c10", "reference"), assigning=OFF)
    escalated = follow_up(
        "c10", "care-team", minutes=2, action=Action.ESCALATE_CRISIS, priority=Priority.URGENT
    )
    await apply(session, event_id="h2", data=escalated, assigning=OFF)
    conv = await session.get(Conversation, "c10")
    assert conv is not None and (conv.department, conv.crisis) == ("care-team", True)


async def test_a_crisis_the_router_escalates_stays_with_the_librarian_who_has_the_patron(
    session: AsyncSession,
) -> None:
    """The librarian in the chat reports the crisis and stays with the patron (the desk's
    procedures); the escalation had left the chat with nobody while the patron wrote."""
    await apply(session, event_id="m1", data=routed("c12", "writing-center"), assigning=OFF)
    claim = ConversationClaimed(
        conversation_id="c12", staff_id="rpatel", at=T0 + timedelta(minutes=1)
    )
    await apply(session, event_id="m2", data=claim, assigning=OFF)
    escalated = follow_up(
        "c12", "care-team", minutes=2, action=Action.ESCALATE_CRISIS, priority=Priority.URGENT
    )
    await apply(session, event_id="m3", data=escalated, assigning=OFF)
    conv = await session.get(Conversation, "c12")
    assert conv is not None
    assert (conv.department, conv.crisis, conv.assignee) == ("care-team", True, "rpatel")
    # a staff transfer to the CARE Team hands the conversation over
    await apply(session, event_id="m4", data=routed("c13", "reference"), assigning=OFF)
    claim = ConversationClaimed(
        conversation_id="c13", staff_id="mgarcia", at=T0 + timedelta(minutes=1)
    )
    await apply(session, event_id="m5", data=claim, assigning=OFF)
    by_staff = follow_up(
        "c13", "care-team", minutes=2, action=Action.ESCALATE_CRISIS, priority=Priority.URGENT
    ).model_copy(update={"follow_up": False, "decided_by": "mgarcia"})
    await apply(session, event_id="m6", data=by_staff, assigning=OFF)
    conv = await session.get(Conversation, "c13")
    assert conv is not None and (conv.department, conv.assignee) == ("care-team", None)


async def test_a_follow_up_is_not_counted_as_a_transfer_in_the_desk_statistics(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="k1", data=routed("c11", "reference"), assigning=OFF)
    later = follow_up("c11", "writing-center", minutes=3, action=Action.TRANSFER)
    await apply(session, event_id="k2", data=later, assigning=OFF)
    escalated = follow_up(
        "c11", "care-team", minutes=5, action=Action.ESCALATE_CRISIS, priority=Priority.URGENT
    )
    await apply(session, event_id="k3", data=escalated, assigning=OFF)
    stat = await session.get(DeskStat, "c11")
    assert stat is not None
    assert (stat.received_by, stat.department, stat.transfers) == ("reference", "care-team", 1)
    assert stat.path == "reference > care-team"


async def test_an_opt_out_is_a_timeline_line_in_words(session: AsyncSession) -> None:
    await apply(session, event_id="m1", data=received("c12"), assigning=OFF)
    stop = NotificationRequested(
        idempotency_key="k-stop",
        kind=NotificationKind.SMS_OPT_OUT,
        channel=Channel.SMS,
        recipient="+18175550100",
        conversation_id="c12",
        interaction_id="i-c12-0",
        context={"keyword": "STOP"},
        requested_at=T0 + timedelta(seconds=2),
    )
    await apply(session, event_id="m2", data=stop, assigning=OFF)
    line = await session.get(TranscriptEntry, "k-stop")
    assert line is not None and line.direction == "event"
    assert line.text is not None and line.text.startswith("The patron's number opted out")


def staff_reply(cid: str, *, minutes: int) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"reply-{cid}-{minutes}",
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        recipient="+18175550100",
        conversation_id=cid,
        context={"text": "Yes, you can renew it online.", "staff_id": "mgarcia"},
        requested_at=T0 + timedelta(minutes=minutes),
    )


async def waiting(session: AsyncSession, cid: str, *, at_minutes: int) -> str:
    conv = await session.get(Conversation, cid)
    assert conv is not None
    return row_view(conv, T0 + timedelta(minutes=at_minutes))["waiting"]


async def test_waiting_counts_from_the_patrons_oldest_unanswered_message(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="w1", data=received("c13", minutes=0), assigning=OFF)
    await apply(session, event_id="w2", data=received("c13", minutes=2), assigning=OFF)
    assert await waiting(session, "c13", at_minutes=5) == "5 min"
    await apply(session, event_id="w3", data=staff_reply("c13", minutes=6), assigning=OFF)
    assert await waiting(session, "c13", at_minutes=20) == ANSWERED
    await apply(session, event_id="w4", data=received("c13", minutes=21), assigning=OFF)
    assert await waiting(session, "c13", at_minutes=30) == "9 min"


async def test_a_message_written_after_a_reply_but_applied_first_still_waits(
    session: AsyncSession,
) -> None:
    await apply(session, event_id="x1", data=received("c14", minutes=0), assigning=OFF)
    await apply(session, event_id="x2", data=received("c14", minutes=10), assigning=OFF)
    await apply(session, event_id="x3", data=staff_reply("c14", minutes=4), assigning=OFF)
    assert await waiting(session, "c14", at_minutes=15) == "5 min"


async def test_a_closed_crisis_conversation_written_to_again_stays_with_the_care_team(
    session: AsyncSession,
) -> None:
    crisis = routed("c15", "care-team", action=Action.ESCALATE_CRISIS, priority=Priority.URGENT)
    await apply(session, event_id="y1", data=crisis, assigning=OFF)
    await acknowledge(session, "c15")
    closed = ConversationClosed(
        conversation_id="c15", channel=Channel.SMS, closed_at=T0 + timedelta(minutes=1)
    )
    await apply(session, event_id="y2", data=closed, assigning=OFF)
    await apply(session, event_id="y3", data=received("c15", minutes=2), assigning=OFF)
    afresh = routed("c15", "reference").model_copy(
        update={"decision_id": "d-c15-again", "decided_at": T0 + timedelta(minutes=2)}
    )
    await apply(session, event_id="y4", data=afresh, assigning=OFF)
    conv = await session.get(Conversation, "c15")
    assert conv is not None and (conv.department, conv.crisis) == ("care-team", True)
    stat = await session.get(DeskStat, "c15")
    assert stat is not None and stat.department == "care-team"


async def acknowledge(session: AsyncSession, cid: str) -> None:
    """A crisis acknowledged by staff (its event, as another replica applies it)."""
    at = T0 + timedelta(seconds=30)
    ack = CrisisAcknowledged(conversation_id=cid, staff_id="lokafor", at=at)
    await apply(session, event_id=f"ack-{cid}", data=ack, assigning=OFF)


async def test_the_platform_neither_closes_nor_moves_an_unacknowledged_crisis(
    session: AsyncSession,
) -> None:
    """A signed ticket.closed four seconds after an escalation closed the crisis: it left every
    queue, the crisis bar and the re-escalation sweep (an outside review); a platform transfer
    moved one out of the CARE Team's sight. Until someone acknowledges it, both are only
    lines on its timeline; after that the platform's close closes it."""
    crisis = routed("c16", "care-team", action=Action.ESCALATE_CRISIS, priority=Priority.URGENT)
    await apply(session, event_id="z0", data=received("c16"), assigning=OFF)
    await apply(session, event_id="z1", data=crisis, assigning=OFF)
    moved = ConversationTransferred(
        conversation_id="c16",
        channel=Channel.SMS,
        department="writing-center",
        transferred_at=T0 + timedelta(seconds=8),
    )
    closed = ConversationClosed(
        conversation_id="c16",
        channel=Channel.SMS,
        closed_at=T0 + timedelta(seconds=9),
        closed_by="platform",
    )
    await apply(session, event_id="z2", data=moved, assigning=OFF)
    await apply(session, event_id="z3", data=closed, assigning=OFF)
    conv = await session.get(Conversation, "c16")
    assert conv is not None
    assert (conv.state, conv.department, conv.crisis) == ("open", "care-team", True)
    lines = (
        await session.scalars(
            select(TranscriptEntry.text)
            .where(TranscriptEntry.conversation_id == "c16", TranscriptEntry.direction == "event")
            .order_by(TranscriptEntry.at)
        )
    ).all()
    assert lines[-2:] == [
        "Transferred to writing-center on the chat platform; kept with the CARE Team until the "
        "crisis is acknowledged",
        "Closed by platform; kept open until the crisis is acknowledged",
    ]
    rows = await open_queue(session=session, actor=Actor(id="sup", role="supervisor"))
    assert "c16" in [c.conversation_id for c in rows]
    await acknowledge(session, "c16")
    later = closed.model_copy(update={"closed_at": T0 + timedelta(minutes=5)})
    await apply(session, event_id="z4", data=later, assigning=OFF)
    await session.refresh(conv)
    assert conv.state == "closed"


async def test_a_message_with_a_nul_byte_is_stored_on_postgresql_too(session: AsyncSession) -> None:
    """An outside probe's email with a NUL in it failed every status batch on PostgreSQL
    (which stores no NUL in text): the queue, crises included, stopped. Read off the topic as
    the consumer reads it, the message is stored without it."""
    raw = received("c-nul", channel=Channel.EMAIL, contact="pat@example.edu").model_dump(
        mode="json"
    )
    raw |= {"text": "a book \u0000 about history", "subject": "help\u0000"}
    raw["patron"]["name"] = "Pat\u0000"
    data = InteractionReceived.model_validate_json(json.dumps(raw))
    await apply(session, event_id="nul-1", data=data, assigning=OFF)
    await session.commit()
    conv = await session.get(Conversation, "c-nul")
    assert conv is not None and conv.subject == "help"
    texts = await session.scalars(
        select(TranscriptEntry.text).where(TranscriptEntry.conversation_id == "c-nul")
    )
    assert list(texts) == ["a book  about history"]


async def test_another_senders_email_in_the_thread_is_marked_and_never_renames_the_patron(
    session: AsyncSession,
) -> None:
    """Someone copied on a patron's email answered into the thread: an outside probe's
    "Mallory" became the patron's name, and her lines read as the patron's."""
    ana = received("c-cc", channel=Channel.EMAIL, contact="ana@my.tccd.edu")
    ana = ana.model_copy(update={"patron": Patron(contact="ana@my.tccd.edu", name="Ana")})
    other = received("c-cc", minutes=5, channel=Channel.EMAIL, contact="m@evil.example")
    other = other.model_copy(update={"patron": Patron(contact="m@evil.example", name="Mallory")})
    await apply(session, event_id="cc-1", data=ana, assigning=OFF)
    await apply(session, event_id="cc-2", data=other, assigning=OFF)
    await session.commit()
    conv = await session.get(Conversation, "c-cc")
    assert conv is not None
    assert (conv.patron_name, conv.patron_contact) == ("Ana", "ana@my.tccd.edu")
    authors = await session.scalars(
        select(TranscriptEntry.author)
        .where(TranscriptEntry.conversation_id == "c-cc")
        .order_by(TranscriptEntry.at)
    )
    assert list(authors) == ["patron", "from:m@evil.example"]
    line = views.line_view(
        {"author": "from:m@evil.example", "direction": "in", "at": T0.isoformat()},
        names={},
        now=T0,
        patron="Ana",
    )
    assert (line["role"], line["who"]) == ("patron", "m@evil.example (not the patron)")


def keyword(cid: str, *, minutes: int, word: str) -> RoutingDecided:
    """The router's decision on a text that was one keyword (refdesk answered it)."""
    return routed(cid).model_copy(
        update={
            "decision_id": f"d-{cid}-{minutes}",
            "interaction_id": f"i-{cid}-{minutes}",
            "rules": [RuleHit(rule_id=SMS_KEYWORD_RULE, matched=[word])],
            "decided_at": T0 + timedelta(minutes=minutes, seconds=1),
        }
    )


async def test_a_keyword_refdesk_answered_waits_for_nobody_but_a_question_before_it_does(
    session: AsyncSession,
) -> None:
    """A texted STOP or HOURS sat in the queue "Waiting 12 min" for a librarian to answer what
    refdesk had already answered."""
    stop = received("c-kw", minutes=0).model_copy(update={"text": "STOP"})
    await apply(session, event_id="kw1", data=stop, assigning=OFF)
    assert await waiting(session, "c-kw", at_minutes=3) == "3 min"
    await apply(
        session, event_id="kw2", data=keyword("c-kw", minutes=0, word="stop"), assigning=OFF
    )
    assert await waiting(session, "c-kw", at_minutes=3) == ANSWERED
    # a question, then HOURS: the question still waits
    await apply(session, event_id="kw3", data=received("c-q", minutes=0), assigning=OFF)
    hours = received("c-q", minutes=2).model_copy(update={"text": "HOURS"})
    await apply(session, event_id="kw4", data=hours, assigning=OFF)
    await apply(
        session, event_id="kw5", data=keyword("c-q", minutes=2, word="hours"), assigning=OFF
    )
    assert await waiting(session, "c-q", at_minutes=5) == "5 min"
    # decided before the message is applied (two topics, one batch: an outside probe's HELP,
    # HOURS and STOP all waited), then a question after it: that one waits
    await apply(session, event_id="kw6", data=keyword("c-d", minutes=0, word="help"), assigning=OFF)
    help_ = received("c-d", minutes=0).model_copy(update={"text": "HELP"})
    await apply(session, event_id="kw7", data=help_, assigning=OFF)
    assert await waiting(session, "c-d", at_minutes=3) == ANSWERED
    await apply(session, event_id="kw8", data=received("c-d", minutes=4), assigning=OFF)
    assert await waiting(session, "c-d", at_minutes=6) == "2 min"  # from the question, not HELP
    # HOURS answered, then a question: it waits from its own time (the probe saw the wait
    # counted from the keyword, hours earlier)
    hours = received("c-h", minutes=0).model_copy(update={"text": "HOURS"})
    await apply(session, event_id="kw9", data=hours, assigning=OFF)
    await apply(
        session, event_id="kw10", data=keyword("c-h", minutes=0, word="hours"), assigning=OFF
    )
    await apply(session, event_id="kw11", data=received("c-h", minutes=90), assigning=OFF)
    assert await waiting(session, "c-h", at_minutes=93) == "3 min"


@pytest.mark.parametrize("decided_first", [False, True])
async def test_keywords_in_a_row_wait_for_nobody(
    session: AsyncSession, decided_first: bool
) -> None:
    """STOP, then START (or PARAR, then INICIO, which refdesk confirmed itself) from one
    number sat in the queue waiting from the STOP (an outside probe)."""
    cid = f"c-kws-{decided_first}"
    for minutes, word in ((0, "STOP"), (3, "START")):
        message = received(cid, minutes=minutes).model_copy(update={"text": word})
        decision = keyword(cid, minutes=minutes, word=word.lower())
        first, second = (decision, message) if decided_first else (message, decision)
        await apply(session, event_id=f"{cid}-{minutes}-a", data=first, assigning=OFF)
        await apply(session, event_id=f"{cid}-{minutes}-b", data=second, assigning=OFF)
        assert await waiting(session, cid, at_minutes=minutes + 2) == ANSWERED, word
    # and a question after them waits from its own time
    await apply(session, event_id=f"{cid}-q", data=received(cid, minutes=9), assigning=OFF)
    assert await waiting(session, cid, at_minutes=11) == "2 min"


@pytest.mark.parametrize("order", ["messages-first", "decisions-reversed"])
async def test_keywords_texted_together_wait_for_nobody(session: AsyncSession, order: str) -> None:
    """Both messages reached the desk before either decision (texted within 50 ms): the
    conversation waited from the first (the verifying probe: 3 of 5 STOP+START, 3 of 3
    HELP+INFO)."""
    cid = f"c-together-{order}"
    stop = received(cid, minutes=0).model_copy(update={"text": "STOP"})
    start = received(cid, minutes=1).model_copy(update={"text": "START"})
    decisions = [
        keyword(cid, minutes=0, word="stop"),
        keyword(cid, minutes=1, word="start"),
    ]
    if order == "decisions-reversed":
        decisions.reverse()
    for n, event in enumerate([stop, start, *decisions]):
        await apply(session, event_id=f"{cid}-{n}", data=event, assigning=OFF)
    assert await waiting(session, cid, at_minutes=3) == ANSWERED
    # a question texted right after a keyword, both before the decisions: it waits, from its
    # own time
    other = f"c-kw-question-{order}"
    first = received(other, minutes=0).model_copy(update={"text": "HOURS"})
    question = received(other, minutes=2)
    events = [first, question, keyword(other, minutes=0, word="hours")]
    for n, event in enumerate(events):
        await apply(session, event_id=f"{other}-{n}", data=event, assigning=OFF)
    assert await waiting(session, other, at_minutes=5) == "3 min"


def refused(reply: NotificationRequested) -> NotificationDelivered:
    """The notifier's word that a reply to a number that texted STOP was not sent."""
    return NotificationDelivered(
        idempotency_key=reply.idempotency_key,
        conversation_id=reply.conversation_id,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        state=DeliveryState.FAILED,
        reason="the patron replied STOP",
        error_code=21610,
        at=reply.requested_at + timedelta(seconds=1),
    )


async def test_a_reply_that_was_never_delivered_leaves_the_patron_waiting(
    session: AsyncSession,
) -> None:
    """A reply to a number that had texted STOP read "Not delivered" in the transcript while
    the queue said "Answered"."""
    await apply(session, event_id="u1", data=received("c-undel", minutes=0), assigning=OFF)
    reply = staff_reply("c-undel", minutes=2)
    await apply(session, event_id="u2", data=reply, assigning=OFF)
    assert await waiting(session, "c-undel", at_minutes=5) == ANSWERED
    await apply(session, event_id="u3", data=refused(reply), assigning=OFF)
    assert await waiting(session, "c-undel", at_minutes=5) == "5 min"
    # a later reply that went out answers it again
    await apply(session, event_id="u4", data=staff_reply("c-undel", minutes=6), assigning=OFF)
    assert await waiting(session, "c-undel", at_minutes=8) == ANSWERED


@pytest.mark.parametrize("report_first", [False, True])
async def test_a_reply_the_carrier_did_not_deliver_leaves_the_patron_waiting(
    session: AsyncSession, report_first: bool
) -> None:
    """Twilio accepted the reply, then its status callback said undelivered (30003): the line
    read "Not delivered: unreachable handset" while the queue said "Answered" (a probe)."""
    cid = f"c-carrier-{report_first}"
    sid = f"SM{'a' * 30}{int(report_first):02d}"
    await apply(session, event_id=f"{cid}-1", data=received(cid, minutes=0), assigning=OFF)
    reply = staff_reply(cid, minutes=2)
    sent = NotificationDelivered(
        idempotency_key=reply.idempotency_key,
        conversation_id=cid,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        state=DeliveryState.SENT,
        message_id=sid,
        text="Yes, you can renew it online.",
        at=reply.requested_at + timedelta(seconds=1),
    )
    report = SmsStatusReported(
        provider_id=sid,
        status="undelivered",
        error_code=30003,
        reported_at=reply.requested_at + timedelta(seconds=20),
    )
    events = [reply, sent, report] if not report_first else [report, reply, sent]
    for n, event in enumerate(events):
        await apply(session, event_id=f"{cid}-e{n}", data=event, assigning=OFF)
    await session.commit()
    assert await waiting(session, cid, at_minutes=5) == "5 min"
    # delivered, it answers: the same reply to another conversation
    other = f"{cid}-ok"
    await apply(session, event_id=f"{other}-1", data=received(other, minutes=0), assigning=OFF)
    ok = staff_reply(other, minutes=2)
    await apply(session, event_id=f"{other}-2", data=ok, assigning=OFF)
    await apply(
        session,
        event_id=f"{other}-3",
        data=sent.model_copy(
            update={
                "idempotency_key": ok.idempotency_key,
                "conversation_id": other,
                "message_id": f"SM{'b' * 32}",
            }
        ),
        assigning=OFF,
    )
    await apply(
        session,
        event_id=f"{other}-4",
        data=report.model_copy(
            update={"provider_id": f"SM{'b' * 32}", "status": "delivered", "error_code": None}
        ),
        assigning=OFF,
    )
    await session.commit()
    assert await waiting(session, other, at_minutes=5) == ANSWERED


@pytest.mark.parametrize(
    ("short", "words"),
    [
        ("rejected 550 5.1.1", "the address does not exist"),
        ("rejected 552 5.3.4", "the message was too large"),
        ("rejected 552", "the message was too large"),
        ("rejected 554 5.7.1", "refused by the receiving mail system"),
        ("rejected 559", "refused by the receiving mail system (559)"),
        ("retries exhausted 421", "the mail relay kept failing and refdesk stopped trying"),
        (
            "unconfirmed",
            "the mail relay took it several times without confirming it: it may have arrived, "
            "more than once",
        ),
        ("invalid context", "invalid context"),
    ],
)
async def test_an_email_the_relay_refused_says_why_in_words(
    session: AsyncSession, short: str, words: str
) -> None:
    """The console said "Not delivered: rejected 550" where a bounce with the same code said
    "the address does not exist" (an outside probe)."""
    cid = f"c-mail-{short.replace(' ', '-')}"
    await apply(
        session,
        event_id=f"{cid}-1",
        data=received(cid, minutes=0, channel=Channel.EMAIL, contact="p@x.edu"),
        assigning=OFF,
    )
    reply = staff_reply(cid, minutes=2).model_copy(
        update={"channel": Channel.EMAIL, "recipient": "p@x.edu"}
    )
    await apply(session, event_id=f"{cid}-2", data=reply, assigning=OFF)
    failed = NotificationDelivered(
        idempotency_key=reply.idempotency_key,
        conversation_id=cid,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.EMAIL,
        state=DeliveryState.FAILED,
        reason=short,
        at=reply.requested_at + timedelta(seconds=1),
    )
    await apply(session, event_id=f"{cid}-3", data=failed, assigning=OFF)
    await session.commit()
    line = await session.get(TranscriptEntry, reply.idempotency_key)
    assert line is not None and line.delivery_reason == words
    assert await waiting(session, cid, at_minutes=5) == "5 min"  # it answered nobody


async def test_a_failure_reported_before_the_reply_itself_still_answers_nobody(
    session: AsyncSession,
) -> None:
    """The notifier's "not delivered" (a STOP'd number) reached the desk before the reply's
    own event, which then marked the conversation "Answered" (1 in 3 of a probe's runs)."""
    await apply(session, event_id="f1", data=received("c-first", minutes=0), assigning=OFF)
    reply = staff_reply("c-first", minutes=2)
    await apply(session, event_id="f2", data=refused(reply), assigning=OFF)
    await apply(session, event_id="f3", data=reply, assigning=OFF)
    assert await waiting(session, "c-first", at_minutes=5) == "5 min"


async def test_a_reply_to_the_survey_never_renames_the_conversation(session: AsyncSession) -> None:
    """A patron answering the survey email reopened the ticket as "Re: How did we do? ...
    [refdesk #email-...]": the topic was lost and the raw id shown."""

    def email(minutes: int, subject: str) -> InteractionReceived:
        data = received("c-subj", minutes=minutes, channel=Channel.EMAIL, contact="p@x.edu")
        return data.model_copy(update={"subject": subject})

    await apply(session, event_id="s1", data=email(0, "Interlibrary loan request"), assigning=OFF)
    reply = email(60, "Re: How did we do? [refdesk #c-subj]")
    await apply(session, event_id="s2", data=reply, assigning=OFF)
    conv = await session.get(Conversation, "c-subj")
    assert conv is not None and conv.subject == "Interlibrary loan request"
    # a new subject in the thread (no "Re:") names the conversation; the tag never shows
    await apply(
        session, event_id="s3", data=email(90, "[refdesk #c-subj] New: a DVD"), assigning=OFF
    )
    await session.refresh(conv)
    assert conv.subject == "New: a DVD"


async def _reply_stuck(session: AsyncSession, cid: str) -> NotificationRequested:
    """A patron's text at minute 0 and a reply at minute 2 the notifier has not sent."""
    await apply(session, event_id=f"{cid}-1", data=received(cid, minutes=0), assigning=OFF)
    reply = staff_reply(cid, minutes=2)
    await apply(session, event_id=f"{cid}-2", data=reply, assigning=OFF)
    await session.commit()
    return reply


async def _sweep(session: AsyncSession, *, at_minutes: int) -> int:
    changed = await reopen_unsent(session=session, now=T0 + timedelta(minutes=at_minutes))
    await session.commit()
    session.expire_all()
    return changed


def _outcome(
    reply: NotificationRequested, *, minutes: int, state: DeliveryState = DeliveryState.SENT
) -> NotificationDelivered:
    return NotificationDelivered(
        idempotency_key=reply.idempotency_key,
        conversation_id=reply.conversation_id,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        state=state,
        reason="retries exhausted 503" if state is DeliveryState.FAILED else None,
        text=None if state is DeliveryState.FAILED else "Yes, you can renew it online.",
        at=T0 + timedelta(minutes=minutes),
    )


async def _row(session: AsyncSession, cid: str, *, at_minutes: int) -> dict[str, object]:
    conv = await session.get(Conversation, cid)
    assert conv is not None
    return row_view(conv, T0 + timedelta(minutes=at_minutes))


async def test_a_reply_unsent_for_minutes_no_longer_counts_as_answered(
    session: AsyncSession,
) -> None:
    """While the mail relay or Twilio was down a reply answered the patron the moment it was
    written: the queue read "Answered" and sank the row below every patron waiting for hours,
    though nothing had reached the patron (a shift probe). Three minutes on, the patron waits
    again, the row says why, and the reply going out answers them."""
    reply = await _reply_stuck(session, "c-stuck")
    assert await _sweep(session, at_minutes=4) == 0  # two minutes after the reply: still early
    assert (await _row(session, "c-stuck", at_minutes=4))["waiting"] == ANSWERED
    assert await _sweep(session, at_minutes=5) == 1
    row = await _row(session, "c-stuck", at_minutes=6)
    assert (row["waiting"], row["answered"], row["unsent"]) == ("6 min", False, True)
    feed = await session.scalar(
        select(func.count())
        .select_from(DeskChange)
        .where(DeskChange.conversation_id == "c-stuck", DeskChange.what == "delivery")
    )
    assert feed == 1  # the consoles are told
    assert await _sweep(session, at_minutes=6) == 0  # another replica's sweep: nothing more
    await apply(session, event_id="c-stuck-3", data=_outcome(reply, minutes=9), assigning=OFF)
    await session.commit()
    row = await _row(session, "c-stuck", at_minutes=10)
    assert (row["waiting"], row["answered"], row["unsent"]) == (ANSWERED, True, False)


async def test_an_unsent_reply_going_out_while_the_sweep_marked_is_answered_by_the_next_sweep(
    session: AsyncSession,
) -> None:
    """The reply's outcome applied by a batch that read the conversation before the sweep
    marked it: the next sweep finds the reply sent and answers the patron."""
    reply = await _reply_stuck(session, "c-race")
    assert await _sweep(session, at_minutes=5) == 1
    await session.execute(
        update(TranscriptEntry)
        .where(TranscriptEntry.id == reply.idempotency_key)
        .values(delivery_state=DeliveryState.SENT.value)
    )
    await session.commit()
    assert (await _row(session, "c-race", at_minutes=6))["unsent"]
    assert await _sweep(session, at_minutes=6) == 1
    row = await _row(session, "c-race", at_minutes=7)
    assert (row["waiting"], row["unsent"]) == (ANSWERED, False)


async def test_a_patron_writing_while_the_reply_is_unsent_still_waits_after_it_goes(
    session: AsyncSession,
) -> None:
    reply = await _reply_stuck(session, "c-more")
    assert await _sweep(session, at_minutes=5) == 1
    await apply(session, event_id="c-more-3", data=received("c-more", minutes=7), assigning=OFF)
    await apply(session, event_id="c-more-4", data=_outcome(reply, minutes=8), assigning=OFF)
    await session.commit()
    row = await _row(session, "c-more", at_minutes=10)
    assert (row["waiting"], row["unsent"]) == ("3 min", False)  # from the message at minute 7


async def test_an_unsent_reply_that_fails_leaves_the_patron_waiting_unmarked(
    session: AsyncSession,
) -> None:
    reply = await _reply_stuck(session, "c-gave-up")
    assert await _sweep(session, at_minutes=5) == 1
    failed = _outcome(reply, minutes=60, state=DeliveryState.FAILED)
    await apply(session, event_id="c-gave-up-3", data=failed, assigning=OFF)
    await session.commit()
    row = await _row(session, "c-gave-up", at_minutes=61)
    assert (row["waiting"], row["unsent"]) == ("1 h 1 min", False)


async def test_a_new_reply_answers_a_patron_whose_earlier_reply_is_unsent(
    session: AsyncSession,
) -> None:
    await _reply_stuck(session, "c-again")
    assert await _sweep(session, at_minutes=5) == 1
    later = staff_reply("c-again", minutes=6)
    await apply(session, event_id="c-again-3", data=later, assigning=OFF)
    await session.commit()
    row = await _row(session, "c-again", at_minutes=7)
    assert (row["waiting"], row["unsent"]) == (ANSWERED, False)
    assert await _sweep(session, at_minutes=8) == 0  # two minutes after the new reply
    assert await _sweep(session, at_minutes=9) == 1  # and it is stuck too


async def test_an_unsent_reply_the_carrier_then_did_not_deliver_answers_nobody(
    session: AsyncSession,
) -> None:
    """The next sweep finds the marked reply out but undelivered: the patron still waits."""
    reply = await _reply_stuck(session, "c-carrier")
    assert await _sweep(session, at_minutes=5) == 1
    await session.execute(
        update(TranscriptEntry)
        .where(TranscriptEntry.id == reply.idempotency_key)
        .values(delivery_state="undelivered")
    )
    await session.commit()
    assert await _sweep(session, at_minutes=6) == 1  # the mark cleared
    row = await _row(session, "c-carrier", at_minutes=7)
    assert (row["waiting"], row["unsent"]) == ("7 min", False)
