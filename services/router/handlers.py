"""The router's event handlers: plain functions; the event-to-handler map is at the bottom."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router import tables
from services.router.commands import commands_for, survey_for
from services.router.metrics import DECISIONS
from services.router.policy.engine import Decision, DecisionInput
from services.router.policy.holder import PolicyHolder
from services.router.presence import PresenceView
from shared.db import record_processed
from shared.events import (
    AnyEvent,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    RoutingDecided,
    derived_id,
)
from shared.kafka import publish
from shared.metrics import PUBLISHED
from shared.topics import NOTIFICATIONS, ROUTING

log = logging.getLogger(__name__)
SOURCE = "refdesk/router"
CONSUMER = "router.interactions"


@dataclass
class RouterDeps:
    broker: KafkaBroker
    policies: PolicyHolder
    presence: PresenceView
    engine: AsyncEngine


def decide(deps: RouterDeps, interaction: InteractionReceived) -> Decision:
    """Apply the current policy to one interaction with the current presence view."""
    online = deps.presence.online_departments() if deps.presence.seen_any else None
    inp = DecisionInput(
        channel=interaction.channel,
        text=interaction.text,
        received_at=interaction.received_at,
        patron_role=interaction.patron.role,
        subject=interaction.subject,
        department_hint=interaction.department_hint,
        campus_hint=interaction.campus_hint,
    )
    return deps.policies.current.decide(inp, online=online)


def to_event(interaction: InteractionReceived, decision: Decision) -> RoutingDecided:
    """The wire form of a decision."""
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
        handoff_text=decision.handoff_text,
        guidance=decision.guidance,
        fallback=decision.fallback,
        policy_version=decision.policy_version,
        decided_at=datetime.now(UTC),
    )


async def on_interaction(deps: RouterDeps, event: AnyEvent, data: InteractionReceived) -> None:
    """Decide, publish the decision and its commands, then record the interaction as done.

    Publishing happens before the processed row commits: a crash in between republishes the
    same decision id and idempotency keys, which consumers drop (docs/reliability.md).
    """
    async with deps.engine.connect() as conn:
        seen = await conn.execute(
            tables.processed.select().where(
                tables.processed.c.consumer == CONSUMER,
                tables.processed.c.event_id == data.interaction_id,
            )
        )
        if seen.first() is not None:
            return
        policy = deps.policies.current
        decision = decide(deps, data)
        routed = to_event(data, decision)
        key = data.conversation_id
        commands = commands_for(data, decision, policy)
        # The decision and its commands go out together and are awaited together: one round
        # trip to the in-sync replicas instead of one per record.
        await asyncio.gather(
            publish(deps.broker, ROUTING.name, routed, key=key, source=SOURCE,
                    event_id=routed.decision_id, subject=key),
            *(publish(deps.broker, NOTIFICATIONS.name, command, key=key, source=SOURCE,
                      event_id=command.idempotency_key, subject=key) for command in commands),
        )
        PUBLISHED.labels(topic=ROUTING.name).inc()
        PUBLISHED.labels(topic=NOTIFICATIONS.name).inc(len(commands))
        DECISIONS.labels(action=decision.action.value, department=decision.department).inc()
        await record_processed(conn, tables.processed, CONSUMER, data.interaction_id)
    log.info(
        "routed",
        extra={
            "conversation_id": key,
            "event_id": event.id,
            "action": decision.action.value,
            "department": decision.department,
        },
    )


async def on_closed(deps: RouterDeps, event: AnyEvent, data: ConversationClosed) -> None:
    """A closed email or SMS ticket gets its survey macro (the notifier sends it once, ever)."""
    command = survey_for(data)
    if command is not None:
        await publish(
            deps.broker,
            NOTIFICATIONS.name,
            command,
            key=data.conversation_id,
            source=SOURCE,
            event_id=command.idempotency_key,
            subject=data.conversation_id,
        )


async def on_transferred(deps: RouterDeps, event: AnyEvent, data: ConversationTransferred) -> None:
    """Transfers made on the platform are the status service's concern; the router keeps none."""


Handler = Callable[[RouterDeps, AnyEvent, Any], Awaitable[None]]

HANDLERS: dict[type, Handler] = {
    InteractionReceived: on_interaction,
    ConversationClosed: on_closed,
    ConversationTransferred: on_transferred,
}
