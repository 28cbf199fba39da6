"""What the receiving mail system found about an email's sender (DMARC, DKIM, SPF), read from
the headers it added: real header shapes from Gmail, Exchange Online, OpenDMARC and Mailgun."""

from __future__ import annotations

import json

import pytest

from services.ingest.providers.authenticity import SenderCheck, sender_check
from services.ingest.providers.mailgun import parse_mailgun_form
from services.ingest.providers.mime import parse_mime

GMAIL_PASS = (
    "mx.google.com;\r\n       dkim=pass header.i=@my.tccd.edu header.s=google header.b=Qx1;\r\n"
    "       spf=pass (google.com: domain of ana@my.tccd.edu designates 209.85.220.41 as"
    " permitted sender) smtp.mailfrom=ana@my.tccd.edu;\r\n"
    "       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=my.tccd.edu"
)
EXCHANGE_FORGED = (  # Exchange Online writes no authserv-id
    "spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=my.tccd.edu; dkim=none (message not"
    " signed) header.d=none;dmarc=fail action=quarantine header.from=my.tccd.edu;"
    "compauth=fail reason=000"
)
OPENDMARC_FORGED = "desk.tccd.edu; dmarc=fail (p=reject dis=none) header.from=my.tccd.edu"
FORWARDED = (  # a university's forwarder: SPF fails at the next hop, the DKIM signature holds
    "mx.tccd.edu; spf=fail smtp.mailfrom=my.tccd.edu; dkim=pass header.d=my.tccd.edu"
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (GMAIL_PASS, SenderCheck.PASSED),
        (EXCHANGE_FORGED, SenderCheck.FAILED),
        (OPENDMARC_FORGED, SenderCheck.FAILED),
        (FORWARDED, SenderCheck.PASSED),
        ("mx.tccd.edu; spf=softfail smtp.mailfrom=my.tccd.edu; dkim=none", SenderCheck.FAILED),
        ("mx.tccd.edu; spf=neutral smtp.mailfrom=my.tccd.edu", SenderCheck.UNKNOWN),
        ("mx.tccd.edu; none", SenderCheck.UNKNOWN),
        ("", SenderCheck.UNKNOWN),
        (None, SenderCheck.UNKNOWN),
    ],
)
def test_authentication_results(header: str | None, expected: SenderCheck) -> None:
    assert sender_check(authentication_results=header) is expected


def test_a_result_written_in_a_comment_is_not_read() -> None:
    header = "mx.tccd.edu; spf=fail (as if dkim=pass; dmarc=pass (nested)) smtp.mailfrom=x.edu"
    assert sender_check(authentication_results=header) is SenderCheck.FAILED


def test_dmarc_decides_over_spf_and_dkim() -> None:
    header = "mx.tccd.edu; spf=pass smtp.mailfrom=evil.example; dkim=pass header.d=evil.example;"
    assert sender_check(authentication_results=header + " dmarc=fail") is SenderCheck.FAILED
    assert sender_check(authentication_results="mx; spf=fail; dmarc=pass") is SenderCheck.PASSED


@pytest.mark.parametrize(
    ("spf", "dkim", "expected"),
    [
        ("Pass", None, SenderCheck.PASSED),
        ("Fail", "Fail", SenderCheck.FAILED),
        ("SoftFail", None, SenderCheck.FAILED),
        ("Fail", "Pass", SenderCheck.PASSED),
        ("Neutral", None, SenderCheck.UNKNOWN),
        (None, None, SenderCheck.UNKNOWN),
        ("fail (mailfrom) client-ip=203.0.113.9", None, SenderCheck.FAILED),  # Received-SPF
    ],
)
def test_provider_results(spf: str | None, dkim: str | None, expected: SenderCheck) -> None:
    assert sender_check(spf=spf, dkim=dkim) is expected


