"""Provider messages become events (issue 13, findings 4 and 5): SMS bodies capped at Twilio's
1,600 characters with an attachment note for the rest, and a blocked contact's message flagged."""

from __future__ import annotations

from datetime import UTC, datetime

from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.twilio import MAX_SMS_BODY, SmsInbound
from services.ingest.translate import OVERFLOW_NOTE, email_interaction, sms_interaction

NOW = datetime(2026, 1, 6, 15, tzinfo=UTC)


def sms(body: str) -> SmsInbound:
    return SmsInbound(
        message_sid="SM" + "a" * 32,
        account_sid=None,
        from_e164="+18175550123",
        to="+18175550100",
        body=body,
        num_media=0,
    )


def test_a_body_within_twilios_limit_is_kept_whole() -> None:
    event = sms_interaction(sms("é" * MAX_SMS_BODY), conversation_id="c", now=NOW)
    assert event.text == "é" * MAX_SMS_BODY and event.attachments == []


def test_a_900k_character_body_is_capped_with_a_note_of_the_rest() -> None:
    event = sms_interaction(sms("a" * 1_600 + "é" * 898_400), conversation_id="c", now=NOW)
    assert event.text == "a" * 1_600
    [note] = event.attachments
    assert (note.name, note.size, note.content_type) == (OVERFLOW_NOTE, 898_400 * 2, "text/plain")


def test_a_blocked_contacts_message_is_flagged_not_dropped() -> None:
    assert sms_interaction(sms("help"), conversation_id="c", now=NOW, blocked=True).blocked
    assert not sms_interaction(sms("help"), conversation_id="c", now=NOW).blocked
    mail = EmailInbound(
        message_id="m@x",
        sender_email="a@example.edu",
        sender_name=None,
        recipient=None,
        subject="",
        text="help",
    )
    event = email_interaction(mail, conversation_id="c", provider="mime", now=NOW, blocked=True)
    assert event.blocked
