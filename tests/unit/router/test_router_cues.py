"""The weighted cue mechanism: strong cues alone, weak cues only across categories."""

from __future__ import annotations

import pytest
from router_support import OPEN

from services.router.policy import DecisionInput, default_policy_path
from services.router.policy.loader import parse_policy
from shared.events import Action, Channel

SIGNALS = """
  - id: crisis-test
    crisis: true
    action: escalate_crisis
    department: care-team
    conditions:
      threshold: 2
      cues:
        - {category: means, weight: 2, phrases: [noose]}
        - {category: means, weight: 1, phrases: [rope, pills]}
        - {category: distress, weight: 1, phrases: [no way out]}
      none_of: {phrases: [jump rope]}
"""


@pytest.fixture(scope="module")
def cue_policy():  # type: ignore[no-untyped-def]
    """The shipped policy with its crisis rules replaced by one small cue rule."""
    text = default_policy_path().read_text("utf-8")
    start = text.index("  - id: crisis-suicide")
    end = text.index("  # ---- personal problems")
    return parse_policy((text[:start] + SIGNALS.lstrip("\n") + "\n" + text[end:]).encode())


@pytest.mark.parametrize(
    ("text", "escalates"),
    [
        ("a noose", True),  # one strong cue
        ("rope and pills", False),  # two weak cues, same category
        ("rope, no way out", True),  # two weak cues, two categories
        ("no way out", False),  # one weak cue
        ("jump rope, no way out", False),  # the mask removes the rope cue
    ],
)
def test_cue_scoring(cue_policy, text: str, escalates: bool) -> None:  # type: ignore[no-untyped-def]
    """Score = sum over categories of the best unmasked weight, against the threshold."""
    got = cue_policy.decide(DecisionInput(channel=Channel("chat"), text=text, received_at=OPEN))
    assert (got.action is Action.ESCALATE_CRISIS) == escalates
    if escalates:
        assert got.rules[0].rule_id == "crisis-test"
        assert got.rules[0].matched
