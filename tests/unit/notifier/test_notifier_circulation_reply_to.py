"""The circulation managers' email says how to answer the patron: for a patron who wrote by
email its Reply-To is the patron (the managers' reply went to the desk's inbox and opened a
new conversation from the managers), for any other patron the body says where to reach them."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.notifier.messages import render_email
from services.notifier.outgoing import build
from services.notifier.settings import NotifierSettings
from shared.events import Channel, CirculationEmailContext, NotificationRequested
from shared.events import NotificationKind as K

DESK_REPLY_TO = "ask@tccd.edu"
BASE: dict[str, Any] = {
    "question": "I lost the book and got a bill. Can I pay it online?",
    "conversation_ref": "LA-20931",
    "patron_name": "Ana Gomez",
    "item": "1984",
}
DIRECT = "Reply to this email to answer the patron directly"
TO_DESK = "Replies to this email reach the reference desk, not the patron"


def _email(context: dict[str, Any]) -> EmailMessage:
    return render_email(
        K.CIRCULATION_EMAIL,
        context,
        to="circ@tccd.edu",
        mail_from="Desk <desk@tccd.edu>",
        reply_to=DESK_REPLY_TO,
        idempotency_key="key-circ",
        conversation_id="c-42",
    )


def _parts(msg: EmailMessage) -> tuple[str, str]:
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_an_email_patron_is_answered_directly() -> None:
    msg = _email(BASE | {"channel": "email", "patron_contact": "ana.gomez@my.tccd.edu"})
    assert msg["Reply-To"] == "ana.gomez@my.tccd.edu"
    assert len(msg.get_all("Reply-To") or []) == 1
    text, html = _parts(msg)
    assert (
        f"{DIRECT}: your reply goes to ana.gomez@my.tccd.edu, not to the reference desk."
    ) in text
    assert DIRECT in html and TO_DESK not in text


def test_an_email_patron_whose_sender_may_be_forged_is_not_answered_directly() -> None:
    """A forger's victim would get the managers' answer about an account they never asked
    about: the reply reaches the desk, and the email says to confirm first."""
    msg = _email(
        BASE
        | {"channel": "email", "patron_contact": "victim@my.tccd.edu", "contact_unverified": True}
    )
    assert msg["Reply-To"] == DESK_REPLY_TO
    text, html = _parts(msg)
    assert "could not verify that this email came from victim@my.tccd.edu" in text
    assert "(it may be forged)" in html and DIRECT not in text


@pytest.mark.parametrize(
    ("channel", "contact"), [("sms", "+18175550123"), ("chat", "ana.gomez@my.tccd.edu")]
)
def test_another_patron_is_reached_at_their_contact(channel: str, contact: str) -> None:
    """An SMS or chat patron cannot be answered by email reply: the reply reaches the desk."""
    msg = _email(BASE | {"channel": channel, "patron_contact": contact})
    assert msg["Reply-To"] == DESK_REPLY_TO
    text, html = _parts(msg)
    assert f"{TO_DESK}: contact the patron at {contact}." in text
    assert TO_DESK in html and contact in html and DIRECT not in text


def test_a_patron_without_a_contact_is_reached_through_the_desk() -> None:
    msg = _email(BASE | {"channel": "chat"})
    assert msg["Reply-To"] == DESK_REPLY_TO
    text, _ = _parts(msg)
    assert f"{TO_DESK}. The desk has no phone number or email address for the patron" in text
    assert "(conversation LA-20931)" in text


@pytest.mark.parametrize(
    "contact",
    [
        "ana@my.tccd.edu\r\nBcc: everyone@tccd.edu",
        "ana@my.tccd.edu, dean@tccd.edu",
        "Ana <ana@my.tccd.edu>",
        "ana@localhost",
        "not an address",
    ],
)
def test_a_contact_that_is_not_one_bare_address_is_never_a_reply_to(contact: str) -> None:
    """The contact came from outside: it is a Reply-To only as one plain address, never a
    header of its own or a list; otherwise replies go to the desk, and the body says so."""
    msg = _email(BASE | {"channel": "email", "patron_contact": contact})
    assert msg["Reply-To"] == DESK_REPLY_TO and msg["Bcc"] is None
    assert len(msg.get_all("Reply-To") or []) == 1
    text, _ = _parts(msg)
    assert TO_DESK in text and DIRECT not in text


def test_other_kinds_keep_the_desks_reply_to() -> None:
    msg = render_email(
        K.CRISIS_ALERT,
        {"conversation_ref": "LA-1", "channel": "email", "care_report_url": "https://x.edu/r"},
        to="care@tccd.edu",
        mail_from="desk@tccd.edu",
        reply_to=DESK_REPLY_TO,
        idempotency_key="k",
        conversation_id="c-1",
    )
    assert msg["Reply-To"] == DESK_REPLY_TO


def test_the_notifier_sets_it_over_its_configured_reply_to() -> None:
    """Built as the notifier builds a command, with REFDESK_MAIL_REPLY_TO set."""
    settings = NotifierSettings(
        run_dir=Path("/tmp"), mail_from="desk@tccd.edu", mail_reply_to=DESK_REPLY_TO
    )
    context = CirculationEmailContext(
        question="lost book",
        channel=Channel.EMAIL,
        conversation_ref="LA-7",
        patron_contact="ana@my.tccd.edu",
    )
    cmd = NotificationRequested(
        idempotency_key="k-circ",
        kind=K.CIRCULATION_EMAIL,
        channel=Channel.EMAIL,
        recipient="circ@tccd.edu",
        conversation_id="email-c7",
        context=context.model_dump(mode="json"),
        requested_at=datetime(2026, 1, 5, 15, 0, tzinfo=UTC),
    )
    out = build(cmd, settings)
    assert out.email is not None
    assert out.email.message()["Reply-To"] == "ana@my.tccd.edu"
    assert out.email.recipients == ("circ@tccd.edu",)  # the envelope is not changed


def test_a_follow_up_email_points_to_the_earlier_one_and_asks_for_nothing() -> None:
    """The second email named only what the follow-up said and asked the managers for the item
    the patron had named in the first."""
    context = CirculationEmailContext(
        question="my name is Jordan Rivera and my TCC ID is 3334445",
        channel=Channel.SMS,
        conversation_ref="sms-follow-up",
        patron_name="Jordan Rivera",
        tcc_id="3334445",
        patron_contact="+18175550199",
        missing_fields=["item"],
        follow_up=True,
    ).model_dump(mode="json")
    msg = _email(context)
    assert msg["Subject"] == "More details for the circulation request - sms-follow-up"
    text, html = _parts(msg)
    for part in (text, html):
        assert "emailed you earlier" in part and "Still missing" not in part
        assert "(see the earlier email)" in part and "(not given)" not in part


def test_a_follow_up_email_threads_under_the_first() -> None:
    """The managers' mail client shows the second email in the first's thread: In-Reply-To and
    References name the Message-ID the notifier gave the first (derived from its key)."""
    first = _email(BASE | {"channel": "sms"})
    context = BASE | {"channel": "sms", "follow_up": True, "earlier_key": "key-circ"}
    second = render_email(
        K.CIRCULATION_EMAIL,
        context,
        to="circ@tccd.edu",
        mail_from="Desk <desk@tccd.edu>",
        idempotency_key="key-circ-2",
        conversation_id="c-42",
    )
    assert second["In-Reply-To"] == first["Message-ID"] == second["References"]
    assert second["Message-ID"] != first["Message-ID"]
    assert second["Auto-Submitted"] == "auto-generated"  # it answers no patron
    assert first["In-Reply-To"] is None