def mailgun_form(headers: list[list[str]], **fields: str) -> dict[str, object]:
    return {
        "from": "Ana Gomez <ana.gomez@my.tccd.edu>",
        "recipient": "askus@tccd.edu",
        "subject": "Re: [refdesk #email-1a2b] Lost book",
        "body-plain": "It was me, I will bring it Friday.",
        "Message-Id": "<f00d@mail.example.org>",
        "timestamp": "1736176300",
        "message-headers": json.dumps(headers),
        **fields,
    }


def test_a_mailgun_post_reads_mailguns_own_verdict_before_one_the_sender_wrote() -> None:
    form = mailgun_form(
        [
            ["X-Mailgun-Spf", "Fail"],
            ["X-Mailgun-Dkim-Check-Result", "Fail"],
            ["X-Mailgun-Spf", "Pass"],  # written by the sender, below Mailgun's
            ["From", "Ana Gomez <ana.gomez@my.tccd.edu>"],
        ]
    )
    assert parse_mailgun_form(form).sender_check is SenderCheck.FAILED
    assert parse_mailgun_form(mailgun_form([])).sender_check is SenderCheck.UNKNOWN
    passing = mailgun_form([["X-Mailgun-Spf", "Pass"], ["X-Mailgun-Dkim-Check-Result", "Pass"]])
    assert parse_mailgun_form(passing).sender_check is SenderCheck.PASSED


def mime(*headers: str) -> bytes:
    return (
        "\r\n".join(
            [
                *headers,
                "From: Ana Gomez <ana.gomez@my.tccd.edu>",
                "To: askus@tccd.edu",
                "Subject: Re: [refdesk #email-1a2b] Lost book",
                "Message-ID: <f00d@mail.example.org>",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "It was me, I will bring it Friday.",
                "",
            ]
        )
    ).encode()


def test_a_raw_message_reads_the_topmost_authentication_results() -> None:
    ours = f"Authentication-Results: {EXCHANGE_FORGED}"
    theirs = "Authentication-Results: forger.example; dmarc=pass header.from=my.tccd.edu"
    assert parse_mime(mime(ours, theirs)).sender_check is SenderCheck.FAILED
    assert parse_mime(mime(f"Authentication-Results: {GMAIL_PASS}")).sender_check is (
        SenderCheck.PASSED
    )
    received_spf = "Received-SPF: fail (domain of my.tccd.edu does not designate 203.0.113.9)"
    assert parse_mime(mime(received_spf)).sender_check is SenderCheck.FAILED
    assert parse_mime(mime()).sender_check is SenderCheck.UNKNOWN


def test_a_verdict_with_raw_8bit_bytes_is_still_read() -> None:
    raw = mime("Authentication-Results: mx.tccd.edu; dmarc=fail header.from=my.tccd.edu")
    raw = raw.replace(b"mx.tccd.edu", "mx.tccd.edu (caf\u00e9)".encode("latin-1"))
    assert b"\xe9" in raw
    assert parse_mime(raw).sender_check is SenderCheck.FAILED


def forged_mime(sender: str, *headers: str) -> bytes:
    return mime(*headers).replace(
        b"From: Ana Gomez <ana.gomez@my.tccd.edu>", f"From: {sender}".encode()
    )


EVIL_VERDICT = "mx.tccd.edu; dmarc=pass header.from=evil.example"
EVIL_PASS = f"Authentication-Results: {EVIL_VERDICT}"


@pytest.mark.parametrize(
    "sender",
    [
        "ana.gomez@my.tccd.edu <attacker@evil.example>",  # an outside reviewer's forgery
        "ana.gomez@my.tccd.edu<attacker@evil.example>",
        "ana.gomez@my.tccd.edu)<attacker@evil.example>",  # CVE-2023-27043's shape
        "=?utf-8?q?Ana?= ana.gomez@my.tccd.edu <attacker@evil.example>",
        "ana.gomez@my.tccd.edu, attacker@evil.example",
    ],
)
def test_a_from_that_names_two_addresses_is_no_one_and_not_a_verified_sender(
    sender: str,
) -> None:
    """Python's email policy read `victim <attacker>` as the victim's address and the DMARC
    pass for evil.example as the victim's, so the email threaded into the victim's
    conversation. Read as written, the From names two addresses: not the patron's."""
    mail = parse_mime(forged_mime(sender, EVIL_PASS))
    assert mail.sender_email != "ana.gomez@my.tccd.edu"
    assert mail.sender_check is SenderCheck.FAILED
    relayed = parse_mime(forged_mime(sender, EVIL_PASS, "Return-Path: <attacker@evil.example>"))
    assert (relayed.sender_email, relayed.sender_check) == (
        "attacker@evil.example",
        SenderCheck.FAILED,
    )


