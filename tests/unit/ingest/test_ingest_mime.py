"""Raw MIME replies: quoted history, signatures, Outlook, HTML-only and non-UTF-8 messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ingest.providers.emails import DIGEST_DOMAIN
from services.ingest.providers.errors import InvalidField, UnsupportedMedia
from services.ingest.providers.mime import parse_mime

GMAIL_REPLY = b"""\
Delivered-To: askus@refdesk.tccd.edu
Received: by mx.refdesk.tccd.edu; Mon, 6 Jan 2025 09:30:02 -0600
From: =?UTF-8?Q?Jos=C3=A9_Garc=C3=ADa?= <Jose.Garcia@my.tccd.edu>
To: TCC Libraries Ask Us <askus@tccd.edu>
Subject: Re: [refdesk #c-42] Renewing a laptop
Date: Mon, 6 Jan 2025 09:30:00 -0600
Message-ID: <CAKx9=QmZ@mail.gmail.com>
In-Reply-To: <c-42.1@refdesk.tccd.edu>
References: <c-42.0@refdesk.tccd.edu>
 <c-42.1@refdesk.tccd.edu>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="000000000000b1"

--000000000000b1
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

Can I renew it for one more week? I'm at the Northwest campus.

--=20
Jos=C3=A9 Garc=C3=ADa
Student Government, NW

On Mon, Jan 6, 2025 at 9:12 AM TCC Libraries Ask Us <askus@tccd.edu> wrote:

> Hi Jos=C3=A9, the laptop is due back today at 5 pm.
>

--000000000000b1
Content-Type: text/html; charset="UTF-8"

<div dir=3D"ltr">Can I renew it for one more week?</div>

--000000000000b1--
"""

OUTLOOK_REPLY = b"""\
From: "Doe, Jane" <JDOE12@my.tccd.edu>
To: askus@tccd.edu
Subject: RE: Lost book fee
Date: Tue, 7 Jan 2025 20:05:13 +0000
Message-ID: <BY5PR01MB1234@BY5PR01MB1234.namprd01.prod.outlook.com>
Content-Type: text/plain; charset="us-ascii"

I found the book at home, can the fee be removed?

Thanks,
Jane

From: TCC Libraries Ask Us <askus@tccd.edu>
Sent: Tuesday, January 7, 2025 1:00 PM
To: Doe, Jane <JDOE12@my.tccd.edu>
Subject: Lost book fee

Hi Jane, our records show a lost item fee.
"""

HTML_ONLY = b"""\
From: prof.smith@tccd.edu
To: askus@tccd.edu
Subject: Course reserves
Message-ID: <20250108.1@tccd.edu>
Content-Type: multipart/mixed; boundary="MIX"

--MIX
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/html; charset="utf-8"

<html><body><p>Could you put <b>two</b> copies on reserve?</p>
<div id="divRplyFwdMsg"><b>From:</b> Ask Us<br><b>Sent:</b> Monday</div>
<div>earlier message</div></body></html>
--ALT--

--MIX
Content-Type: application/pdf; name="syllabus.pdf"
Content-Disposition: attachment; filename="syllabus.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--MIX--
"""


def test_gmail_reply_with_quote_and_signature() -> None:
    email = parse_mime(GMAIL_REPLY)
    assert email.message_id == "CAKx9=QmZ@mail.gmail.com"
    assert email.sender_email == "jose.garcia@my.tccd.edu"
    assert email.sender_name == "Jos\u00e9 Garc\u00eda"
    assert email.recipient == "askus@refdesk.tccd.edu"  # Delivered-To wins over To
    assert email.subject == "Re: [refdesk #c-42] Renewing a laptop"
    assert email.text == "Can I renew it for one more week? I'm at the Northwest campus."
    assert email.in_reply_to == "c-42.1@refdesk.tccd.edu"
    assert email.references == ("c-42.0@refdesk.tccd.edu", "c-42.1@refdesk.tccd.edu")
    assert email.ticket_tag == "c-42"
    # the receiving server's Received line, not the sender's Date two seconds before it
    assert email.received_at == datetime(2025, 1, 6, 9, 30, 2, tzinfo=timezone(timedelta(hours=-6)))


def test_outlook_reply() -> None:
    email = parse_mime(OUTLOOK_REPLY)
    assert email.sender_email == "jdoe12@my.tccd.edu"
    assert email.sender_name == "Doe, Jane"
    assert email.recipient == "askus@tccd.edu"
    assert email.text == "I found the book at home, can the fee be removed?\n\nThanks,\nJane"
    assert email.ticket_tag is None
    assert email.in_reply_to is None
    assert email.references == ()


def test_html_only_alternative_is_made_plain() -> None:
    email = parse_mime(HTML_ONLY)
    assert email.text == "Could you put two copies on reserve?"
    assert email.sender_name is None
    assert email.received_at is None


def test_non_utf8_charset() -> None:
    body = "¿Dónde está la biblioteca? Necesito ayuda con la cita.".encode("iso-8859-1")
    raw = (
        b"From: Mar\xeda <maria@example.org>\r\n"  # raw 8-bit header, in the message's charset
        b"To: askus@tccd.edu\r\n"
        b"Subject: =?ISO-8859-1?Q?Pregunta_sobre_citaci=F3n?=\r\n"
        b"Message-ID: <latin1@example.org>\r\n"
        b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    email = parse_mime(raw)
    assert email.text == "¿Dónde está la biblioteca? Necesito ayuda con la cita."
    assert email.subject == "Pregunta sobre citación"
    assert email.sender_email == "maria@example.org"
    assert email.sender_name == "María"  # never a lone surrogate that breaks JSON


def test_windows_1252_and_mislabelled_charsets() -> None:
    raw = (
        b"From: a@example.org\nMessage-ID: <x@example.org>\n"
        b"Content-Type: text/plain; charset=x-unknown-charset\n\n"
        b"It\x92s \x93quoted\x94\n"
    )
    assert parse_mime(raw).text == "It\u2019s \u201cquoted\u201d"
    utf8_as_ascii = (
        b"From: a@example.org\nMessage-ID: <y@example.org>\n"
        b"Content-Type: text/plain; charset=us-ascii\n\ncaf\xc3\xa9\n"
    )
    assert parse_mime(utf8_as_ascii).text == "caf\u00e9"


def test_the_time_is_the_receiving_servers_not_the_senders() -> None:
    """The topmost Received line is the desk's own mail system's; the Date is whatever the
    sender's clock (or the sender) said, 1990 or 9999."""
    raw = (
        b"Received: from mx.tccd.edu by inbound.tccd.edu; Mon, 6 Jan 2025 09:31:02 -0600\n"
        b"Received: from laptop by smtp.example.org; Mon, 6 Jan 2025 09:30:40 -0600\n"
        b"From: a@example.org\nMessage-ID: <z@x.org>\nDate: Fri, 31 Dec 9999 23:00:00 -1200\n\nhi\n"
    )
    assert parse_mime(raw).received_at == datetime(
        2025, 1, 6, 9, 31, 2, tzinfo=timezone(timedelta(hours=-6))
    )


def test_a_received_line_without_zone_is_utc() -> None:
    raw = (
        b"Received: by mx; Mon, 6 Jan 2025 09:30:00 -0000\n"
        b"From: a@example.org\nMessage-ID: <r@x.org>\n\nhi\n"
    )
    assert parse_mime(raw).received_at == datetime(2025, 1, 6, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"To: askus@tccd.edu\nMessage-ID: <a@b.org>\n\nhi\n", "From"),
        (b"this is not an email at all", "From"),
        (b"", "body"),
    ],
)
def test_invalid_messages_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_mime(raw)
    assert caught.value.field == field


