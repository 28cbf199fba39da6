"""One routing decision with both nets: the learned model's assessment, then the policy."""

from __future__ import annotations

from services.router.learned import LearnedModel
from services.router.policy.decision import Decision, DecisionInput
from services.router.policy.engine import Policy


def decide(
    policy: Policy,
    model: LearnedModel | None,
    inp: DecisionInput,
    *,
    online: frozenset[str] | None = None,
) -> Decision:
    """Assess the message with the model (when there is one), then apply the policy."""
    seen = None
    if model is not None:
        seen = model.assess(inp.text, inp.channel, inp.patron_role, inp.subject)
    return policy.decide(inp, online=online, seen=seen)
