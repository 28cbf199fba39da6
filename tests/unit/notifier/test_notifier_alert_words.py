"""Emails read as people write: staff alerts give times in desk time and channels in words,
and only staff-facing alerts are marked high importance."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier.outgoing import build, desk_time
from services.notifier.settings import NotifierSettings
from shared.events import Channel, NotificationKind, NotificationRequested, Priority

SETTINGS = NotifierSettings(run_dir=Path("/tmp"))
FLAGGED = "2026-12-05T21:55:08.177292+00:00"  # a Saturday, 3:55 PM in Chicago


def _cmd(
    kind: NotificationKind,
    context: dict[str, Any],
    *,
    recipient: str = "care@tccd.edu",
    priority: Priority = Priority.NORMAL,
) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"key-{kind.value}",
        kind=kind,
        channel=Channel.EMAIL,
        recipient=recipient,
        conversation_id="chat-c1",
        priority=priority,
        context=context,
        requested_at=datetime(2026, 12, 5, 21, 55, tzinfo=UTC),
    )


def _mail(cmd: NotificationRequested) -> EmailMessage:
    out = build(cmd, SETTINGS)
    assert out.email is not None
    parsed = message_from_bytes(out.email.data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


ALERTS = [
    (
        NotificationKind.CRISIS_ALERT,
        {"conversation_ref": "c1", "channel": "chat", "care_report_url": "https://x.edu/care"},
    ),
    (
        NotificationKind.SAFETY_REVIEW_ALERT,
        {
            "conversation_ref": "c1",
            "channel": "chat",
            "care_report_url": "https://x.edu/care",
            "patron_lang": "es",
        },
    ),
]


@pytest.mark.parametrize(("kind", "context"), ALERTS)
def test_an_alert_gives_the_time_in_desk_time_and_the_channel_in_words(
    kind: NotificationKind, context: dict[str, Any]
) -> None:
    text, html = _parts(_mail(_cmd(kind, {**context, "detected_at": FLAGGED})))
    for part in (text, html):
        assert "Saturday, December 5, 3:55 PM CST" in part
        assert "+00:00" not in part and "2026-12-05" not in part
    assert "Channel:      Chat\r\n" in text
    assert "<td>Chat</td>" in html


def test_a_safety_review_names_the_patrons_language() -> None:
    text, _ = _parts(_mail(_cmd(*ALERTS[1])))
    assert "Language:     Spanish" in text


def test_a_reescalation_gives_the_first_alerts_time_in_desk_time() -> None:
    context = {
        "conversation_ref": "c1",
        "channel": "sms",
        "care_report_url": "https://x.edu/care",
        "minutes_unacknowledged": 15,
        "alerted_at": FLAGGED,
    }
    text, _ = _parts(_mail(_cmd(NotificationKind.CRISIS_REESCALATION, context)))
    assert "at Saturday, December 5, 3:55 PM CST has not" in text
    assert "Channel:      SMS (text message)" in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-07-04T14:05:00+00:00", "Saturday, July 4, 9:05 AM CDT"),
        ("Monday at 8:00 AM", "Monday at 8:00 AM"),  # already written out
        ("2026-07-04T14:05:00", "2026-07-04T14:05:00"),  # names no zone: not guessed
    ],
)
def test_desk_time(value: str, shown: str) -> None:
    assert desk_time(value) == shown


def test_a_crisis_alert_to_staff_is_marked_urgent() -> None:
    mail = _mail(_cmd(*ALERTS[0], priority=Priority.URGENT))
    assert mail["Importance"] == "high"
    assert mail["X-Priority"] == "1"


@pytest.mark.parametrize(
    ("kind", "context"),
    [
        (
            NotificationKind.STAFF_REPLY,
            {"reply_id": "r1", "staff_id": "jdoe", "text": "Yes, it is on hold for you."},
        ),
        (NotificationKind.AFTER_HOURS_ACK, {"next_open": "Monday at 8:00 AM"}),
    ],
)
@pytest.mark.parametrize("priority", [Priority.HIGH, Priority.URGENT])
def test_mail_to_a_patron_is_never_marked_high_importance(
    kind: NotificationKind, context: dict[str, Any], priority: Priority
) -> None:
    mail = _mail(_cmd(kind, context, recipient="ana@my.tccd.edu", priority=priority))
    assert mail["Importance"] is None
    assert mail["X-Priority"] is None


RESCALATION = (
    NotificationKind.CRISIS_REESCALATION,
    {
        "conversation_ref": "c1",
        "channel": "sms",
        "care_report_url": "https://x.edu/care",
        "minutes_unacknowledged": 15,
    },
)


@pytest.mark.parametrize(("kind", "context"), [*ALERTS, RESCALATION])
def test_an_alert_links_the_conversation_in_the_desk_console_when_its_address_is_set(
    kind: NotificationKind, context: dict[str, Any]
) -> None:
    """The CARE Team's alert said only "Conversation: chat-wc1" and sent them to "the chat
    platform": a probe's CARE staff could not find the crisis."""
    linked = NotifierSettings(run_dir=Path("/tmp"), console_url="https://refdesk.tccd.edu/")
    out = build(_cmd(kind, context), linked)
    assert out.email is not None
    mail = message_from_bytes(out.email.data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    text, html = _parts(mail)
    assert "https://refdesk.tccd.edu/dashboard/c/chat-c1" in text
    assert 'href="https://refdesk.tccd.edu/dashboard/c/chat-c1"' in html
    plain, _ = _parts(_mail(_cmd(kind, context)))  # no address set: no link, nothing broken
    assert "/dashboard/c/" not in plain and "chat platform" not in plain