def test_message_without_text_or_file_is_unsupported_media() -> None:
    raw = (
        b"From: a@example.org\nMessage-ID: <cal@x.org>\nContent-Type: text/calendar\n\n"
        b"BEGIN:VCALENDAR\nEND:VCALENDAR\n"
    )
    with pytest.raises(UnsupportedMedia) as caught:
        parse_mime(raw)
    assert caught.value.status == 415


def _nested(levels: int, newline: str = "\r\n") -> bytes:
    """A message whose text part sits inside `levels` nested multipart/mixed parts."""
    body = f"Content-Type: text/plain{newline}{newline}When do you open?{newline}"
    for i in range(levels):
        b = f"b{i}"
        body = (
            f'Content-Type: multipart/mixed; boundary="{b}"{newline}{newline}'
            f"--{b}{newline}{body}--{b}--{newline}"
        )
    head = f"From: a@example.edu{newline}Message-ID: <deep@x>{newline}Subject: s{newline}"
    return (head + body).encode()


def test_a_few_nested_parts_are_read() -> None:
    assert parse_mime(_nested(4)).text == "When do you open?"


@pytest.mark.parametrize(
    ("levels", "newline"), [(25, "\r\n"), (1000, "\r\n"), (1000, "\n"), (1000, "\r")]
)
def test_deeply_nested_parts_are_refused_not_a_recursion_error(levels: int, newline: str) -> None:
    # issue 13, finding 5: 1,000 nested parts ended in RecursionError (a 500, retried forever)
    with pytest.raises(InvalidField) as caught:
        parse_mime(_nested(levels, newline))
    assert caught.value.field == "body" and caught.value.status == 422


