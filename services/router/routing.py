"""One routing decision with both nets: the learned model's assessment, then the policy."""

from __future__ import annotations

from dataclasses import replace

from services.router.learned import LearnedModel, readable
from services.router.policy.decision import Decision, DecisionInput
from services.router.policy.engine import Policy


def decide(
    policy: Policy,
    model: LearnedModel | None,
    inp: DecisionInput,
    *,
    online: frozenset[str] | None = None,
) -> Decision:
    """Assess the message with the model (when there is one and the message has enough
    letters for it to read: not a photo sent alone, nor a reply of "no"), then apply the
    policy. A quote of refdesk's own sentences is taken out first: it is not the patron's
    (`own_words`); the decision says when a distinctive one was there (`quotes_refdesk`)."""
    own, quoted = policy.own_words.read(inp.text)
    if own is not inp.text:
        inp = replace(inp, text=own)
    seen = None
    if model is not None and readable(inp.text, inp.subject):
        seen = model.assess(inp.text, inp.channel, inp.patron_role, inp.subject)
    decision = policy.decide(inp, online=online, seen=seen)
    return decision.model_copy(update={"quotes_refdesk": True}) if quoted else decision
