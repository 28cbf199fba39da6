"""refdesk's own words quoted back are not the patron's: a ticket system's or autoresponder's
acknowledgement quoting the after-hours acknowledgement ("If you are in danger, call 911") or
the crisis resources sent a nursing student's question to the CARE Team, and looped with a
ticket system without end (an outside review). Each sentence refdesk sends is taken out before
the rules and the learned net read the message."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.router import routing
from services.router.learned import LearnedModel, default_model_path, load_model
from services.router.policy import Policy
from services.router.policy.decision import DecisionInput
from shared.events import Action, Channel

TEMPLATES = Path(__file__).parents[3] / "services" / "notifier" / "templates"
NIGHT = datetime(2026, 12, 7, 11, 41, tzinfo=UTC)  # 5:41 AM in Fort Worth: the desk is closed

ACK_QUOTED = """I am away from my inbox and will read your message when I return:

  "Hello, Thank you for your email. The reference desk is closed right now and opens today at
  8:00 AM; a librarian will reply to your ticket then. If you are in danger, call 911."
"""


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    return load_model(default_model_path())


def _decide(policy: Policy, model: LearnedModel | None, text: str) -> routing.Decision:
    inp = DecisionInput(channel=Channel.EMAIL, text=text, received_at=NIGHT)
    return routing.decide(policy, model, inp)


def _rendered(template: Path) -> str:
    """A notifier template as sent: values filled in, its logic tags left out."""
    text = re.sub(r"\{%.*?%\}", "", template.read_text("utf-8"))
    text = text.replace("{{ crisis_line_name }}", "Suicide & Crisis Lifeline")
    text = text.replace("{{ desk_name }}", "TCC Libraries")
    return re.sub(r"\{\{.*?\}\}", "https://www.tccd.edu/counseling/", text)


def test_a_quoted_after_hours_acknowledgement_is_not_a_crisis(
    policy: Policy, model: LearnedModel
) -> None:
    quoted = _decide(policy, model, ACK_QUOTED)
    assert quoted.action is Action.ANSWER and quoted.quotes_refdesk
    # the patron's own words beside the quote still count
    own = ACK_QUOTED + "\nAlso I am not safe at home, I am scared he will hurt me."
    assert _decide(policy, model, own).action is Action.ESCALATE_CRISIS
    assert not _decide(policy, model, "Where are the nursing journals?").quotes_refdesk


@pytest.mark.parametrize(
    "template",
    sorted(TEMPLATES.glob("*/crisis_resources*.txt.j2"))
    + sorted(TEMPLATES.glob("*/after_hours_ack*.txt.j2")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_text_refdesk_sends_a_patron_quoted_back_is_not_a_crisis(
    policy: Policy, model: LearnedModel, template: Path
) -> None:
    """Every channel's and language's crisis resources and acknowledgement, as a ticket system
    quotes them under "Your message:": neither escalated nor referred to Counseling."""
    quoted = "Thank you for contacting the Student Help Desk. Your ticket number is 48214.\n\n"
    quoted += 'Your message:\n"' + _rendered(template) + '"'
    decision = _decide(policy, model, quoted)
    assert decision.action is Action.ANSWER, (template.name, decision.rules)


def test_a_sentence_is_taken_out_rewrapped_and_quoted_but_not_a_patrons_near_paraphrase(
    policy: Policy,
) -> None:
    wrapped = "> If you are in\n> danger, call 911.\nI have a question about my fine."
    assert "danger" not in policy.own_words.strip(wrapped)
    mine = "If you are in danger of failing, call the tutoring center first."
    assert policy.own_words.strip(mine) is mine
    plain = "Can I renew my book online?"
    assert policy.own_words.strip(plain) is plain
