"""A status service rebuilt from the topics (a fresh database, or a restore rewound to T) reads
the six topics in no common order: one poll batch may hold a conversation's claim, close and
reply, the next its patron's message and the router's decision. The rebuilt queue must say what
the live one said. An outside review rebuilt one and found conversations in no department,
answered patrons waiting and a librarian's conversation moved back to the desk."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, batch, patron_writes

from services.status.models import Conversation
from services.status.presence import set_status
from shared.events import (
    Action,
    CareReportFiled,
    Channel,
    ConversationClaimed,
    ConversationClosed,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Priority,
    RoutingDecided,
    StaffStatus,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING


def at(minutes: float) -> Any:
    return T0 + timedelta(minutes=minutes)


def message(cid: str, minutes: float) -> InteractionReceived:
    return patron_writes(
        cid,
        "Can I renew my laptop loan?",
        channel=Channel.CHAT,
        at=at(minutes),
        key=f"{cid}-{minutes}",
    )


def decision(
    cid: str, minutes: float, department: str, *, crisis: bool = False, by: str = "router"
) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d-{cid}-{minutes}",
        interaction_id=f"i-{cid}-{minutes}",
        conversation_id=cid,
        channel=Channel.CHAT,
        department=department,
        action=Action.ESCALATE_CRISIS if crisis else Action.ANSWER,
        priority=Priority.URGENT if crisis else Priority.NORMAL,
        overnight=False,
        policy_version="t",
        decided_at=at(minutes),
        decided_by=by,
    )


def reply(cid: str, minutes: float, staff_id: str) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"reply-{cid}-{minutes}",
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.CHAT,
        recipient="chat",
        conversation_id=cid,
        context={"text": "Yes: at the service desk.", "staff_id": staff_id},
        requested_at=at(minutes),
    )


def history(suffix: str) -> list[tuple[str, BaseModel]]:
    """A morning at the desk, each event with its topic, in the order it happened."""
    kept, closed, crisis, follow = (f"{name}-{suffix}" for name in ("kept", "closed", "cr", "f"))
    return [
        # kept: claimed and answered, the patron then waits again
        (INTERACTIONS.name, message(kept, 0)),
        (ROUTING.name, decision(kept, 0.1, "reference")),
        (DESK.name, ConversationClaimed(conversation_id=kept, staff_id="mgarcia", at=at(1))),
        (NOTIFICATIONS.name, reply(kept, 2, "mgarcia")),
        (INTERACTIONS.name, message(kept, 5)),
        # closed: answered and closed
        (INTERACTIONS.name, message(closed, 0.5)),
        (ROUTING.name, decision(closed, 0.6, "reference")),
        (DESK.name, ConversationClaimed(conversation_id=closed, staff_id="jnguyen", at=at(1.5))),
        (NOTIFICATIONS.name, reply(closed, 3, "jnguyen")),
        (
            DESK.name,
            ConversationClosed(
                conversation_id=closed,
                channel=Channel.CHAT,
                closed_at=at(4),
                closed_by="jnguyen",
                through=at(0.5),
            ),
        ),
        # a crisis: escalated, acknowledged, the report filed, claimed and answered
        (INTERACTIONS.name, message(crisis, 1)),
        (ROUTING.name, decision(crisis, 1.1, "care-team", crisis=True)),
        (DESK.name, CrisisAcknowledged(conversation_id=crisis, staff_id="lokafor", at=at(2))),
        (DESK.name, CareReportFiled(conversation_id=crisis, staff_id="lokafor", at=at(3))),
        (DESK.name, ConversationClaimed(conversation_id=crisis, staff_id="lokafor", at=at(3.5))),
        (NOTIFICATIONS.name, reply(crisis, 4, "lokafor")),
        # a follow-up after the claim stays with the librarian
        (INTERACTIONS.name, message(follow, 0)),
        (ROUTING.name, decision(follow, 0.1, "reference")),
        (DESK.name, ConversationClaimed(conversation_id=follow, staff_id="jnguyen", at=at(1))),
        (INTERACTIONS.name, message(follow, 6)),
        (ROUTING.name, decision(follow, 6.1, "reference")),
    ]


def queue_state(conv: Conversation | None) -> dict[str, Any]:
    assert conv is not None
    return {
        "department": conv.department,
        "assignee": conv.assignee,
        "state": conv.state,
        "answered": conv.answered_at is not None,
        "waiting_since": conv.waiting_since,
        "crisis": conv.crisis,
        "acknowledged_by": conv.acknowledged_by,
        "care_report_by": conv.care_report_by,
        "channel": conv.channel,
        "on_the_desk": not conv.automatic_only,
        "opened_at": conv.opened_at,
    }


TOPIC_ORDERS = list(
    itertools.permutations([DESK.name, NOTIFICATIONS.name, ROUTING.name, INTERACTIONS.name])
)


@pytest.mark.parametrize(
    "order",
    [0, 5, 11, 17, 23],
    ids=lambda n: "/".join(t.split(".")[1][:4] for t in TOPIC_ORDERS[n]),
)
async def test_a_rebuild_reading_the_topics_in_any_order_makes_the_same_queue(
    sessions: async_sessionmaker[AsyncSession], order: int
) -> None:
    async with sessions() as session:  # on shift: a patron writing again keeps their librarian
        for staff in ("mgarcia", "jnguyen", "lokafor"):
            await set_status(
                session=session, staff_id=staff, status=StaffStatus.ONLINE, actor_id=staff, now=T0
            )
        await session.commit()
    live = history("live")
    for n, (_, data) in enumerate(live):
        await batch(sessions, [(f"live-{n}", data)])
    rebuilt = history("rebuilt")
    by_topic = sorted(rebuilt, key=lambda item: TOPIC_ORDERS[order].index(item[0]))
    # one poll batch per topic, as a rewound consumer is handed them
    for topic, group in itertools.groupby(by_topic, key=lambda item: item[0]):
        await batch(sessions, [(f"{topic}-{n}", data) for n, (_, data) in enumerate(group)])
    async with sessions() as session:
        for name in ("kept", "closed", "cr", "f"):
            expected = queue_state(await session.get(Conversation, f"{name}-live"))
            got = queue_state(await session.get(Conversation, f"{name}-rebuilt"))
            assert got == expected, name
    # what the live queue said, for the record
    assert expected["assignee"] == "jnguyen" and expected["department"] == "reference"
