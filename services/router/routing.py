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
    """Assess the message with the model (when there is one and the message has words: a
    photo sent alone gives it nothing to read), then apply the policy."""
    seen = None
    if model is not None and (inp.text.strip() or (inp.subject or "").strip()):
        seen = model.assess(inp.text, inp.channel, inp.patron_role, inp.subject)
    return policy.decide(inp, online=online, seen=seen)
