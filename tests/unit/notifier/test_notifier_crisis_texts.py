"""What a patron in crisis and the CARE Team receive: the Spanish crisis resources send AYUDA to
988 (never to the desk), and the CARE Team's alerts name the patron's language and the kind of
crisis the router saw, without the patron's words or contact."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier.messages import render_chat, render_email, render_sms
from services.notifier.outgoing import build
from services.notifier.settings import NotifierSettings
from services.router.commands import commands_for
from services.router.policy import DecisionInput, default_policy_path, load_policy
from shared.events import (
    Channel,
    CrisisAlertContext,
    CrisisReescalationContext,
    InteractionReceived,
    Patron,
)
from shared.events import NotificationKind as K

COUNSELING = "https://www.tccd.edu/services/support-services/counseling/counseling-contact/"
CARE = "https://cm.maxient.com/reportingform.php?TarrantCCD"
RESOURCES_ES: dict[str, Any] = {
    "lang": "es",
    "counseling_url": COUNSELING,
    "mhfa_url": "mentalhealthfirstaid.org/take-a-course/what-you-learn",
}


def _email(kind: K, context: dict[str, Any]) -> EmailMessage:
    return render_email(
        kind,
        context,
        to="care@tccd.edu",
        mail_from="Desk <desk@tccd.edu>",
        idempotency_key=f"key-{kind}",
        conversation_id="c-42",
    )


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def _spanish_resources(context: dict[str, Any]) -> list[str]:
    return [
        render_sms(K.CRISIS_RESOURCES, context),
        render_chat(K.CRISIS_RESOURCES, context),
        *_parts(_email(K.CRISIS_RESOURCES, context)),
    ]


def test_every_spanish_crisis_text_sends_ayuda_to_988() -> None:
    """An outside review: "llame o escriba al 988 ... (en español: oprima 2, o escriba AYUDA)"
    read, in the desk's SMS thread, as "reply AYUDA" to the desk, which answers AYUDA with its
    keyword help. The 988 Lifeline takes Spanish texts as AYUDA texted to 988."""
    sms, chat, text, html = _spanish_resources(RESOURCES_ES)
    assert "mande AYUDA por texto al 988" in sms
    for body in (chat, text, html):
        assert "por mensaje de texto, envíe la palabra AYUDA al 988" in body, body
        assert "al llamar oprima el 2" in body
    for body in (sms, chat, text, html):
        assert "escriba AYUDA" not in body and "911" in body and COUNSELING in body


def test_spanish_crisis_texts_name_the_lifeline_in_spanish_where_they_name_it() -> None:
    """The Spanish texts said "(Suicide & Crisis Lifeline)"; the SMS names none ("Línea" would
    make it UCS-2, three times as many segments)."""
    sms, chat, text, html = _spanish_resources(RESOURCES_ES)
    for body in (chat, text, html):
        assert "988 (Línea de Prevención del Suicidio y Crisis)" in body
    for body in (sms, chat, text, html):
        assert "Lifeline" not in body
    # a name the policy chose is kept as given; null names none
    named = _spanish_resources(RESOURCES_ES | {"crisis_line_name": "Línea local"})
    assert all("(Línea local)" in body for body in named[1:])
    unnamed = _spanish_resources(RESOURCES_ES | {"crisis_line_name": None})
    assert not any("Línea de Prevención" in body for body in unnamed)


def test_english_crisis_texts_say_call_or_text_988() -> None:
    """The English texts were checked for the same ambiguity: "call or text 988" names where
    the text goes, and none tells the patron to reply with a word."""
    context = {"counseling_url": COUNSELING}
    for body in (
        render_sms(K.CRISIS_RESOURCES, context),
        render_chat(K.CRISIS_RESOURCES, context),
        *_parts(_email(K.CRISIS_RESOURCES, context)),
    ):
        assert "call or text 988" in body and "reply" not in body.lower()


ALERT: dict[str, Any] = {
    "conversation_ref": "LA-20931",
    "channel": "sms",
    "care_report_url": CARE,
}
REESCALATION: dict[str, Any] = ALERT | {"minutes_unacknowledged": 15}


@pytest.mark.parametrize(
    ("kind", "context"), [(K.CRISIS_ALERT, ALERT), (K.CRISIS_REESCALATION, REESCALATION)]
)
def test_alerts_name_the_patrons_language_and_the_kind_of_crisis(
    kind: K, context: dict[str, Any]
) -> None:
    """The CARE Team could not tell from the alert that the patron wrote in Spanish, nor what
    the router had seen."""
    msg = _email(kind, context | {"patron_lang": "es", "crisis_kinds": ["suicide_self_harm"]})
    text, html = _parts(msg)
    assert "Language:     Spanish" in text
    assert "Detected as:  suicide or self-harm" in text
    assert "<th" in html and ">Language</th><td>Spanish</td>" in html
    assert ">Detected as</th><td>suicide or self-harm</td>" in html
    several = _email(
        kind, context | {"patron_lang": "en", "crisis_kinds": ["violence", "abuse", "unsafe"]}
    )
    text, html = _parts(several)
    assert "Language:     English" in text
    assert "Detected as:  violence or a threat; abuse; feeling unsafe" in text
    model = _email(kind, context | {"crisis_kinds": ["learned_model"]})
    assert "Detected as:  read by the learned model (no crisis rule matched)" in _parts(model)[0]
    signals = _email(kind, context | {"crisis_kinds": ["warning_signs"]})
    assert "Detected as:  several warning signs together" in _parts(signals)[0]
    later = _email(kind, context | {"crisis_kinds": ["stalking_threat"]})  # a later router's
    assert "Detected as:  stalking threat" in _parts(later)[0]


@pytest.mark.parametrize(
    ("kind", "context"), [(K.CRISIS_ALERT, ALERT), (K.CRISIS_REESCALATION, REESCALATION)]
)
def test_an_alert_from_an_older_producer_renders_without_them(
    kind: K, context: dict[str, Any]
) -> None:
    text, html = _parts(_email(kind, context))
    assert "Language" not in text and "Detected as" not in text
    assert "Language" not in html and "Detected as" not in html


def test_the_new_fields_are_optional_for_older_commands() -> None:
    """Commands already on refdesk.notifications validate, with the new fields empty."""
    old = CrisisAlertContext.model_validate(ALERT)
    assert (old.patron_lang, old.crisis_kinds) == (None, [])
    again = CrisisReescalationContext.model_validate(REESCALATION)
    assert (again.patron_lang, again.crisis_kinds) == (None, [])


def test_the_routers_alert_reaches_the_care_team_with_both() -> None:
    """End to end: the router's command for a crisis renders them in the notifier."""
    policy = load_policy(default_policy_path())
    at = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    text = "I'm going to shoot him tomorrow"
    interaction = InteractionReceived(
        interaction_id="i-1",
        conversation_id="sms-c1",
        channel=Channel.SMS,
        provider="test",
        provider_message_id="m-1",
        patron=Patron(contact="+18175550123"),
        text=text,
        received_at=at,
    )
    decision = policy.decide(
        DecisionInput(channel=Channel.SMS, text=text, received_at=at), online=None
    )
    [alert] = [c for c in commands_for(interaction, decision, policy) if c.kind is K.CRISIS_ALERT]
    out = build(alert, NotifierSettings(run_dir=Path("/tmp")))
    assert "Language:     English" in out.text
    assert "Detected as:  violence or a threat" in out.text
    assert text not in out.text and "+18175550123" not in out.text
