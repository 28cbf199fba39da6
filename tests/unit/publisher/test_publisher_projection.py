"""The public view of raw events: one case per event type, and what never crosses over."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from services.publisher.projection import conversation_hash, project, slug
from shared.events import (
    Action,
    AnyEvent,
    Automatic,
    Bounce,
    Channel,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    Patron,
    PatronRole,
    Priority,
    PublicConversationRouted,
    RoutingDecided,
    StaffGuidance,
    derived_id,
    new_event,
)

KEY = "unit-test-key"
T = datetime(2025, 12, 1, 3, 15, tzinfo=UTC)
PII = ("Ana Ruiz", "ana@my.tccd.edu", "+18175550199", "1234567", "lost my calculator", "staff-7")


def envelope(data: BaseModel) -> tuple[AnyEvent, BaseModel]:
    event = AnyEvent.model_validate_json(new_event(data, source="unit").model_dump_json())
    return event, data


RECEIVED = InteractionReceived(
    interaction_id="i1",
    conversation_id="c1",
    channel=Channel.SMS,
    provider="twilio",
    provider_message_id="SM1",
    patron=Patron(contact=PII[2], name=PII[0], role=PatronRole.STUDENT),
    text=f"{PII[4]} {PII[3]} {PII[1]}",
    received_at=T,
    campus_hint="campus-nw",
    department_hint="Ana's desk",
)
ROUTED = RoutingDecided(
    decision_id="d1",
    interaction_id="i1",
    conversation_id="c1",
    channel=Channel.SMS,
    action=Action.EMAIL_CIRCULATION,
    department="circulation-managers",
    priority=Priority.HIGH,
    overnight=True,
    handoff_text=f"{PII[0]}: emailing circulation",
    policy_version="p1",
    guidance=StaffGuidance(summary=PII[4], extracted={"tcc_id": PII[3]}),
    decided_at=T,
    decided_by=PII[5],
)
CLOSED = ConversationClosed(
    conversation_id="c1",
    channel=Channel.SMS,
    closed_at=T,
    closed_by=PII[5],
    patron_contact=PII[1],
    reason="Closed",
)

CASES: list[tuple[BaseModel, str, dict[str, Any]]] = [
    (
        RECEIVED,
        "edu.tccd.refdesk.public.interaction.received.v1",
        {
            "channel": "sms",
            "campus_hint": "campus-nw",
            "department_hint": None,
            "received_at": "2025-12-01T03:15:00Z",
            "overnight": None,
            "automatic": False,
        },
    ),
    (
        RECEIVED.model_copy(
            update={
                "channel": Channel.EMAIL,
                "automatic": Automatic.BOUNCE,
                "bounce": Bounce(message_id=f"{PII[3]}@refdesk.tccd.edu", status="5.1.1"),
            }
        ),
        "edu.tccd.refdesk.public.interaction.received.v1",
        {
            "channel": "email",
            "campus_hint": "campus-nw",
            "department_hint": None,
            "received_at": "2025-12-01T03:15:00Z",
            "overnight": None,
            "automatic": True,  # the report's findings stay private
        },
    ),
    (
        ROUTED,
        "edu.tccd.refdesk.public.conversation.routed.v1",
        {
            "channel": "sms",
            "action": "email_circulation",
            "department": "circulation-managers",
            "priority": "high",
            "overnight": True,
            "decided_at": "2025-12-01T03:15:00Z",
            "follow_up": False,
        },
    ),
    (
        CLOSED,
        "edu.tccd.refdesk.public.conversation.closed.v1",
        {"channel": "sms", "closed_at": "2025-12-01T03:15:00Z", "reason": "closed"},
    ),
]


@pytest.mark.parametrize(
    ("data", "public_type", "expected"), CASES, ids=[c[1].split(".public.")[1] for c in CASES]
)
def test_each_raw_event_projects_to_its_public_event(
    data: BaseModel, public_type: str, expected: dict[str, Any]
) -> None:
    event, data = envelope(data)
    [out] = project(event, data, key=KEY)
    body = json.loads(out.event.model_dump_json())
    assert body["type"] == public_type
    assert body["id"] == derived_id(event.id, "public")
    assert body["time"] == event.time.isoformat().replace("+00:00", "Z")
    assert body["data"] == {"conversation_hash": conversation_hash("c1", key=KEY), **expected}
    assert out.key == body["data"]["conversation_hash"]
    text = out.event.model_dump_json()
    assert not [p for p in PII if p in text]
    assert '"c1"' not in text


def test_a_redelivered_event_projects_identically() -> None:
    event, data = envelope(ROUTED)
    first, second = project(event, data, key=KEY), project(event, data, key=KEY)
    assert first[0].event.model_dump_json() == second[0].event.model_dump_json()


def test_the_hash_is_keyed() -> None:
    assert conversation_hash("c1", key="a") != conversation_hash("c1", key="b")
    assert conversation_hash("c1", key="a") == conversation_hash("c1", key="a")
    assert len(conversation_hash("c1", key="a")) == 64


@pytest.mark.parametrize(
    "data",
    [
        ConversationTransferred(
            conversation_id="c1",
            channel=Channel.CHAT,
            department="tutoring",
            transferred_at=T,
            by=PII[5],
            note=PII[4],
        ),
        NotificationRequested(
            idempotency_key="k",
            kind=NotificationKind.SURVEY,
            channel=Channel.EMAIL,
            recipient=PII[1],
            conversation_id="c1",
            requested_at=T,
        ),
    ],
)
def test_private_types_are_not_projected(data: BaseModel) -> None:
    event, data = envelope(data)
    assert project(event, data, key=KEY) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("campus-nw", "campus-nw"),
        (" Writing-Center ", "writing-center"),
        ("Ana's desk", None),
        ("call 817 555 0199", None),
        ("", None),
        (None, None),
        ("x" * 80, None),
    ],
)
def test_only_id_like_labels_pass(raw: str | None, expected: str | None) -> None:
    assert slug(raw) == expected


@pytest.mark.parametrize(
    ("department", "campus", "reason", "published"),
    [
        ("ana-gomez-2223334", "ph-817-555-0123", "ana-gomez-tcc-2223334", (None, None, None)),
        (" Writing-Center ", "campus-nw", "Ended", ("writing-center", "campus-nw", "ended")),
    ],
)
def test_a_patrons_hints_pass_only_as_the_desks_own_ids(
    department: str, campus: str, reason: str, published: tuple[str | None, ...]
) -> None:
    """A chat platform's department, campus and close reason that merely looked like ids
    reached the public stream (an outside probe's "ana-gomez-2223334", "ph-817-555-0123")."""
    update = {"department_hint": department, "campus_hint": campus}
    [received] = project(*envelope(RECEIVED.model_copy(update=update)), key=KEY)
    [closed] = project(*envelope(CLOSED.model_copy(update={"reason": reason})), key=KEY)
    got = received.event.data.department_hint, received.event.data.campus_hint
    assert (*got, closed.event.data.reason) == published


def test_a_blocked_contacts_message_is_not_published() -> None:
    assert project(*envelope(RECEIVED.model_copy(update={"blocked": True})), key=KEY) == []


def test_public_models_ignore_fields_added_later() -> None:
    data = {
        "conversation_hash": "h",
        "channel": "chat",
        "action": "answer",
        "department": "reference",
        "priority": "normal",
        "overnight": False,
        "decided_at": "2025-12-01T03:15:00Z",
        "added_in_a_later_version": 1,
    }
    assert PublicConversationRouted.model_validate(data).department == "reference"
