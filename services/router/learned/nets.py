"""How the two nets combine: the order is written here once, for the engine and for training.

1. A crisis rule fired: escalate (net "rules"); the model's score is only reported. Except
   when the only crisis rules that fired are `corroborate` rules (a topic word alone:
   "suicide", "overdose", "abuse", "stalking"): they escalate when the model's risk reaches
   the corroboration threshold, and otherwise the topic word is read as a topic and the
   message goes on to 2-4 as if no crisis rule had fired. On the corpus authors n, o and p,
   unseen by the model then shipped, 3 of the 46 messages escalated on a topic word alone
   were crises, and all 3 scored above the review threshold. The corroboration threshold is
   chosen in training within the false-escalation budget and the review threshold within the
   review budget, each on its own (a model file without the first uses the second).
2. The model's risk is at or above the escalation threshold: escalate (net "model").
3. Otherwise the rules' route stands, except that the model's suggested route replaces it
   when the rules fell through to their catch-all, or, in a language where the model routes
   better than the rules (Spanish), whenever the model is confident enough.
4. A risk at or above the review threshold flags the message for safety review (net "model"):
   it is routed as in 3 and put at the top of the desk's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import Action

from .model import Assessment

NET_RULES = "rules"
NET_MODEL = "model"
CARE_TEAM = "care-team"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the learned net changes about the rules' decision."""

    route: tuple[Action, str] | None
    """a route replacing the rules' winner, or None to keep it"""
    net: str | None
    """the net that escalated or flagged the message"""
    safety_review: bool
    uncorroborated: bool = False
    """the rules escalated on a topic word alone and the model did not corroborate it: the
    route comes from the first rule that is not a crisis rule"""


KEEP = Verdict(None, None, False)


def combine(
    *,
    rules_escalated: bool,
    rules_default: bool,
    seen: Assessment | None,
    topic_only: bool = False,
) -> Verdict:
    """Apply the evaluation order above to the rules' outcome and the model's assessment.

    `rules_default`: the first rule that is not a crisis rule is the catch-all;
    `topic_only`: every crisis rule that fired is a `corroborate` rule."""
    if rules_escalated and not (topic_only and seen is not None and not seen.corroborates):
        return Verdict(None, NET_RULES, False)
    if seen is None:
        return KEEP
    if seen.escalate:
        return Verdict((Action.ESCALATE_CRISIS, CARE_TEAM), NET_MODEL, False)
    route = seen.suggestion if (rules_default or seen.model_first) else None
    if seen.review:
        return Verdict(route, NET_MODEL, True, rules_escalated)
    return Verdict(route, None, False, rules_escalated)
