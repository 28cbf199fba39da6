"""Property tests of ingest's provider parsers (issue 13): whatever bytes, charsets and nesting
arrive, verification accepts exactly what was signed and parsing ends in a parsed message or a
ProviderError (a 4xx), never another exception (a 500), and never text JSON cannot carry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from services.ingest.providers.chat import parse_chat_event, verify_chat_webhook
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.errors import InvalidSignature, ProviderError
from services.ingest.providers.mailgun import parse_mailgun_form, verify_mailgun
from services.ingest.providers.mime import parse_mime
from services.ingest.providers.twilio import parse_twilio_sms, verify_twilio_signature

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN = "twilio-property-token"
URL = "https://desk.example.edu/webhooks/sms"
SECRET = "whsec_" + base64.b64encode(b"property-test-secret-0123456789ab").decode()
MAILGUN_KEY = "mailgun-property-key"

# text as providers send it: any Unicode except lone surrogates (HTTP forms carry UTF-8)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
names = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


def _json_safe(mail: EmailInbound) -> None:
    """Every text field of a parsed email can be put in an event (no lone surrogates)."""
    for value in (mail.sender_name, mail.subject, mail.text, mail.recipient, mail.message_id):
        if value is not None:
            value.encode("utf-8")


def _nested(depth: int, *, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


# -- Twilio -----------------------------------------------------------------------------


@PROPS
@given(st.dictionaries(names, text, max_size=8))
def test_twilio_signatures_from_twilios_own_library_verify(params: dict[str, str]) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    verify_twilio_signature(auth_token=TOKEN, url=URL, params=params, signature=signature)


@pytest.mark.slow  # hundreds of signed forms
@PROPS
@given(st.dictionaries(names, text, min_size=1, max_size=8), st.data())
def test_a_changed_twilio_parameter_never_verifies(params: dict[str, str], data: Any) -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    key = data.draw(st.sampled_from(sorted(params)))
    changed = {**params, key: params[key] + data.draw(st.text(min_size=1, max_size=3))}
    with pytest.raises(InvalidSignature):
        verify_twilio_signature(auth_token=TOKEN, url=URL, params=changed, signature=signature)


@PROPS
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "MessageSid": st.one_of(text, st.just("SM" + "a" * 32)),
            "From": st.one_of(text, st.just("+18175550123")),
            "To": text,
            "Body": text,
            "NumMedia": st.one_of(text, st.integers(-5, 20).map(str)),
            "MediaUrl0": text,
        },
    )
)
def test_twilio_forms_parse_or_are_refused(params: dict[str, str]) -> None:
    try:
        sms = parse_twilio_sms(params)
    except ProviderError:
        return
    assert sms.body == (params.get("Body") or "").strip()


# -- Mailgun ----------------------------------------------------------------------------


@PROPS
@given(st.integers(0, 2**33).map(str), st.text("abcdef0123456789", min_size=1, max_size=60))
def test_mailgun_signatures_verify_and_tampering_does_not(timestamp: str, token: str) -> None:
    signature = hmac.new(
        MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    now = float(timestamp)
    verify_mailgun(
        signing_key=MAILGUN_KEY, timestamp=timestamp, token=token, signature=signature, now=now
    )
    with pytest.raises(InvalidSignature):
        verify_mailgun(
            signing_key=MAILGUN_KEY,
            timestamp=timestamp,
            token=token + "0",
            signature=signature,
            now=now,
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)


@PROPS
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "from",
                "sender",
                "recipient",
                "subject",
                "body-plain",
                "stripped-text",
                "body-html",
                "Message-Id",
                "In-Reply-To",
                "References",
                "timestamp",
            ]
        ),
        text,
    ),
    st.one_of(
        st.none(),
        json_values.map(json.dumps),
        st.integers(0, 3000).map(_nested),
        text,
    ),
)
@example({"from": "a@example.edu", "Message-Id": "<m@x>"}, _nested(5000))
def test_mailgun_forms_parse_or_are_refused(form: dict[str, str], headers: str | None) -> None:
    if headers is not None:
        form = {**form, "message-headers": headers}
    try:
        _json_safe(parse_mailgun_form(form))
    except ProviderError:
        pass


# -- raw MIME ---------------------------------------------------------------------------

CHARSETS = [
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "iso-8859-15",
    "koi8-r",
    "shift_jis",
    "gb2312",
    "big5",
    "utf-16",
]


@PROPS
@given(st.binary(max_size=2000))
@example(b"From: a@example.edu\r\nMessage-ID: <m@x>\r\nSubject: \xff\xfe\r\n\r\n\xff")
def test_any_bytes_parse_or_are_refused(raw: bytes) -> None:
    try:
        _json_safe(parse_mime(raw))
    except ProviderError:
        pass


@PROPS
@given(
    st.sampled_from(CHARSETS),
    text.filter(str.strip),
    st.sampled_from(["8bit", "base64", "quoted-printable"]),
)
def test_a_body_in_any_charset_reads_back(charset: str, body: str, encoding: str) -> None:
    try:
        body.encode(charset)
    except UnicodeEncodeError:
        return  # the charset cannot carry this text
    msg = EmailMessage()
    msg["From"] = "Ana <ana@example.edu>"
    msg["Message-ID"] = "<prop@example.edu>"
    msg["Subject"] = "question"
    msg.set_content(body, charset=charset, cte=encoding if charset != "utf-16" else "base64")
    try:
        mail = parse_mime(msg.as_bytes())
    except ProviderError:
        return  # e.g. a body that is all quoted history
    _json_safe(mail)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 1200), st.sampled_from(["\r\n", "\n", "\r"]))
def test_any_nesting_depth_parses_or_is_refused(depth: int, newline: str) -> None:
    body = f"Content-Type: text/plain{newline}{newline}hello{newline}"
    for i in range(depth):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{i}"{newline}{newline}'
            f"--b{i}{newline}{body}--b{i}--{newline}"
        )
    raw = f"From: a@example.edu{newline}Message-ID: <d@x>{newline}{body}".encode()
    try:
        parse_mime(raw)
    except ProviderError:
        assert depth > 0


# -- Standard Webhooks ------------------------------------------------------------------


def _signed(body: bytes, msg_id: str = "msg_prop", stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


@PROPS
@given(st.binary(max_size=3000), st.text("abcdefghijklmnop_0123456789", min_size=1, max_size=40))
def test_any_body_bytes_verify_as_signed_and_never_when_changed(body: bytes, msg_id: str) -> None:
    headers = _signed(body, msg_id)
    verify_chat_webhook(secret=SECRET, headers=headers, body=body)
    with pytest.raises(InvalidSignature):
        verify_chat_webhook(secret=SECRET, headers=headers, body=body + b"\x00")


@PROPS
@given(
    st.dictionaries(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), text)
)
def test_any_signature_headers_are_refused_cleanly(headers: dict[str, str]) -> None:
    with pytest.raises(ProviderError):
        verify_chat_webhook(secret=SECRET, headers=headers, body=b"{}")


@PROPS
@given(
    st.one_of(
        st.binary(max_size=500),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    ["chat.message", "chat.started", "chat.ended", "ticket.closed", "x"]
                ),
                "timestamp": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
                "data": json_values,
            }
        ).map(lambda v: json.dumps(v).encode()),
        st.integers(0, 3000).map(lambda d: _nested(d, open_='{"a":', close="}").encode()),
    )
)
def test_chat_bodies_parse_or_are_refused(body: bytes) -> None:
    try:
        parse_chat_event(body)
    except ProviderError:
        pass