@pytest.mark.parametrize(
    "header",
    [b"", b"Message-ID: <>\r\n", b"Message-ID: <" + b"m" * 300 + b"@x>\r\n"],
    ids=["missing", "empty", "overlong"],
)
def test_an_email_without_a_usable_message_id_is_taken_once_under_one_made_from_it(
    header: bytes,
) -> None:
    """Refused with 422 before, which a provider retries and then drops: the email lost."""
    raw = b"From: a@example.edu\r\n" + header + b"\r\nhi\r\n"
    made = parse_mime(raw).message_id
    assert made.endswith("@" + DIGEST_DOMAIN)
    assert parse_mime(raw).message_id == made  # a retry: the same id, deduplicated
    assert parse_mime(raw.replace(b"hi", b"hello")).message_id != made


def test_raw_utf8_headers_are_read_as_utf8() -> None:
    raw = (
        "From: José <jose@example.edu>\r\nMessage-ID: <u8@x>\r\n"
        "Subject: ¿Préstamo? ✓\r\n\r\nhola\r\n"
    )
    email = parse_mime(raw.encode())
    assert (email.sender_name, email.subject) == ("José", "¿Préstamo? ✓")


WITH_FILES = b"""\
From: Pat Ron <pat@my.tccd.edu>
To: askus@tccd.edu
Subject: Hold on my account
Message-ID: <files@my.tccd.edu>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

There is a hold on my account, the notice is attached.
--alt
Content-Type: text/html; charset=utf-8

<p>There is a hold on my account, the notice is attached.<img src="cid:logo"></p>
--alt--
--rel
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--rel--
--outer
Content-Type: image/jpeg; name="notice.jpg"
Content-Disposition: attachment; filename="notice.jpg"
Content-Transfer-Encoding: base64

/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAP//
--outer
Content-Type: text/plain; name="ids.txt"
Content-Disposition: attachment; filename="ids.txt"

TCC ID 1234567
--outer
Content-Type: message/rfc822

From: circulation@tccd.edu
Subject: Your account

A hold was placed.
--outer--
"""


def test_attachments_and_inline_images_are_described_not_the_bodies() -> None:
    email = parse_mime(WITH_FILES)
    # a forwarded message is a file, and its words are read as an inline forward's are
    assert email.text == (
        "There is a hold on my account, the notice is attached.\n\n"
        "---------- Forwarded message ---------\n"
        "From: circulation@tccd.edu\nSubject: Your account\n\nA hold was placed."
    )
    described = [(a.name, a.content_type) for a in email.attachments]
    assert described == [
        ("photo 1.png", "image/png"),
        ("notice.jpg", "image/jpeg"),
        ("ids.txt", "text/plain"),
        ("message 4.eml", "message/rfc822"),
    ]
    sizes = [a.size for a in email.attachments]
    assert sizes[:3] == [8, 27, len(b"TCC ID 1234567")] and (sizes[3] or 0) > 0


