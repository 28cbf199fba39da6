"""The router's event handlers: a poll batch of refdesk.interactions, planned record by record
in order, published together, recorded together; the event-to-planner map is at the bottom."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy import Connection

from services.router import conversations, routing, tables
from services.router.commands import commands_for, survey_for
from services.router.conversations import (
    Remembered,
    circulation_named,
    close_token,
    follow_up_keeps,
    opening_of,
    threaded,
)
from services.router.learned import LearnedModel
from services.router.metrics import AUTOMATIC_RECORDED, BLOCKED_DROPPED, DECISIONS, LEARNED
from services.router.policy.decision import Decision, DecisionInput
from services.router.policy.engine import LEARNED_ROUTE, Policy
from services.router.policy.holder import PolicyHolder
from services.router.presence import PresenceView
from shared.clock import utcnow
from shared.db import processed_among, record_processed
from shared.events import (
    Action,
    AnyEvent,
    Automatic,
    Channel,
    CloudEvent,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    NotificationKind,
    RoutingDecided,
    derived_id,
    new_event,
)
from shared.kafka import publish_in_order
from shared.metrics import PUBLISHED
from shared.syncdb import UnitRunner
from shared.topics import NOTIFICATIONS, ROUTING

log = logging.getLogger(__name__)
SOURCE = "refdesk/router"
CONSUMER = "router.interactions"


@dataclass
class RouterDeps:
    broker: KafkaBroker
    policies: PolicyHolder
    presence: PresenceView
    db: UnitRunner
    """the router's database, one hand-off per unit of work (a batch's lookup, its record)"""
    model: LearnedModel | None = None
    clock: Callable[[], datetime] = utcnow
    """Now, aware: the moment a decision is made, which what the patron is told speaks from."""


@dataclass
class PublishPlan:
    """What one poll batch publishes, in the order it was planned, and what it records (a plan
    held in memory for one batch, not an outbox table: nothing of it outlives the batch).

    `done` starts as the batch's interactions already recorded as processed and grows with
    each one decided, so a repeat within the batch is decided once. `remembered` starts as the
    batch's conversations as the router last left them and follows each decision and close;
    `changed` names those to write back.
    """

    policy: Policy
    done: set[str]
    remembered: dict[str, Remembered] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    records: list[tuple[str, CloudEvent[Any], str]] = field(default_factory=list)
    decided: list[tuple[AnyEvent, InteractionReceived, Decision]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """blocked contacts' interactions that no crisis net escalated: recorded, not routed"""
    automatic: list[tuple[str, str]] = field(default_factory=list)
    """automatic mail no crisis net escalated, with its kind: recorded, not routed"""
    closes: list[str] = field(default_factory=list)
    """the event ids of the closes applied: recorded, so a redelivered close is not applied
    again to a conversation the patron reopened since"""

    def remember(self, conversation_id: str, state: Remembered) -> None:
        """Note what the batch changed about a conversation (written with its records)."""
        self.remembered[conversation_id] = state
        self.changed.add(conversation_id)

    def add(self, topic: str, data: BaseModel, *, key: str, event_id: str) -> None:
        """Queue one event for publishing, keyed (and subjected) by its conversation."""
        event = new_event(data, source=SOURCE, subject=key, event_id=event_id)
        self.records.append((topic, event, key))


