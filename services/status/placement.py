"""Where a routing decision leaves a conversation: the one rule the queue (`handlers`) and the
desk statistics (`stats.projection`) apply alike."""

from __future__ import annotations

from shared.events import (
    SMS_KEYWORD_RULE,
    Action,
    CrisisKind,
    Priority,
    RoutingDecided,
    crisis_kinds_of,
)

ROUTER = "router"
"""`RoutingDecided.decided_by` of the router's own decisions (anything else is staff)."""


def escalates(data: RoutingDecided) -> bool:
    """Whether the decision is a crisis."""
    return data.action == Action.ESCALATE_CRISIS or data.priority == Priority.URGENT


def crisis_kinds(data: RoutingDecided, before: str | None) -> str | None:
    """The conversation's crisis kinds (comma-separated) with what this crisis decision adds:
    the kinds of its crisis rules, or `learned_model` when the learned net escalated it without
    one; a staff escalation adds none."""
    kinds = crisis_kinds_of(hit.rule_id for hit in data.rules)
    if not kinds and data.net == "model":
        kinds = [CrisisKind.LEARNED_MODEL.value]
    known = before.split(",") if before else []
    merged = known + [kind for kind in kinds if kind not in known]
    return ",".join(merged) or None


def answered_keyword(data: RoutingDecided) -> bool:
    """Whether the decision is on a text of one keyword refdesk answered itself (STOP, HELP,
    HOURS): nobody waits on it, and the question after it is the conversation's first."""
    return any(hit.rule_id == SMS_KEYWORD_RULE for hit in data.rules)


def stays_with_patron(data: RoutingDecided) -> bool:
    """Whether the librarian assigned keeps the conversation as it moves: the router's crisis
    escalation. The librarian in the chat is the one who reports it to the CARE Team and stays
    with the patron meanwhile (the desk's procedures); a staff transfer hands it over."""
    return escalates(data) and data.decided_by == ROUTER


def keeps_place(data: RoutingDecided, *, crisis: bool, department: str | None) -> bool:
    """Whether the decision leaves the conversation (a crisis one or not, in `department`)
    where it is: a follow-up, or the router's decision on a crisis conversation (closed and
    written to again), unless it newly escalates a crisis. A conversation not placed yet, and
    a staff transfer, always move."""
    settled = data.follow_up or (crisis and data.decided_by == ROUTER)
    return settled and not (escalates(data) and not crisis) and department is not None
