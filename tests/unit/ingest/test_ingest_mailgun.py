"""Mailgun route POSTs: signatures computed here with hmac, and form parsing."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from datetime import UTC, datetime

import pytest
from starlette.datastructures import Headers, UploadFile

from services.ingest.providers.emails import DIGEST_DOMAIN
from services.ingest.providers.errors import (
    InvalidField,
    InvalidSignature,
    MissingSignature,
    StaleTimestamp,
)
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
NOW = 1_736_176_331.0
TOKEN = "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"


def sign(timestamp: str, token: str = TOKEN, key: str = KEY) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of timestamp + token."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify(timestamp: str | None, token: str | None, signature: str | None, **kw: float) -> None:
    verify_mailgun(
        signing_key=KEY, timestamp=timestamp, token=token, signature=signature, now=NOW, **kw
    )


def test_valid_signature() -> None:
    verify("1736176300", TOKEN, sign("1736176300"))
    verify("1736176300", TOKEN, sign("1736176300").upper())


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_outside_window_is_stale(age: int) -> None:
    timestamp = str(int(NOW) - age)
    with pytest.raises(StaleTimestamp) as caught:
        verify(timestamp, TOKEN, sign(timestamp))
    assert caught.value.field == "timestamp"


def test_tolerance_is_configurable() -> None:
    timestamp = str(int(NOW) - 3600)
    verify(timestamp, TOKEN, sign(timestamp), tolerance_s=8 * 3600)


@pytest.mark.parametrize("ahead", [301, 3600, 8 * 3600])
def test_the_window_covers_retries_not_a_clock_hours_ahead(ahead: int) -> None:
    """Mailgun retries keep their first timestamp, so 8 h back is expected; ahead is not."""
    timestamp = str(int(NOW) + ahead)
    with pytest.raises(StaleTimestamp):
        verify(timestamp, TOKEN, sign(timestamp), tolerance_s=8 * 3600 + 1200)
    verify(str(int(NOW) + 299), TOKEN, sign(str(int(NOW) + 299)), tolerance_s=8 * 3600 + 1200)


@pytest.mark.parametrize(
    ("timestamp", "token", "signature"),
    [
        ("1736176300", TOKEN, sign("1736176300", key="another-key")),
        ("1736176301", TOKEN, sign("1736176300")),
        ("1736176300", TOKEN[:-1] + "4", sign("1736176300")),
        ("1736176300", TOKEN, "zz" * 32),
        ("1736176300", TOKEN, "é"),
        ("soon", TOKEN, sign("soon")),
    ],
)
def test_invalid_signature(timestamp: str, token: str, signature: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        verify(timestamp, token, signature)
    assert type(caught.value) is InvalidSignature
    assert caught.value.status == 403


def test_forged_and_old_is_invalid_not_stale() -> None:
    with pytest.raises(InvalidSignature) as caught:
        verify("1000000000", TOKEN, sign("1000000001"))
    assert type(caught.value) is InvalidSignature


@pytest.mark.parametrize("missing", ["timestamp", "token", "signature"])
def test_missing_signature_part(missing: str) -> None:
    parts: dict[str, str | None] = {
        "timestamp": "1736176300",
        "token": TOKEN,
        "signature": sign("1736176300"),
    }
    parts[missing] = None
    with pytest.raises(MissingSignature) as caught:
        verify(parts["timestamp"], parts["token"], parts["signature"])
    assert (caught.value.field, caught.value.status) == (missing, 401)


FORM = {
    "recipient": "askus@refdesk.tccd.edu",
    "sender": "bounces+srs=jane.doe@my.tccd.edu",
    "from": "Jane Doe <Jane.Doe@my.tccd.edu>",
    "subject": "Re: [refdesk #c-42] Interlibrary loan",
    "body-plain": (
        "Yes, the 2nd edition is fine.\r\n\r\nOn Mon, Jan 6, 2025 at 9:12 AM Ask Us"
        " <askus@tccd.edu> wrote:\r\n> Which edition do you need?\r\n"
    ),
    "stripped-text": "Yes, the 2nd edition is fine.",
    "stripped-signature": "",
    "Message-Id": "<CAF=abc123@mail.gmail.com>",
    "In-Reply-To": "<c-42.1@refdesk.tccd.edu>",
    "References": "<c-42.0@refdesk.tccd.edu> <c-42.1@refdesk.tccd.edu>",
    "timestamp": "1736176300",
    "token": TOKEN,
    "signature": sign("1736176300"),
}


def test_parse_form() -> None:
    email = parse_mailgun_form(FORM)
    assert email.message_id == "CAF=abc123@mail.gmail.com"
    assert (email.sender_email, email.sender_name) == ("jane.doe@my.tccd.edu", "Jane Doe")
    assert email.recipient == "askus@refdesk.tccd.edu"
    assert email.subject == "Re: [refdesk #c-42] Interlibrary loan"
    assert email.text == "Yes, the 2nd edition is fine."
    assert email.in_reply_to == "c-42.1@refdesk.tccd.edu"
    assert email.references == ("c-42.0@refdesk.tccd.edu", "c-42.1@refdesk.tccd.edu")
    assert email.ticket_tag == "c-42"
    assert email.received_at == datetime(2025, 1, 6, 15, 11, 40, tzinfo=UTC)


def test_encoded_words_in_the_sender_and_subject_are_decoded() -> None:
    """The console showed "=?iso-8859-1?Q?Jos=E9_Mu=F1oz?=" where the MIME route shows the
    name (an outside probe)."""
    form = FORM | {
        "from": "=?iso-8859-1?Q?Mu=F1oz=2C_Jos=E9?= <jose@my.tccd.edu>",
        "subject": "=?utf-8?B?UHJlZ3VudGEgc29icmUgYXJ0w61jdWxvcw==?=",
    }
    email = parse_mailgun_form(form)
    assert (email.sender_email, email.sender_name) == ("jose@my.tccd.edu", "Muñoz, José")
    assert email.subject == "Pregunta sobre artículos"
    # what cannot be decoded is kept as it came
    odd = parse_mailgun_form(FORM | {"subject": "=?x-unknown?Q?abc?= and =? text"})
    assert odd.subject == "=?x-unknown?Q?abc?= and =? text"


def test_without_stripped_text_body_plain_is_quote_stripped() -> None:
    form = {k: v for k, v in FORM.items() if k != "stripped-text"}
    assert parse_mailgun_form(form).text == "Yes, the 2nd edition is fine."


def test_a_forward_is_read_from_body_plain() -> None:
    """Mailgun's stripped-text drops a forwarded message as history; the desk reads it."""
    body = (
        "FYI see below, can you help my student?\r\n\r\n---------- Forwarded message"
        " ---------\r\nFrom: Student X <sx@my.tccd.edu>\r\n\r\nI can't access JSTOR from home."
    )
    form = {**FORM, "subject": "Fwd: JSTOR", "body-plain": body}
    form["stripped-text"] = "FYI see below, can you help my student?"
    text = parse_mailgun_form(form).text
    assert text.startswith("FYI see below") and text.endswith("I can't access JSTOR from home.")