def decide(
    deps: RouterDeps,
    policy: Policy,
    interaction: InteractionReceived,
    before: Remembered | None = None,
    now: datetime | None = None,
) -> Decision:
    """Apply the model and the batch's policy to one interaction with the current presence
    and what the router remembers of its conversation (`before`: a crisis escalated in it, the
    circulation managers emailed while it is open).
    An automatic reply is decided by the rules alone: the learned net knows patrons' messages,
    not out-of-office notes, and escalates notes such as "out following a death in the
    family"; the rules' explicit crisis statements still escalate."""
    model = None if interaction.automatic is not None else deps.model
    online = deps.presence.online_departments() if deps.presence.seen_any else None
    inp = DecisionInput(
        channel=interaction.channel,
        text=interaction.text,
        received_at=interaction.received_at,
        patron_role=interaction.patron.role,
        subject=interaction.subject,
        department_hint=interaction.department_hint,
        campus_hint=interaction.campus_hint,
        crisis_conversation=before is not None and before.crisis,
        circulation_emailed=before is not None and before.follows and before.circulation_emailed,
        patron_name=interaction.patron.name,
        decided_at=now,
    )
    return routing.decide(policy, model, inp, online=online)


def to_event(
    interaction: InteractionReceived,
    decision: Decision,
    *,
    decided_at: datetime,
    follow_up: bool = False,
) -> RoutingDecided:
    """The wire form of a decision made at `decided_at` (the router's clock, the moment what
    the patron is told speaks from); a follow-up's names no hand-off: none is sent."""
    return RoutingDecided(
        decision_id=derived_id(interaction.interaction_id, "decision"),
        interaction_id=interaction.interaction_id,
        conversation_id=interaction.conversation_id,
        channel=interaction.channel,
        action=decision.action,
        department=decision.department,
        priority=decision.priority,
        overnight=decision.overnight,
        rules=list(decision.rules),
        handoff_text=None if follow_up else decision.handoff_text,
        guidance=decision.guidance,
        fallback=None if follow_up else decision.fallback,
        policy_version=decision.policy_version,
        decided_at=decided_at,
        lang=decision.lang,
        safety_review=decision.safety_review,
        risk_score=decision.risk_score,
        net=decision.net,
        model_version=decision.model_version,
        follow_up=follow_up,
    )