def test_an_email_that_is_only_a_photo_is_accepted_with_the_photo_described() -> None:
    raw = (
        b"From: a@example.org\nMessage-ID: <img@x.org>\nContent-Type: image/png\n"
        b"Content-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"
    )
    email = parse_mime(raw)
    assert email.text == ""
    assert [(a.name, a.size, a.content_type) for a in email.attachments] == [
        ("photo 1.png", 8, "image/png")
    ]


def test_a_from_that_cannot_be_read_falls_back_to_sender_then_keeps_the_message() -> None:
    relayed = b"From: Pat <pat@mail_server.example.com>\nSender: pat@my.tccd.edu\n"
    email = parse_mime(relayed + b"Message-ID: <s1@x.org>\n\nhi\n")
    assert (email.sender_email, email.sender_name) == ("pat@my.tccd.edu", "Pat")
    email = parse_mime(b"From: not an address\nMessage-ID: <s2@x.org>\n\nhi\n")
    assert (email.sender_email, email.text) == (None, "hi")


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        (b'"john smith"@example.com', '"john smith"@example.com'),
        ("Jos\u00e9 <jose@m\u00fcnchen.de>".encode(), "jose@m\u00fcnchen.de"),
    ],
)
def test_unusual_but_valid_senders_are_read(sender: bytes, expected: str) -> None:
    email = parse_mime(b"From: " + sender + b"\nMessage-ID: <u@x.org>\n\nhi\n")
    assert email.sender_email == expected


def test_an_outlook_forward_keeps_the_forwarded_message() -> None:
    """ "FW:" from Outlook, HTML only: the forwarded email sits in the container a reply's
    history sits in, and is the question."""
    raw = HTML_ONLY.replace(b"Subject: Course reserves", b"Subject: FW: JSTOR").replace(
        b"<div>earlier message</div>", b"<div>I can't access JSTOR from home</div>"
    )
    text = parse_mime(raw).text
    assert text.startswith("Could you put two copies on reserve?")
    assert "I can't access JSTOR from home" in text
    assert parse_mime(HTML_ONLY).text == "Could you put two copies on reserve?"


def test_a_new_email_keeps_what_looks_like_history() -> None:
    """An outside probe's new email (no In-Reply-To, no "Re:") lost its reading list: a
    pasted "From: ... Subject:" block was cut as an Outlook header block."""
    raw = (
        b"From: Pat Lee <pat.lee@my.tccd.edu>\r\nTo: askus@tccd.edu\r\n"
        b"Subject: Reading list\r\nMessage-ID: <new-1@my.tccd.edu>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"My professor sent this, can you help me find these?\r\n\r\nFrom: Dr. Alvarez\r\n"
        b"Subject: Reading list\r\n1. The Omnivore's Dilemma\r\n2. Silent Spring\r\n"
    )
    assert parse_mime(raw).text.endswith("1. The Omnivore's Dilemma\n2. Silent Spring")
    answering = raw.replace(
        b"Message-ID: <new-1@my.tccd.edu>",
        b"Message-ID: <new-2@my.tccd.edu>\r\nIn-Reply-To: <x@refdesk.tccd.edu>",
    )
    assert parse_mime(answering).text == "My professor sent this, can you help me find these?"


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        (
            b"=?utf-8?q?Evil=0D=0ABcc:_x@example.org?= <pat.lee@example.net>",
            "Evil Bcc: x@example.org",
        ),
        (b"=?utf-8?q?Ana=0AGomez?= <pat.lee@example.net>", "Ana Gomez"),
    ],
)
def test_a_line_break_encoded_in_the_senders_name_is_read_not_refused(
    sender: bytes, name: str
) -> None:
    """An outside probe: 422 "unparseable header" for a valid address (a refused relay retries
    for hours, then drops the patron's email). The break becomes a space; nothing is injected."""
    mail = parse_mime(b"From: " + sender + b"\nMessage-ID: <lb@x.org>\nSubject: hi\n\nhello\n")
    assert (mail.sender_name, mail.sender_email) == (name, "pat.lee@example.net")


