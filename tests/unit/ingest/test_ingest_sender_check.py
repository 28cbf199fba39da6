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