def plan_interaction(
    deps: RouterDeps, plan: PublishPlan, event: AnyEvent, data: InteractionReceived
) -> None:
    """Decide a new interaction and queue its decision, then its notification commands."""
    if data.interaction_id in plan.done:
        return
    plan.done.add(data.interaction_id)
    if data.automatic is Automatic.BOUNCE:
        # a delivery report is a mail system's own words (the learned net escalated every one
        # it was shown): recorded in its conversation, never decided
        plan.automatic.append((data.interaction_id, data.automatic.value))
        return
    key = data.conversation_id
    before = plan.remembered.get(key)
    now = deps.clock()  # what the patron is told speaks from now, not from the message's date
    decision = decide(deps, plan.policy, data, before, now)
    sender = (
        plan.policy.department_of_address(data.patron.contact)
        if data.channel is Channel.EMAIL and data.patron is not None
        else None
    )
    if sender is not None:  # one of the desk's own departments wrote (not a patron)
        decision = plan.policy.desk_mail(decision, sender)
    if (
        data.blocked
        and decision.action is not Action.ESCALATE_CRISIS
        and not decision.safety_review
    ):
        # a blocklisted contact reaches the desk only through a crisis net (rules or model),
        # its review flag included: "I'm outside the library waiting for you" from a blocked
        # harasser had been dropped with nobody told (an outside review)
        plan.dropped.append(data.interaction_id)
        return
    if data.automatic is not None and decision.action is not Action.ESCALATE_CRISIS:
        # an automatic reply is recorded in its conversation (status reads the interaction)
        # and decided no further: it asks nothing of the desk, and routing it would move or
        # answer the conversation; a crisis rule's escalation still stands
        plan.automatic.append((data.interaction_id, data.automatic.value))
        return
    follow_up = before is not None and before.follows
    routed = to_event(data, decision, decided_at=now, follow_up=follow_up)
    plan.add(ROUTING.name, routed, key=key, event_id=routed.decision_id)
    # a new round (the first message, or the first after a close) is an opening of the
    # conversation, named by the close before it: its after-hours acknowledgement's key
    commands = commands_for(
        data,
        decision,
        plan.policy,
        opening=opening_of(before),
        now=now,
        # a new conversation quoting refdesk's own words, not a reply in its thread: a ticket
        # system's or autoresponder's acknowledgement of what refdesk sent, which an answer
        # would keep going for ever (an outside review); and a sender staff blocked, whose
        # flagged message had been sent the after-hours acknowledgement. Staff read both and
        # answer by hand; a crisis still gets its resources
        to_patron=not ((before is None and decision.quotes_refdesk) or data.blocked),
    )
    if before is not None and follow_up:
        commands = [threaded(c, before) for c in commands if follow_up_keeps(c, before, now)]
    if sender is not None:
        # nothing goes back to a department's mailbox (an acknowledgement or crisis resources
        # to the circulation managers); a crisis it reports still alerts the CARE Team
        commands = [c for c in commands if c.kind is NotificationKind.CRISIS_ALERT]
    for command in commands:
        plan.add(NOTIFICATIONS.name, command, key=key, event_id=command.idempotency_key)
    plan.decided.append((event, data, decision))
    crisis = decision.action is Action.ESCALATE_CRISIS
    circulation = next((c for c in commands if c.kind is NotificationKind.CIRCULATION_EMAIL), None)
    emailed = circulation.idempotency_key if circulation is not None else None
    kinds = {c.kind for c in commands}
    alerted = now if NotificationKind.CRISIS_ALERT in kinds else None
    reviewed = now if NotificationKind.SAFETY_REVIEW_ALERT in kinds else None
    named = circulation_named(circulation) if circulation is not None else None
    asked = decision.sms_keyword is None
    if before is not None and follow_up:
        after = replace(
            before,
            crisis=before.crisis or crisis,
            circulation_emailed=before.circulation_emailed or emailed is not None,
            circulation_key=before.circulation_key or emailed,
            closed=False,
            asked=before.asked or asked,
            crisis_alerted_at=alerted or before.crisis_alerted_at,
            review_alerted_at=reviewed or before.review_alerted_at,
            circulation_named=named or before.circulation_named,
            last_message_at=max(
                t for t in (before.last_message_at, data.received_at) if t is not None
            ),
        )
    else:
        after = Remembered(
            routed_at=routed.decided_at,
            crisis=crisis,
            circulation_emailed=emailed is not None,
            circulation_key=emailed,
            asked=asked,
            last_close=opening_of(before),
            crisis_alerted_at=alerted,
            review_alerted_at=reviewed,
            circulation_named=named,
            last_message_at=data.received_at,
        )
    plan.remember(key, after)


def plan_closed(
    deps: RouterDeps, plan: PublishPlan, event: AnyEvent, data: ConversationClosed
) -> None:
    """A closed email or SMS ticket gets its survey macro (the notifier sends it once, ever),
    unless a crisis was escalated in it (no rating request to a patron in crisis) or the
    patron only texted keywords (HELP, HOURS: nothing was asked); the patron's next message
    starts a new round, a new opening of the conversation named by this close. A close already
    applied (redelivered after its row was written) changes nothing: it would close again a
    conversation the patron has reopened since; nor does a stale close, one that accounted only
    for messages older than the patron's latest (`through`), made before the patron wrote again
    and published late."""
    if event.id in plan.done:
        return
    plan.done.add(event.id)
    plan.closes.append(event.id)
    before = plan.remembered.get(data.conversation_id)
    token = close_token(data)
    if before is not None and before.last_close == token:
        return  # the same close again (republished under another event id)
    if (
        before is not None
        and data.through is not None
        and before.last_message_at is not None
        and before.last_message_at > data.through
    ):
        # made before the patron wrote again, published late (status's outbox, the broker
        # away): the conversation is open again at the desk, and gets no survey now
        log.info(
            "stale close passed over",
            extra={"conversation_id": data.conversation_id, "event_id": event.id},
        )
        return
    if before is not None:
        # a new round compares its circulation emails afresh: what the last one named goes
        plan.remember(
            data.conversation_id,
            replace(before, closed=True, last_close=token, circulation_named=None),
        )
    if before is not None and (before.crisis or not before.asked):
        return
    command = survey_for(data)
    if command is not None:
        plan.add(
            NOTIFICATIONS.name, command, key=data.conversation_id, event_id=command.idempotency_key
        )


