"""Routing behaviour: one case per rule, the design samples and the labelled set."""

from __future__ import annotations

from typing import Any

import pytest

from services.router.policy import DecisionInput, Policy
from services.router.policy.examples import run_examples
from services.router.policy.report import evaluate
from shared.events import Action, Channel, PatronRole

from router_support import OPEN, read_jsonl

CASES = [
    # rule id, channel, text, role, action, department
    ("crisis-suicide", "chat", "no reason to live anymore", None, "escalate_crisis", "care-team"),
    ("crisis-self-harm", "sms", "im going to hurt myself tonight", None, "escalate_crisis", "care-team"),
    ("crisis-violence", "email", "My roommate threatened me with a knife", None, "escalate_crisis", "care-team"),
    ("crisis-abuse", "chat", "my boyfriend hits me", None, "escalate_crisis", "care-team"),
    ("crisis-unsafe", "chat", "a man is following me and I feel unsafe", None, "escalate_crisis", "care-team"),
    ("counseling-support", "sms", "my anxiety is really bad", None, "refer_counseling", "counseling"),
    ("counseling-stress", "chat", "so much stress at home lately", None, "refer_counseling", "counseling"),
    ("circulation-managers", "sms", "why do i have a library bill", None, "email_circulation", "circulation-managers"),
    ("faculty-requests", "chat", "Can we schedule an instruction session?", "faculty", "refer_faculty", "faculty-support"),
    ("faculty-requests-self-identified", "email", "As an instructor I'd like to request a purchase",
     None, "refer_faculty", "faculty-support"),
    ("circulation-loans", "chat", "How long can I keep a DVD?", None, "transfer", "nw-circulation"),
    ("writing-center", "chat", "how do I cite a podcast in MLA", None, "transfer", "writing-center"),
    ("tutoring", "sms", "need a biology tutor appointment", None, "transfer", "tutoring"),
    ("campus-ne", "chat", "Can I talk to a Northeast librarian?", None, "transfer", "campus-ne"),
    ("campus-nw", "chat", "is there a northwest campus librarian online", None, "transfer", "campus-nw"),
    ("campus-se", "chat", "I have an assignment from my SE campus class", None, "transfer", "campus-se"),
    ("campus-south", "chat", "I need help with my South campus assignment", None, "transfer", "campus-south"),
    ("campus-tr", "chat", "Can I talk to a Trinity River librarian?", None, "transfer", "campus-tr"),
    ("campus-connect", "chat", "can someone from TCC Connect help with my assignment", None, "transfer",
     "campus-connect"),
    ("reference-default", "chat", "Do you have books on the Harlem Renaissance?", None, "answer", "reference"),
]


def decide(policy: Policy, channel: str, text: str, role: str | None = None) -> Any:
    """Decide one message received while the desk is open."""
    inp = DecisionInput(channel=Channel(channel), text=text, received_at=OPEN,
                        patron_role=PatronRole(role or "unknown"))
    return policy.decide(inp)


@pytest.mark.parametrize(("rule_id", "channel", "text", "role", "action", "dept"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_rule_routes(policy: Policy, rule_id: str, channel: str, text: str,
                          role: str | None, action: str, dept: str) -> None:
    """Given a message typical of a rule, then that rule wins and routes as the policy says."""
    got = decide(policy, channel, text, role)
    assert (got.action.value, got.department) == (action, dept)
    assert got.rules[0].rule_id == rule_id
    assert got.rules[0].matched or rule_id == "reference-default"


def test_every_rule_has_a_case(policy: Policy) -> None:
    """The table above covers every rule in the shipped policy."""
    assert {c[0] for c in CASES} == {r.id for r in policy.doc.rules}


@pytest.mark.parametrize("row", read_jsonl("routing_samples.jsonl"), ids=lambda r: r["text"][:40])
def test_design_samples(policy: Policy, row: dict[str, Any]) -> None:
    """Every labelled sample from the design routes as labelled."""
    got = decide(policy, row["channel"], row["text"], row.get("patron_role"))
    assert (got.action.value, got.department) == (row["expect"]["action"], row["expect"]["department"])


def test_labelled_set_accuracy(policy: Policy) -> None:
    """Crisis recall is total, no idiom escalates, and overall accuracy is at least 90%."""
    report = evaluate(policy, read_jsonl("labelled.jsonl"))
    assert sum(report.total.values()) >= 220
    assert report.total[Action.ESCALATE_CRISIS.value] >= 40
    assert report.idioms >= 30
    assert report.crisis_recall() == 1.0, report.misses
    assert report.idiom_escalations == 0, report.misses
    assert report.accuracy() >= 0.9, report.markdown()
    for action in Action:
        assert report.total[action.value] > 0


@pytest.mark.parametrize("text", [
    "this essay is killing me", "I'm dying to read it", "this class will be the death of me",
    "I could kill for a coffee", "shoot me an email", "dead tired after work",
    "the deadline is killing me", "my mom is going to kill me when she sees my grades",
])
def test_idioms_do_not_escalate(policy: Policy, text: str) -> None:
    """Crisis-sounding idioms are not crises."""
    assert decide(policy, "chat", text).action is not Action.ESCALATE_CRISIS


def test_crisis_wins_over_everything(policy: Policy) -> None:
    """A crisis statement inside a routine question still escalates, urgently."""
    got = decide(policy, "chat", "can I renew my book? honestly I want to kill myself")
    assert got.action is Action.ESCALATE_CRISIS
    assert got.priority.value == "urgent"


def test_policy_examples_pass(policy: Policy) -> None:
    """The examples in the policy file itself all route as written."""
    assert run_examples(policy, now=OPEN) == []