def test_a_new_email_is_read_from_body_plain_whole() -> None:
    """Mailgun's stripped-text cut a new email's call number quoted with ">" as history (an
    outside probe); an email that answers nothing has no history to cut."""
    body = "I need the book with this call number:\r\n> QA76.73 .P98\r\nIs it checked out?"
    new = {k: v for k, v in FORM.items() if k not in ("In-Reply-To", "References", "subject")}
    form = {**new, "subject": "Call number", "body-plain": body}
    form["stripped-text"] = "I need the book with this call number:"
    assert parse_mailgun_form(form).text == body.replace("\r\n", "\n")
    # the same message answering the desk's: the quote is history, but what the patron wrote
    # below it is not (Mailgun's stripped-text cut everything after the first quoted line)
    reply = {**FORM, "body-plain": body, "stripped-text": "I need the book with this call number:"}
    assert parse_mailgun_form(reply).text == (
        "I need the book with this call number:\nIs it checked out?"
    )
    # where Mailgun's reading holds all we would keep, it stands
    reply = {**FORM, "body-plain": "Yes please.\n\n> old", "stripped-text": "Yes please."}
    assert parse_mailgun_form(reply).text == "Yes please."


def test_headers_from_message_headers_json() -> None:
    form = {k: v for k, v in FORM.items() if k not in {"Message-Id", "In-Reply-To", "References"}}
    form["message-headers"] = json.dumps(
        [["Received", "by mx"], ["Message-Id", "<x1@mail.example.org>"], ["In-Reply-To", "<p@r>"]]
    )
    email = parse_mailgun_form(form)
    assert (email.message_id, email.in_reply_to, email.references) == (
        "x1@mail.example.org",
        "p@r",
        (),
    )


@pytest.mark.parametrize("change", [{"from": "", "sender": None}, {"from": None, "sender": None}])
def test_an_email_without_any_sender_is_still_accepted(change: dict[str, str | None]) -> None:
    form = {k: v for k, v in {**FORM, **change}.items() if v is not None}
    email = parse_mailgun_form(form)
    assert (email.sender_email, email.sender_name) == (None, None)


