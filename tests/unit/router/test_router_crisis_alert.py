"""The CARE Team's alert names the patron's language and the kind of crisis the router saw
(from the decision's crisis rule ids), and never the patron's words or contact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.router.commands import crisis_kinds, staff_commands
from services.router.policy import Policy
from services.router.policy.decision import Decision, DecisionInput
from shared.events import (
    Action,
    Channel,
    CrisisAlertContext,
    InteractionReceived,
    Patron,
    Priority,
    RuleHit,
)

OPEN_HOURS = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Chicago
PHONE = "+18175550123"


def _interaction(text: str) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=str(uuid.uuid4()),
        conversation_id=f"sms-{uuid.uuid4()}",
        channel=Channel.SMS,
        provider="test",
        provider_message_id=str(uuid.uuid4()),
        patron=Patron(contact=PHONE, name="Ana Gomez"),
        text=text,
        received_at=OPEN_HOURS,
    )


def _decided(policy: Policy, data: InteractionReceived) -> Decision:
    inp = DecisionInput(channel=data.channel, text=data.text, received_at=data.received_at)
    return policy.decide(inp, online=None)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("I want to kill myself tonight", ["suicide_self_harm"]),
        ("I'm going to shoot him tomorrow", ["violence"]),
        ("my boyfriend hits me and I'm scared to go home", ["abuse", "unsafe"]),
        ("I don't feel safe at home", ["unsafe"]),
        ("the rope is ready and i wrote my goodbye letters", ["warning_signs"]),
    ],
)
def test_the_alert_names_the_kind_of_crisis_and_the_language(
    policy: Policy, text: str, kinds: list[str]
) -> None:
    data = _interaction(text)
    decision = _decided(policy, data)
    assert decision.action is Action.ESCALATE_CRISIS
    [alert] = staff_commands(data, decision, policy)
    context = CrisisAlertContext.model_validate(alert.context)
    assert (context.patron_lang, context.crisis_kinds) == ("en", kinds)
    # never the patron's words, name or contact
    flat = repr(alert.context)
    assert PHONE not in flat and "Ana Gomez" not in flat and text not in flat


def test_a_spanish_patrons_alert_says_spanish(policy: Policy) -> None:
    data = _interaction("Ya no quiero vivir, quiero matarme esta noche")
    decision = _decided(policy, data).model_copy(update={"lang": "es"})  # as the net detects
    [alert] = staff_commands(data, decision, policy)
    assert alert.context["patron_lang"] == "es"
    assert alert.context["crisis_kinds"] == ["suicide_self_harm"]


def _decision(*rule_ids: str) -> Decision:
    return Decision(
        action=Action.ESCALATE_CRISIS,
        department="care-team",
        priority=Priority.URGENT,
        overnight=False,
        rules=[RuleHit(rule_id=r, matched=["words"]) for r in rule_ids],
        policy_version="test",
    )


def test_kinds_come_from_rule_ids_in_order_once_each() -> None:
    assert crisis_kinds(
        _decision("crisis-self-harm", "crisis-suicide-topic", "crisis-violence-topic")
    ) == ["suicide_self_harm", "violence"]
    assert crisis_kinds(_decision("crisis-signals", "crisis-abuse-topic")) == ["abuse"]
    assert crisis_kinds(_decision("crisis-signals", "reference-default")) == ["warning_signs"]


def test_a_crisis_no_rule_matched_was_read_by_the_learned_model() -> None:
    assert crisis_kinds(_decision("learned-crisis", "reference-default")) == ["learned_model"]