@pytest.mark.parametrize(
    "sender",
    [
        '"ana.gomez@my.tccd.edu" <attacker@evil.example>',
        "=?utf-8?q?ana.gomez=40my.tccd.edu?= <attacker@evil.example>",  # the name encoded
    ],
)
def test_an_address_written_as_the_display_name_is_not_a_verified_sender(sender: str) -> None:
    """The address is the one a reply goes to; the name is what the librarian reads."""
    mail = parse_mime(forged_mime(sender, EVIL_PASS))
    assert (mail.sender_email, mail.sender_check) == ("attacker@evil.example", SenderCheck.FAILED)
    own = parse_mime(forged_mime('"ana.gomez@my.tccd.edu" <Ana.Gomez@my.tccd.edu>'))
    assert (own.sender_email, own.sender_check) == ("ana.gomez@my.tccd.edu", SenderCheck.UNKNOWN)


def test_a_verdict_about_another_domain_is_not_the_senders() -> None:
    """DMARC passed for the domain the receiving system read as the From's; when ingest reads
    another one, the pass is not about the address the email is taken to be from."""
    mine = "Authentication-Results: mx.tccd.edu; dmarc=pass header.from=My.TCCD.edu"
    assert parse_mime(mime(mine)).sender_check is SenderCheck.PASSED
    assert parse_mime(mime(EVIL_PASS)).sender_check is SenderCheck.FAILED
    relayed = parse_mime(
        forged_mime("Pat <pat@mail_server.example.com>", EVIL_PASS, "Sender: pat@my.tccd.edu")
    )  # the From cannot be answered, Sender is read: the pass was for the From's domain
    assert (relayed.sender_email, relayed.sender_check) == ("pat@my.tccd.edu", SenderCheck.FAILED)
    idn = "Authentication-Results: mx; dmarc=pass header.from=xn--mnchen-3ya.de"
    unicode_domain = parse_mime(forged_mime("José <jose@münchen.de>", idn))
    assert unicode_domain.sender_check is SenderCheck.PASSED
    assert sender_check(authentication_results=EVIL_VERDICT, sender="a@my.tccd.edu") is (
        SenderCheck.FAILED
    )


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("ana.gomez@my.tccd.edu <attacker@evil.example>", "bounces@evil.example"),
        ("=?utf-8?q?Ana?= <attacker@evil.example>, ana.gomez@my.tccd.edu", "bounces@evil.example"),
        ('"ana.gomez@my.tccd.edu" <attacker@evil.example>', "attacker@evil.example"),
    ],
)
def test_a_mailgun_post_reads_its_from_as_strictly(sender: str, expected: str) -> None:
    """The Mailgun form's `from` read as the raw MIME's is: two addresses are no one (the
    envelope is read), a name holding an address is not the sender, and neither is verified
    (the encoded name's parseaddr had kept the attacker's address as the only one)."""
    form = mailgun_form([["Authentication-Results", EVIL_VERDICT]], sender="bounces@evil.example")
    mail = parse_mailgun_form({**form, "from": sender})
    assert (mail.sender_email, mail.sender_check) == (expected, SenderCheck.FAILED)
    plain = parse_mailgun_form(mailgun_form([["Authentication-Results", GMAIL_PASS]]))
    assert (plain.sender_email, plain.sender_check) == ("ana.gomez@my.tccd.edu", SenderCheck.PASSED)
