"""Staff replies as messages: an email that answers the patron's own (subject, In-Reply-To,
References, plain text with the signature), and SMS and chat texts sent as written."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier.errors import InvalidContext
from services.notifier.messages import make_message_id, render_chat, render_email, render_sms
from services.notifier.outgoing import build
from services.notifier.replies import msg_id, references, reply_subject, tagged
from services.notifier.settings import NotifierSettings
from shared.events import Channel, NotificationRequested, StaffReplyContext
from shared.events import NotificationKind as K

PATRON_ID = "CAF=xq1@mail.gmail.com"
REPLY = StaffReplyContext(
    reply_id="r-1",
    staff_id="jdoe",
    staff_name="Jo Doe",
    text="Hi Ana,\n\nYes: the book is on hold for you at NW until Friday.",
    subject="Lost library book",
    in_reply_to=PATRON_ID,
    references=["root@mail.gmail.com", f"<{PATRON_ID}>"],
)


def _email(context: StaffReplyContext = REPLY, **kw: Any) -> EmailMessage:
    args: dict[str, Any] = {
        "to": "ana.gomez@my.tccd.edu",
        "mail_from": "TCC Library Ask Desk <askdesk@tccd.edu>",
        "idempotency_key": "reply-key-1",
        "conversation_id": "email-a8842442-f509-58e6",
        "message_id_domain": "refdesk.tccd.edu",
    } | kw
    return render_email(K.STAFF_REPLY, context.model_dump(mode="json"), **args)


@pytest.mark.parametrize(
    ("patron", "expected"),
    [
        ("Lost library book", "Re: Lost library book"),
        ("Re: Lost library book", "Re: Lost library book"),
        ("RE: Re: AW: Lost library book", "Re: Lost library book"),
        ("Re[2]: Lost library book", "Re: Lost library book"),
        ("re : Lost  library\tbook", "Re: Lost library book"),
        ("Research help", "Re: Research help"),
        ("Fwd: syllabus", "Re: Fwd: syllabus"),
        ("¿Dónde está mi libro?", "Re: ¿Dónde está mi libro?"),
    ],
)
def test_reply_subject_has_one_re(patron: str, expected: str) -> None:
    assert reply_subject(patron) == expected


def test_email_reply_answers_the_patrons_message() -> None:
    msg = _email()
    assert msg["Subject"] == "Re: Lost library book"  # unchanged, so Gmail threads it too
    assert msg["In-Reply-To"] == f"<{PATRON_ID}>"
    assert msg["References"] == f"<root@mail.gmail.com> <{PATRON_ID}>"
    assert msg["Message-ID"] == make_message_id("reply-key-1", "refdesk.tccd.edu")
    assert msg["From"].addresses[0].addr_spec == "askdesk@tccd.edu"  # ingest's inbound address
    assert "Auto-Submitted" not in msg  # a person wrote it
    assert "X-Auto-Response-Suppress" not in msg  # the patron's automatic reply is welcome
    assert msg["X-Refdesk-Kind"] == "staff_reply"


def test_email_reply_is_plain_text_with_the_signature() -> None:
    msg = _email()
    assert msg.get_content_type() == "text/plain"
    text = str(msg.get_content())
    assert text.startswith(REPLY.text + "\n\n-- \nJo Doe\nTCC Library virtual reference desk\n")
    assert "Reply to this email" in text


def test_reply_keeps_the_ticket_tag_the_patron_answered_under() -> None:
    tagged_subject = "Re: We got your question [refdesk #email-a8842442-f509-58e6]"
    msg = _email(REPLY.model_copy(update={"subject": tagged_subject}))
    assert msg["Subject"] == tagged_subject


def test_reply_to_no_patron_email_carries_the_tag() -> None:
    converted = REPLY.model_copy(update={"in_reply_to": None, "references": []})  # from SMS
    msg = _email(converted.model_copy(update={"subject": "Re: Renewing a laptop"}))
    assert msg["Subject"] == "Re: Renewing a laptop [refdesk #email-a8842442-f509-58e6]"


def test_a_first_email_staff_wrote_answers_nothing_and_says_no_re() -> None:
    """A text thread turned email: its first email went out "Re: Your question to the TCC
    Library" (a librarian-shift probe), though it answers no email."""
    converted = REPLY.model_copy(update={"in_reply_to": None, "references": []})
    msg = _email(converted.model_copy(update={"subject": "Your  laptop loan"}))
    assert msg["Subject"] == "Your laptop loan [refdesk #email-a8842442-f509-58e6]"


def test_reply_without_a_patron_subject_gets_one_with_the_tag() -> None:
    msg = _email(REPLY.model_copy(update={"subject": None, "in_reply_to": None, "references": []}))
    assert msg["Subject"] == "Your question to the TCC Library [refdesk #email-a8842442-f509-58e6]"
    assert "In-Reply-To" not in msg and "References" not in msg


def test_references_end_with_the_parent_once_and_drop_what_is_not_an_id() -> None:
    refs = references(["<a@x>", "b@x", "a@x", "bad id", "c@x\r\nBcc: evil@x", "<p@x>"], "p@x")
    assert refs == ["<a@x>", "<b@x>", "<p@x>"]
    long = references([f"m{i}@x" for i in range(40)], "p@x")
    assert len(long) == 20 and long[0] == "<m0@x>" and long[-2:] == ["<m39@x>", "<p@x>"]
    assert msg_id("  <x@y>  ") == "<x@y>" and msg_id("") is None and msg_id("a b@c") is None


def test_a_header_injection_in_the_thread_is_dropped() -> None:
    evil = REPLY.model_copy(update={"in_reply_to": "x@y\r\nBcc: evil@example.org"})
    msg = _email(evil)
    assert "In-Reply-To" not in msg and "evil" not in msg.as_string()


def test_ticket_tag_is_replaced_in_place_or_appended() -> None:
    assert tagged("Hours", "c-1") == "Hours [refdesk #c-1]"
    assert tagged("Re: [refdesk #old] Hours", "c-1") == "Re: [refdesk #c-1] Hours"


def test_sms_and_chat_replies_are_the_text_as_written() -> None:
    context = REPLY.model_dump(mode="json")
    assert render_sms(K.STAFF_REPLY, context) == REPLY.text
    assert render_chat(K.STAFF_REPLY, context) == REPLY.text


def _cmd(channel: Channel, text: str) -> NotificationRequested:
    return NotificationRequested(
        idempotency_key="k-1",
        kind=K.STAFF_REPLY,
        channel=channel,
        recipient="+18175550123" if channel is Channel.SMS else "c-1",
        conversation_id="c-1",
        context=REPLY.model_copy(update={"text": text}).model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),  # 153 per segment once concatenated
        ("{" * 80, 1),  # extension characters cost two septets each
        ("{" * 81, 2),
        ("I\u2019ll hold it" + "a" * 58, 1),  # a curly apostrophe forces UCS-2: 70 per segment
        ("I\u2019ll hold it" + "a" * 59, 2),
    ],
)
def test_sms_reply_counts_segments_as_the_composer_does(text: str, segments: int) -> None:
    out = build(_cmd(Channel.SMS, text), NotifierSettings(run_dir=Path("/tmp")))
    assert out.text == text and out.segments == segments


def test_a_blank_reply_is_refused_before_sending() -> None:
    with pytest.raises(InvalidContext):
        build(_cmd(Channel.CHAT, "   \n "), NotifierSettings(run_dir=Path("/tmp")))
