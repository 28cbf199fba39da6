"""The typed contexts of shared/events.py are the notifier's contract: what producers build
renders, and the staff transfer's hand-off is no longer dead-lettered."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.notifier.errors import InvalidContext
from services.notifier.messages import (
    load_templates,
    render_chat,
    render_email,
    render_sms,
    validate_context,
)
from shared.events import (
    NOTIFICATION_CONTEXTS,
    HandoffContext,
    NotificationKind,
    SurveyContext,
)

STATUS_TRANSFER = HandoffContext(
    department_name="NW Circulation",
    handoff_text="I'm transferring you to NW Circulation. Someone will join in a moment.",
    lang="en",
)


def test_every_kind_with_a_template_has_a_context_model() -> None:
    kinds = {name.split("/")[1].split(".")[0] for name in load_templates().list_templates(["j2"])}
    assert {k.value for k in NOTIFICATION_CONTEXTS} >= kinds - {"_layout"}


def _render_everywhere(context: dict[str, Any]) -> list[str]:
    email = render_email(
        NotificationKind.HANDOFF,
        context,
        to="ana@my.tccd.edu",
        mail_from="desk@tccd.edu",
        idempotency_key="k",
        conversation_id="chat-1",
    )
    plain = email.get_body(("plain",))
    assert plain is not None
    return [
        render_chat(NotificationKind.HANDOFF, context),
        render_sms(NotificationKind.HANDOFF, context),
        str(plain.get_content()),
    ]


def test_the_staff_transfer_hand_off_renders_on_every_channel() -> None:
    for body in _render_everywhere(STATUS_TRANSFER.model_dump(mode="json")):
        assert "I'm transferring you to NW Circulation." in body


def test_transfer_commands_already_on_the_topic_render_too() -> None:
    legacy = {"department": "nw-circulation", "from_department": "reference", "handoff_text": "x"}
    assert all(body.startswith("x") or "\nx\n" in body for body in _render_everywhere(legacy))


def test_a_hand_off_says_who_or_what() -> None:
    with pytest.raises(ValidationError, match="department_name or handoff_text"):
        HandoffContext()
    with pytest.raises(InvalidContext, match="department_name or handoff_text"):
        validate_context(NotificationKind.HANDOFF, {"topic": "x"})


def test_a_survey_url_may_come_from_the_notifier() -> None:
    assert SurveyContext().survey_url is None
    with pytest.raises(ValidationError):
        SurveyContext(survey_url="javascript:alert(1)")


def test_what_producers_dump_is_what_the_notifier_validates() -> None:
    dumped = STATUS_TRANSFER.model_dump(mode="json")
    assert validate_context(NotificationKind.HANDOFF, dumped) == STATUS_TRANSFER.model_dump()
