"""The after-hours acknowledgement in the routing policy's words: the router renders the
policy's text for the channel and language (next_open filled) into `ack_text`, and the
templates send it; a command from before `ack_text` existed gets the templates' own wording.

An outside review: operations edit the policy's `after_hours_ack` (README: that is how these
texts change), but the notifier rendered its own template from `next_open` alone, so the edit
changed nothing and the chat's "If you are in danger, call 911." never reached a patron."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier.messages import render_chat, render_email, render_sms
from services.notifier.segments import sms_segments
from shared.events import AfterHoursAckContext
from shared.events import NotificationKind as K

CHAT_EN = (
    "Thanks for your message! The reference desk is closed right now and opens tomorrow at "
    "8:00 AM. A librarian will answer you then. If you are in danger, call 911."
)
CHAT_ES = (
    "¡Gracias por su mensaje! El mostrador de referencia está cerrado en este momento y abre "
    "mañana a las 8:00 a. m.; un bibliotecario le responderá entonces. Si está en peligro, "
    "llame al 911."
)
SMS_EN = (
    "Thanks for your text! The reference desk is closed and opens Wednesday, September 30 at "
    "12:00 PM. A librarian will reply then."
)
EMAIL_EN = (
    "Thank you for your email. The reference desk is closed right now and opens Monday at "
    "8:00 AM; a librarian will reply to your ticket then."
)


def _mail(context: dict[str, Any]) -> Any:
    return render_email(
        K.AFTER_HOURS_ACK,
        context,
        to="ana@my.tccd.edu",
        mail_from="desk@tccd.edu",
        idempotency_key="k",
        conversation_id="c-1",
    )


@pytest.mark.parametrize(("text", "lang"), [(CHAT_EN, "en"), (CHAT_ES, "es")])
def test_a_chat_gets_the_policys_words_with_its_911_line(text: str, lang: str) -> None:
    body = render_chat(K.AFTER_HOURS_ACK, {"next_open": "x", "ack_text": text, "lang": lang})
    assert body == text


def test_an_sms_gets_the_policys_words_as_written_within_one_segment() -> None:
    body = render_sms(
        K.AFTER_HOURS_ACK,
        {"next_open": "x", "ack_text": SMS_EN, "hours_url": "https://libguides.tccd.edu/hours"},
    )
    assert body == SMS_EN  # the policy's checks hold it to one segment (check-policy)
    assert sms_segments(body) == ("GSM-7", 1)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_an_email_says_the_policys_words_in_both_parts(lang: str) -> None:
    mail = _mail({"next_open": "Monday at 8:00 AM", "ack_text": EMAIL_EN, "lang": lang})
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert EMAIL_EN in plain and EMAIL_EN in html
    assert "questions that arrive overnight" not in plain
    assert "Monday at 8:00 AM" in mail["Subject"]


def test_the_email_text_is_escaped_in_html() -> None:
    mail = _mail({"next_open": "Monday", "ack_text": "Closed <b>now</b> & then"})
    assert "Closed &lt;b&gt;now&lt;/b&gt; &amp; then" in mail.get_body(("html",)).get_content()


def test_an_old_command_without_the_policys_words_gets_the_templates_wording() -> None:
    old = {"next_open": "Monday at 8:00 AM"}
    assert AfterHoursAckContext.model_validate(old).ack_text is None
    assert "We open Monday at 8:00 AM" in render_chat(K.AFTER_HOURS_ACK, old)
    assert "we open Monday at 8:00 AM" in render_sms(K.AFTER_HOURS_ACK, old)
    plain = _mail(old).get_body(("plain",)).get_content()
    assert "We open Monday at 8:00 AM" in plain
