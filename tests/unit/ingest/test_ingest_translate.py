"""Provider messages become events (issue 13, findings 4 and 5): SMS bodies capped at Twilio's
1,600 characters with an attachment note for the rest, and a blocked contact's message flagged."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.files import AttachedFile
from services.ingest.providers.twilio import MAX_SMS_BODY, SmsInbound
from services.ingest.translate import (
    EMAIL_OVERFLOW_NOTE,
    MAX_EMAIL_TEXT,
    OVERFLOW_NOTE,
    arrival,
    email_interaction,
    sms_interaction,
)

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


def mms(body: str, *types: str) -> SmsInbound:
    return SmsInbound(
        message_sid="MM" + "b" * 32,
        account_sid=None,
        from_e164="+18175550123",
        to="+18175550100",
        body=body,
        num_media=len(types),
        media_urls=tuple(
            f"https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME{i}"
            for i in range(len(types))
        ),
        media_types=types,
    )


def test_mms_media_are_described_by_kind_and_position_without_size_or_url() -> None:
    event = sms_interaction(mms("", "image/jpeg", "video/mp4", ""), conversation_id="c", now=NOW)
    assert event.text == ""
    described = [(a.name, a.size, a.content_type) for a in event.attachments]
    assert described == [
        ("photo 1.jpg", None, "image/jpeg"),
        ("video 2.mp4", None, "video/mp4"),
        ("file 3", None, None),
    ]
    assert "api.twilio.com" not in event.model_dump_json()


def email(text: str, *files: AttachedFile) -> EmailInbound:
    return EmailInbound(
        message_id="m@x",
        sender_email="a@example.edu",
        sender_name=None,
        recipient=None,
        subject="Hold",
        text=text,
        attachments=files,
    )


def test_an_emails_files_become_its_attachments() -> None:
    photo = AttachedFile("IMG_2041.jpg", 1_500_000, "image/jpeg")
    event = email_interaction(
        email("see photo", photo), conversation_id="c", provider="mailgun", now=NOW
    )
    [attachment] = event.attachments
    assert (attachment.name, attachment.size, attachment.content_type) == (
        "IMG_2041.jpg",
        1_500_000,
        "image/jpeg",
    )


def test_an_email_text_too_long_for_one_event_is_capped_with_a_note_of_the_rest() -> None:
    mail = email("a" * MAX_EMAIL_TEXT + "é" * 1_000_000)
    event = email_interaction(mail, conversation_id="c", provider="mailgun", now=NOW)
    assert event.text == "a" * MAX_EMAIL_TEXT
    [note] = event.attachments
    assert (note.name, note.size) == (EMAIL_OVERFLOW_NOTE, 2_000_000)
    assert len(event.model_dump_json()) < 1_000_000  # under the broker's message size limit


@pytest.mark.parametrize(
    ("stated", "expected"),
    [
        (None, NOW),
        (NOW - timedelta(hours=3), NOW - timedelta(hours=3)),  # a relay's retry, hours late
        (NOW - timedelta(days=8), NOW),  # older than a relay keeps mail
        (datetime(1990, 1, 1, tzinfo=UTC), NOW),
        (NOW + timedelta(minutes=1), NOW),  # a clock ahead
        (datetime(9999, 12, 31, 23, tzinfo=UTC), NOW),
    ],
)
def test_an_emails_arrival_is_its_receivers_time_only_within_a_week(
    stated: datetime | None, expected: datetime
) -> None:
    """A 1990 Date put an email "13487 d" up the queue and into 1990's statistics."""
    assert arrival(stated, NOW) == expected
    mail = dataclasses.replace(email("hi"), received_at=stated)
    event = email_interaction(mail, conversation_id="c", provider="mime", now=NOW)
    assert event.received_at == expected


@pytest.mark.parametrize(
    ("sender", "machine"),
    [
        ("22395", True),  # a short code: "Your verification code is 482913"
        ("TCCALERT", True),  # a sender ID: "campus closed due to weather"
        ("+18175550123", False),
        ("whatsapp:+18175550123", False),
    ],
)
def test_a_text_from_a_short_code_or_sender_id_is_answered_by_nobody(
    sender: str, machine: bool
) -> None:
    """Published `bulk`, as mail sent to many: routed and shown, no acknowledgement or survey
    (one had gone to TCCALERT, which no reply reaches: an outside review)."""
    text = dataclasses.replace(sms("TCC Alert: campus closed due to weather"), from_e164=sender)
    assert sms_interaction(text, conversation_id="c", now=NOW).bulk is machine