def plan_transferred(
    deps: RouterDeps, plan: PublishPlan, event: AnyEvent, data: ConversationTransferred
) -> None:
    """Transfers made on the platform are the status service's concern; the router keeps none."""


async def route_batch(deps: RouterDeps, items: Sequence[tuple[AnyEvent, BaseModel]]) -> None:
    """Route one poll batch: look up which interactions are already processed (one query),
    plan every event in order, publish everything and await the acks together, then record
    the decided interactions as processed (one transaction; each a single hand-off to the
    database's thread).

    Publishing happens before the processed rows commit: a crash in between republishes the
    same decision ids and idempotency keys, which consumers drop (docs/reliability.md).
    """
    ids = [data.interaction_id for _, data in items if isinstance(data, InteractionReceived)]
    ids += [event.id for event, data in items if isinstance(data, ConversationClosed)]
    talks = {
        data.conversation_id
        for _, data in items
        if isinstance(data, InteractionReceived | ConversationClosed)
    }
    done: set[str] = set()
    remembered: dict[str, Remembered] = {}
    if talks:

        def look(conn: Connection) -> tuple[set[str], dict[str, Remembered]]:
            processed = processed_among(conn, tables.processed, CONSUMER, ids)
            return processed, conversations.load(conn, talks)

        done, remembered = await deps.db(look)
    plan = PublishPlan(policy=deps.policies.current, done=done, remembered=remembered)
    for event, data in items:
        planner = PLANNERS.get(type(data))
        if planner is not None:
            planner(deps, plan, event, data)
    if plan.records:
        await publish_in_order(deps.broker, plan.records)
    for topic, count in Counter(topic for topic, _, _ in plan.records).items():
        PUBLISHED.labels(topic=topic).inc(count)
    for _, _, decision in plan.decided:
        DECISIONS.labels(action=decision.action.value, department=decision.department).inc()
        effect = learned_effect(decision)
        if effect is not None:
            LEARNED.labels(effect=effect).inc()
    BLOCKED_DROPPED.inc(len(plan.dropped))
    for kind, count in Counter(kind for _, kind in plan.automatic).items():
        AUTOMATIC_RECORDED.labels(kind=kind).inc(count)
    processed = [d.interaction_id for _, d, _ in plan.decided] + plan.dropped
    processed += [interaction_id for interaction_id, _ in plan.automatic]
    processed += plan.closes
    changed = [(c, plan.remembered[c]) for c in sorted(plan.changed)]
    if processed or changed:

        def record(conn: Connection) -> None:
            record_processed(conn, tables.processed, CONSUMER, processed)
            conversations.save(conn, changed)

        await deps.db(record)
    for event, data, decision in plan.decided:
        log.info(
            "routed",
            extra={
                "conversation_id": data.conversation_id,
                "event_id": event.id,
                "action": decision.action.value,
                "department": decision.department,
            },
        )


def learned_effect(decision: Decision) -> str | None:
    """What the learned net changed about a decision, for the metric (None: nothing)."""
    if decision.net == "model":
        return "flagged" if decision.safety_review else "escalated"
    if decision.rules and decision.rules[0].rule_id == LEARNED_ROUTE:
        return "rerouted"
    return None


Planner = Callable[[RouterDeps, PublishPlan, AnyEvent, Any], None]

PLANNERS: dict[type, Planner] = {
    InteractionReceived: plan_interaction,
    ConversationClosed: plan_closed,
    ConversationTransferred: plan_transferred,
}