def test_falls_back_to_envelope_sender() -> None:
    form = {**FORM, "from": "", "sender": "Jane.Doe@my.tccd.edu"}
    email = parse_mailgun_form(form)
    assert (email.sender_email, email.sender_name) == ("jane.doe@my.tccd.edu", None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"message-headers": "{not json"}, "message-headers"),
    ],
)
def test_bad_form_names_the_field(change: dict[str, str | None], field: str) -> None:
    form = {k: v for k, v in {**FORM, **change}.items() if v is not None}
    with pytest.raises(InvalidField) as caught:
        parse_mailgun_form(form)
    assert caught.value.field == field


def test_an_email_without_a_message_id_is_taken_once_under_one_made_from_it() -> None:
    """Refused with 422 before: Mailgun retries that for hours, then drops the email."""
    form = {k: v for k, v in FORM.items() if k != "Message-Id"}
    made = parse_mailgun_form(form).message_id
    assert made.endswith("@" + DIGEST_DOMAIN)
    retried = {**form, "timestamp": str(int(form["timestamp"]) + 60), "token": "t" * 50}
    assert parse_mailgun_form(retried).message_id == made  # signed anew, the same email
    other = {**form, "body-plain": form["body-plain"] + " Thanks!"}
    assert parse_mailgun_form(other).message_id != made


def test_message_headers_nested_5000_deep_are_refused_not_a_recursion_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(InvalidField) as caught:
        parse_mailgun_form({**FORM, "message-headers": deep})
    assert caught.value.field == "message-headers"


def test_a_token_longer_than_the_store_keeps_is_refused() -> None:
    token = "t" * 256
    with pytest.raises(InvalidSignature) as caught:
        verify("1736176300", token, sign("1736176300", token))
    assert caught.value.field == "token"


def _file(name: str | None, content: bytes, content_type: str | None) -> UploadFile:
    """A file part as Starlette hands it over (spooled, with its size counted)."""
    headers = Headers({"content-type": content_type} if content_type else {})
    return UploadFile(io.BytesIO(content), size=len(content), filename=name, headers=headers)


def test_attachments_are_described_from_the_file_parts_never_their_content() -> None:
    form: dict[str, object] = {
        **FORM,
        "attachment-count": "3",
        "attachment-2": _file("C:\\fakepath\\carta.pdf", b"%PDF" + b"x" * 96, "application/pdf"),
        "attachment-1": _file("IMG_2041.JPG", b"\xff\xd8" + b"\x00" * 998, "image/jpeg; name=x"),
        "attachment-3": _file("", b"abc", "image/png"),
        "stray-file": _file("other.txt", b"x", "text/plain"),
    }
    email = parse_mailgun_form(form)
    assert [(a.name, a.size, a.content_type) for a in email.attachments] == [
        ("IMG_2041.JPG", 1000, "image/jpeg"),
        ("carta.pdf", 100, "application/pdf"),
        ("photo 3.png", 3, "image/png"),
    ]


def test_a_url_encoded_post_has_no_attachments() -> None:
    assert parse_mailgun_form(FORM).attachments == ()


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ('"john smith"@example.com', '"john smith"@example.com'),
        ("José <jose@münchen.de>", "jose@münchen.de"),
        ("jose@XN--MNCHEN-3YA.DE", "jose@münchen.de"),
    ],
)
def test_unusual_but_valid_senders_are_read(sender: str, expected: str) -> None:
    assert parse_mailgun_form({**FORM, "from": sender}).sender_email == expected


def test_a_from_that_cannot_be_read_falls_back_to_the_envelope_sender() -> None:
    form = {**FORM, "from": "Jane Doe <jane@mail_server.example.com>", "sender": "jd@my.tccd.edu"}
    email = parse_mailgun_form(form)
    assert (email.sender_email, email.sender_name) == ("jd@my.tccd.edu", "Jane Doe")


def test_an_email_whose_sender_cannot_be_read_is_kept_without_a_contact() -> None:
    # refused, Mailgun would retry for 8 hours and then drop the patron's email
    form = {**FORM, "from": "Jane Doe <jane@mail_server.example.com>", "sender": "not an address"}
    email = parse_mailgun_form(form)
    assert (email.sender_email, email.sender_name) == (None, "Jane Doe")
    assert email.text == "Yes, the 2nd edition is fine."


def test_a_body_plain_that_only_points_at_the_html_gives_way_to_it() -> None:
    stub = "This message requires an HTML-capable mail client."
    form = {
        **FORM,
        "subject": "Hold",
        "In-Reply-To": "",
        "References": "",
        "body-plain": stub,
        "stripped-text": stub,
        "body-html": "<p>Please place a hold on <b>Educated</b>.</p>",
    }
    assert parse_mailgun_form(form).text == "Please place a hold on Educated."
