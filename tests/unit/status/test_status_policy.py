"""The queue authorization table, exhaustively: every action x role x relation."""

from __future__ import annotations

import itertools

import pytest
from status_fakes import T0

from services.status.auth import Actor
from services.status.conversations.policy import (
    POLICY,
    Act,
    Relation,
    allowed,
    gated,
    relation,
)
from services.status.models import Conversation

ASSIGNEES = ("me", "nobody", "other")
BOOLS = (False, True)


def expected(act: Act, role: str, rel: Relation) -> bool:
    """The rules as the desk states them, written independently of the table."""
    if role in ("supervisor", "admin"):
        return True
    if not rel.visible:
        return False
    if act in (Act.VIEW, Act.NOTE, Act.CARE_REPORT):  # whoever believes a student is in crisis
        return True
    if act is Act.UNBLOCK:  # lifting a block is a supervisor's decision
        return False
    if act is Act.ACKNOWLEDGE:  # crisis departments, and the librarian with the patron
        return rel.crisis_department or rel.assignee == "me"
    if act in (Act.TRANSFER, Act.CLOSE, Act.CONVERT) and rel.crisis and not rel.crisis_department:
        return False  # a crisis stays in the sight of those who handle crises (closing it
        # would take it out of the CARE Team's open queue as surely as a transfer; converting
        # it would send the CARE Team's replies to an address another librarian typed)
    if act in (Act.CONVERT, Act.RELEASE):  # one's own (a supervisor's release: anyone's)
        return rel.assignee == "me"
    # reply, claim, transfer, close, block: the assignee, or anyone who may see it unassigned
    return rel.assignee in ("me", "nobody")


CASES = [
    (act, role, Relation(visible=v, assignee=a, crisis_open=c, crisis_department=d, crisis=k))  # type: ignore[arg-type]
    for act, role, v, a, c, d, k in itertools.product(
        Act, ("staff", "supervisor", "admin"), BOOLS, ASSIGNEES, BOOLS, BOOLS, BOOLS
    )
]


@pytest.mark.parametrize(("act", "role", "rel"), CASES)
def test_policy_table(act: Act, role: str, rel: Relation) -> None:
    actor = Actor(id="me", role=role, departments=("reference",))
    assert allowed(act, actor, rel) is expected(act, role, rel)


@pytest.mark.parametrize("act", list(Act))
def test_an_unacknowledged_crisis_blocks_all_but_reading_acknowledging_and_the_care_report(
    act: Act,
) -> None:
    rel = Relation(visible=True, assignee="me", crisis_open=True, crisis_department=True)
    assert gated(act, rel) is (act not in (Act.VIEW, Act.ACKNOWLEDGE, Act.CARE_REPORT))
    assert not gated(act, Relation(True, "me", False, True))


def test_every_action_has_a_rule() -> None:
    assert set(POLICY) == set(Act)


def _conv(department: str | None, **flags: object) -> Conversation:
    conv = Conversation(
        conversation_id="c",
        channel="chat",
        department=department,
        opened_at=T0,
        last_message_at=T0,
        crisis=False,
        safety_review=False,
        assignee=None,
        acknowledged_at=None,
    )
    for key, value in flags.items():
        setattr(conv, key, value)
    return conv


@pytest.mark.parametrize(
    ("departments", "conv_department", "flags", "visible"),
    [
        (("writing-center",), "writing-center", {}, True),
        (("writing-center",), "reference", {}, True),
        # not routed yet: it may be a crisis, so only those who see crises see it
        (("writing-center",), None, {}, False),
        (("reference",), None, {}, True),
        (("care-team",), None, {}, True),
        (("writing-center",), "nw-circulation", {}, False),
        (("writing-center",), "care-team", {"crisis": True}, False),
        # escalated by the router while this librarian had the patron: still theirs
        (("writing-center",), "care-team", {"crisis": True, "assignee": "me"}, True),
        (("writing-center",), "care-team", {"crisis": True, "assignee": "other"}, False),
        (("reference",), "care-team", {"crisis": True}, True),
        (("care-team",), "writing-center", {"safety_review": True}, True),
        (("reference",), "tutoring", {}, False),
        # a crisis moved back to the desk stays with crisis staff (an outside review: every
        # department's staff had read it)
        (("writing-center",), "reference", {"crisis": True}, False),
        (("nw-circulation",), "reference", {"crisis": True, "acknowledged_at": T0}, False),
        (("reference",), "reference", {"crisis": True}, True),
        # a possible crisis at the desk too: a tutor had read and closed one
        (("tutoring",), "reference", {"safety_review": True}, False),
        (("reference",), "reference", {"safety_review": True}, True),
        (("care-team",), "reference", {"crisis": True}, True),
    ],
)
def test_visibility_by_department(
    departments: tuple[str, ...],
    conv_department: str | None,
    flags: dict[str, object],
    visible: bool,
) -> None:
    actor = Actor(id="me", role="staff", departments=departments)
    assert relation(actor, _conv(conv_department, **flags)).visible is visible
