"""Who may do what with a conversation: one table, used by every endpoint and page.

A decision depends on the actor's role and on their relation to the conversation: whether it
is in one of their departments (or the desk's own, `reference`), who it is assigned to, and
whether it is an unacknowledged crisis. Supervisors and admins may do everything; a refused
action raises Forbidden (403) or, for the crisis gate, Conflict (409), and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from services.status.auth import Actor, has_role
from services.status.errors import Conflict, Forbidden
from services.status.models import AnyConversation, Conversation

DESK = "reference"
CRISIS_DEPARTMENTS = frozenset({"reference", "care-team"})
"""Staff of these departments see crises wherever routed, and may acknowledge them."""


class Act(StrEnum):
    VIEW = "view"
    NOTE = "note"
    REPLY = "reply"
    CLAIM = "claim"
    RELEASE = "release"
    TRANSFER = "transfer"
    CLOSE = "close"
    ACKNOWLEDGE = "acknowledge"
    CONVERT = "convert"
    CARE_REPORT = "care_report"
    BLOCK = "block"
    UNBLOCK = "unblock"


Assignee = Literal["me", "nobody", "other"]


@dataclass(frozen=True)
class Relation:
    """The facts about actor and conversation that the table reads."""

    visible: bool
    assignee: Assignee
    crisis_open: bool
    """A crisis nobody has acknowledged yet."""
    crisis_department: bool
    """The actor belongs to a department that handles crises (reference, care-team)."""
    crisis: bool = False
    """The conversation is a crisis (acknowledged or not)."""


@dataclass(frozen=True)
class Rule:
    """What plain staff need for an action; supervisors pass every rule."""

    assignee: frozenset[Assignee]
    """Who the conversation may be assigned to for staff to do this."""
    crisis_gate: bool = True
    """Refused while the conversation is an unacknowledged crisis."""
    crisis_department: bool = False
    """Only staff of a crisis department, and the conversation's own librarian (who was with
    the patron when the router escalated it)."""
    crisis_stays: bool = False
    """A crisis conversation: only staff of a crisis department (a librarian of another
    department the router's escalation left with the patron may not move it out of the CARE
    Team's sight)."""


ANY: frozenset[Assignee] = frozenset({"me", "nobody", "other"})
MINE_OR_FREE: frozenset[Assignee] = frozenset({"me", "nobody"})

POLICY: dict[Act, Rule] = {
    Act.VIEW: Rule(assignee=ANY, crisis_gate=False),
    Act.NOTE: Rule(assignee=ANY),
    Act.REPLY: Rule(assignee=MINE_OR_FREE),
    Act.CLAIM: Rule(assignee=MINE_OR_FREE),
    Act.RELEASE: Rule(assignee=frozenset({"me"})),
    Act.TRANSFER: Rule(assignee=MINE_OR_FREE, crisis_stays=True),
    Act.CLOSE: Rule(assignee=MINE_OR_FREE, crisis_stays=True),
    Act.ACKNOWLEDGE: Rule(assignee=ANY, crisis_gate=False, crisis_department=True),
    Act.CONVERT: Rule(assignee=frozenset({"me"}), crisis_stays=True),
    # whoever sees it may have filed the report (the procedures ask whoever believes a student
    # is in crisis), before the crisis is acknowledged too
    Act.CARE_REPORT: Rule(assignee=ANY, crisis_gate=False),
    # the librarian with the patron blocks a harasser at once (closed conversations too, where
    # the harassment is often noticed); lifting a block is a supervisor's decision
    Act.BLOCK: Rule(assignee=MINE_OR_FREE),
    Act.UNBLOCK: Rule(assignee=frozenset()),
}
"""Plain staff, on a conversation they can see. Every action needs `visible` first."""


def desk_sees(conv: AnyConversation) -> bool:
    """Whether the desk's own staff see a conversation of another department: a ticket the
    router made because nobody there was Online, until someone claims it. The desk is where
    someone is; a patron told a tutor would join must not wait where no librarian looks."""
    return bool(conv.unstaffed) and conv.assignee is None


def relation(actor: Actor, conv: Conversation) -> Relation:
    """How the actor stands to the conversation."""
    departments = set(actor.departments)
    flagged = conv.crisis or conv.safety_review
    crisis_department = bool(departments & CRISIS_DEPARTMENTS)
    visible = (
        conv.department in departments
        # the desk's queue is everyone's, but a crisis or a possible one there (a crisis
        # moved back to the desk, a message the safety net flagged) stays with those who
        # handle crises: every department's staff had read both (an outside review)
        or (conv.department == DESK and not flagged)
        # not routed yet: it may be a crisis, so only those who see crises (a router backlog
        # showed every patron's new message, crisis texts too, to every staff member)
        or (conv.department is None and crisis_department)
        or (flagged and crisis_department)
        or (DESK in departments and desk_sees(conv))
        # the librarian with the patron when the router escalated a crisis keeps the
        # conversation in the CARE Team's queue (`placement.stays_with_patron`)
        or (conv.assignee is not None and conv.assignee == actor.id)
    )
    assignee: Assignee = (
        "nobody" if conv.assignee is None else "me" if conv.assignee == actor.id else "other"
    )
    return Relation(
        visible=visible,
        assignee=assignee,
        crisis_open=conv.crisis and conv.acknowledged_at is None,
        crisis_department=crisis_department,
        crisis=bool(conv.crisis),
    )


def allowed(act: Act, actor: Actor, rel: Relation) -> bool:
    """Whether the table lets the actor do this (the crisis gate aside)."""
    if has_role(actor, "supervisor"):
        return True
    rule = POLICY[act]
    if not rel.visible or rel.assignee not in rule.assignee:
        return False
    if rule.crisis_stays and rel.crisis and not rel.crisis_department:
        return False
    return rel.crisis_department or not rule.crisis_department or rel.assignee == "me"


def gated(act: Act, rel: Relation) -> bool:
    """Whether an unacknowledged crisis blocks this action for now."""
    return POLICY[act].crisis_gate and rel.crisis_open


class HeldByColleague(Forbidden):
    """Forbidden because a colleague has the conversation (`assignee`); the action names them
    (`named`) when it can read their name."""

    def __init__(self, act: Act, assignee: str) -> None:
        super().__init__(f"only the assignee or a supervisor may {act.value} this conversation")
        self.act = act
        self.assignee = assignee

    def named(self, name: str) -> Forbidden:
        """The same refusal in the words a librarian reads: who has it."""
        verb = {Act.NOTE: "add notes to", Act.REPLY: "reply in"}.get(self.act, self.act.value)
        return Forbidden(f"{name} has this conversation: only they or a supervisor may {verb} it")


class TakenFromDesk(Forbidden):
    """Forbidden because a colleague claimed a ticket the desk saw only while it was unclaimed
    (`desk_sees`): an open pane said "belongs to a department you do not staff", true but not
    why it had just gone. Names who took it (`named`) when the caller can read their name."""

    def __init__(self, assignee: str, name: str = "a colleague") -> None:
        super().__init__(
            f"{name} took this conversation: it is a ticket of a department you do not staff,"
            " seen at the desk only while nobody had claimed it"
        )
        self.assignee, self.name = assignee, name

    def named(self, name: str) -> TakenFromDesk:
        """The same refusal naming who took it."""
        return TakenFromDesk(self.assignee, name)


def check(act: Act, actor: Actor, conv: Conversation) -> None:
    """Forbidden (403) or Conflict (409, acknowledge the crisis first) unless allowed."""
    rel = relation(actor, conv)
    if not allowed(act, actor, rel):
        if rel.visible and rel.assignee == "other" and conv.assignee and _held(act, rel):
            raise HeldByColleague(act, conv.assignee)
        if not rel.visible and conv.unstaffed and conv.assignee and DESK in actor.departments:
            raise TakenFromDesk(conv.assignee)
        raise Forbidden(_why(act, rel))
    if gated(act, rel):
        raise Conflict("acknowledge the crisis before anything else is done with it")
    if act is not Act.VIEW and conv.purged_at is not None:
        raise Conflict(PURGED)


PURGED = (
    "this conversation's transcript and the patron's details were removed (retention, or an "
    "erasure on the patron's request): nothing more can be added to it"
)
"""Why nothing is done with a purged conversation: a note written after the purge was kept
for good, where no records request could find it (an outside probe)."""


OPEN_ONLY = frozenset(
    {Act.REPLY, Act.CLAIM, Act.RELEASE, Act.TRANSFER, Act.CLOSE, Act.ACKNOWLEDGE, Act.CONVERT}
)
"""Actions on an open conversation only (a note, the CARE Team report and a block are kept on
a closed one too)."""


def permitted(actor: Actor, conv: Conversation) -> dict[str, bool]:
    """Every action and whether the actor may do it now (the page shows only these): a closed
    conversation's `reply` had read true while a reply to it was refused 409."""
    rel = relation(actor, conv)
    purged = conv.purged_at is not None
    closed = conv.state != "open"
    return {
        act.value: allowed(act, actor, rel)
        and not gated(act, rel)
        and (act is Act.VIEW or not purged)
        and not (closed and act in OPEN_ONLY)
        for act in Act
    }


def _held(act: Act, rel: Relation) -> bool:
    """Whether `_why` refuses for the assignee alone (no crisis rule stands in the way)."""
    if not POLICY[act].assignee:  # supervisors' alone, whoever has it
        return False
    if POLICY[act].crisis_stays and rel.crisis and not rel.crisis_department:
        return False
    return not (POLICY[act].crisis_department and not rel.crisis_department)


def _why(act: Act, rel: Relation) -> str:
    if not rel.visible:
        return "this conversation belongs to a department you do not staff"
    if not POLICY[act].assignee:
        return f"only a supervisor may {act.value} a sender"
    if POLICY[act].crisis_stays and rel.crisis and not rel.crisis_department:
        verb = {
            Act.TRANSFER: "transferred",
            Act.CLOSE: "closed",
            Act.CONVERT: "converted to email",
        }.get(act, act.value)
        return f"a crisis is {verb} by reference or CARE Team staff, or a supervisor"
    if POLICY[act].crisis_department and not rel.crisis_department:
        return (
            "crises are acknowledged by reference or CARE Team staff, the conversation's "
            "librarian, or a supervisor"
        )
    if rel.assignee == "other":
        return f"only the assignee or a supervisor may {act.value} this conversation"
    return f"claim this conversation before you {act.value} it"