@pytest.mark.parametrize(
    ("label", "written", "text"),
    [
        ("Shift_JIS", "cp932", "本を返却したいです。①と②の二冊です。"),
        ("GB2312", "gb18030", "你好\uff0c我叫王喆\uff0c想续借一本书。"),
        ("ks_c_5601-1987", "cp949", "안녕하세요, 똠 책을 연장하고 싶어요."),
        (
            "iso-8859-1",
            "cp1252",
            "I\u2019m looking for \u201cThe Great Gatsby\u201d \u2013 "
            "the \u20ac5 fine\u2026 ¿Dónde?",
        ),
    ],
)
def test_a_legacy_label_is_read_as_the_windows_charset_mail_clients_write(
    label: str, written: str, text: str
) -> None:
    """One character outside the strict charset had made the whole body mojibake (cp932's ①
    under Shift_JIS, GBK's 喆 under GB2312, cp949's 똠) or dropped Outlook's punctuation under
    ISO-8859-1 (an outside review); the name in the same charset too."""
    name = {"cp932": "山田 太郎", "gb18030": "王喆", "cp949": "김똠", "cp1252": "José “Pepe”"}
    raw = (
        b"From: " + name[written].encode(written) + b" <p@example.org>\r\n"
        b"Message-ID: <cs@example.org>\r\n"
        b"Content-Type: text/plain; charset=" + label.encode() + b"\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + text.encode(written) + b"\r\n"
    )
    email = parse_mime(raw)
    assert email.text == text
    assert email.sender_name == name[written]


def test_a_message_forwarded_as_an_attachment_is_read_as_an_inline_forward() -> None:
    """Outlook's "Forward as attachment": the student's words had been a file called
    "message 1.eml" that nobody read, the crisis net included (an outside review)."""
    raw = (
        b"From: Prof Lee <lee@tccd.edu>\r\nTo: askus@tccd.edu\r\nSubject: FW: a student\r\n"
        b"Message-ID: <fw1@tccd.edu>\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFYI, see attached.\r\n"
        b"--b1\r\nContent-Type: message/rfc822\r\n"
        b'Content-Disposition: attachment; filename="message 1.eml"\r\n\r\n'
        b"From: Sam Student <sam@my.tccd.edu>\r\nSubject: can't do this\r\n"
        b"Message-ID: <inner@my.tccd.edu>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"I can't do this anymore. I want to kill myself.\r\n"
        b"--b1--\r\n"
    )
    email = parse_mime(raw)
    assert email.text.startswith("FYI, see attached.\n\n---------- Forwarded message")
    assert email.text.endswith("I can't do this anymore. I want to kill myself.")
    assert "From: Sam Student <sam@my.tccd.edu>" in email.text
    assert [a.name for a in email.attachments] == ["message 1.eml"]


def test_a_text_part_that_only_points_at_the_html_gives_way_to_it() -> None:
    """The question was in the HTML part and the desk saw "This message requires an
    HTML-capable mail client." (an outside review); a real text part still wins."""
    raw = (
        b"From: a@example.org\r\nMessage-ID: <stub@x.org>\r\nSubject: Hold\r\n"
        b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/plain\r\n\r\n"
        b"This message requires an HTML-capable mail client.\r\n"
        b"--a\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Please place a hold on <b>Educated</b>, ISBN 9780399590504.</p>\r\n"
        b"--a--\r\n"
    )
    assert parse_mime(raw).text == "Please place a hold on Educated, ISBN 9780399590504."
    real = raw.replace(
        b"This message requires an HTML-capable mail client.",
        b"Please place a hold on Educated (I use an HTML email client).",
    )
    assert parse_mime(real).text.startswith("Please place a hold on Educated (I use")
