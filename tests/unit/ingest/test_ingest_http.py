"""Ingest's webhook endpoints over HTTP, in process: the routes, body limits and problem answers
as create_app mounts them, with a broker that records what is published and the real store on
a SQLite file (no Kafka: what reaches the broker is in FakeBroker.published)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from twilio.request_validator import RequestValidator

from services.ingest.app import mount
from services.ingest.service import Ingest
from services.ingest.settings import IngestSettings
from services.ingest.store import IngestStore
from shared.http import install_problem_handlers
from tests.fakes import FakeBroker

BASE = "https://desk.example.edu"
TWILIO_TOKEN = "test-twilio-auth-token-0123456789"
SHARED_KEY = "test-twilio-shared-key-0123456789"
MAILGUN_KEY = "test-mailgun-signing-key-0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-0123456789").decode()
SMALL = 64 * 1024
EMAIL = 4 * 1024 * 1024


def settings(tmp_path: Path, **extra: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}",
        "public_base_url": BASE,
        "twilio_auth_token": TWILIO_TOKEN,
        "mailgun_signing_key": MAILGUN_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "max_body_bytes": SMALL,
        "ingest_max_email_body_bytes": EMAIL,
    }
    return IngestSettings(**{**values, **extra})


@pytest.fixture
async def client(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(tmp_path, broker, store, ingest_twilio_shared_key=SHARED_KEY) as c:
        yield c


def ingest_app(tmp_path: Path, broker: FakeBroker, store: IngestStore, **extra: Any) -> FastAPI:
    """The ingest routes as create_app mounts them (`extra`: settings)."""
    ingest = Ingest(
        broker=broker,  # type: ignore[arg-type]
        store=store,
        publish_timeout_s=2.0,
        sms_window=timedelta(hours=24),
        connected=True,
    )
    app = FastAPI(redirect_slashes=False)
    install_problem_handlers(app)
    mount(app, ingest=ingest, store=store, settings=settings(tmp_path, **extra))
    return app


def serving(
    tmp_path: Path, broker: FakeBroker, store: IngestStore, **extra: Any
) -> httpx.AsyncClient:
    """A client of the ingest routes as create_app mounts them."""
    app = ingest_app(tmp_path, broker, store, **extra)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def sms_form(body: str = "can i renew my book", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": f"+1817555{uuid.uuid4().int % 10_000:04d}",
        "To": "+18175550100",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


def twilio_signed(path: str, form: dict[str, str], **headers: str) -> dict[str, str]:
    """Headers signed by twilio-python's own RequestValidator over BASE + path."""
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + path, form)
    return {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
        **headers,
    }


def mailgun_form(text: str = "When do you open?", **extra: str) -> dict[str, str]:
    ts, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    return {
        "sender": "ana.gomez@my.tccd.edu",
        "from": "Ana Gomez <Ana.Gomez@my.tccd.edu>",
        "recipient": "askdesk@tccd.edu",
        "subject": "Library hours",
        "body-plain": text,
        "stripped-text": text,
        "Message-Id": f"<{uuid.uuid4().hex}@mail.example.edu>",
        "timestamp": ts,
        "token": token,
        "signature": hmac.new(
            MAILGUN_KEY.encode(), (ts + token).encode(), hashlib.sha256
        ).hexdigest(),
        **extra,
    }


def chat_signed(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, computed from the specification."""
    wid, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": wid,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "content-type": "application/json",
    }


def data_of(broker: FakeBroker) -> list[dict[str, Any]]:
    return [event["data"] for _topic, _key, event in broker.published]


# -- defect 3: a webhook URL configured with a trailing slash -------------------------------


async def test_a_twilio_url_with_a_trailing_slash_is_answered_there_not_redirected(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = sms_form("configured with a trailing slash")
    answer = await client.post(
        "/webhooks/sms/", content=urlencode(form), headers=twilio_signed("/webhooks/sms/", form)
    )
    assert answer.status_code == 200, answer.text
    assert "<Response/>" in answer.text
    assert [d["provider_message_id"] for d in data_of(broker)] == [form["MessageSid"]]
    # the signature covers the URL as requested: one made for the path without the slash fails
    other = sms_form("signed for the other URL")
    refused = await client.post(
        "/webhooks/sms/", content=urlencode(other), headers=twilio_signed("/webhooks/sms", other)
    )
    assert refused.status_code == 403


async def test_a_twilio_url_with_connection_overrides_verifies_with_or_without_them(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    """Twilio's connection overrides are a fragment on the configured URL (`#rp=all&rc=3`).
    A fragment never reaches the server, so ingest is told it and tries the URL both ways:
    whichever Twilio signs, the text is accepted."""
    overrides = "rp=all&rc=3&ct=2000"
    async with serving(tmp_path, broker, store, ingest_twilio_url_fragment=overrides) as client:
        for signed_url in (f"{BASE}/webhooks/sms#{overrides}", f"{BASE}/webhooks/sms"):
            form = sms_form("sent through a URL with connection overrides")
            signature = RequestValidator(TWILIO_TOKEN).compute_signature(signed_url, form)
            answer = await client.post(
                "/webhooks/sms",
                content=urlencode(form),
                headers={
                    "X-Twilio-Signature": signature,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            assert answer.status_code == 200, (signed_url, answer.text)
    # not configured: a signature over the URL with its fragment cannot be checked
    async with serving(tmp_path, broker, store) as client:
        form = sms_form("signed with a fragment ingest was not told")
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            f"{BASE}/webhooks/sms#{overrides}", form
        )
        refused = await client.post(
            "/webhooks/sms",
            content=urlencode(form),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert refused.status_code == 403


async def test_a_text_from_a_number_the_library_calls_invalid_is_accepted(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = sms_form("ayuda por favor", From="+5215512345678")
    answer = await client.post(
        "/webhooks/sms", content=urlencode(form), headers=twilio_signed("/webhooks/sms", form)
    )
    assert answer.status_code == 200, answer.text
    assert data_of(broker)[0]["patron"]["contact"] == "+5215512345678"


@pytest.mark.parametrize("path", ["/webhooks/email/", "/webhooks/email/mime/", "/webhooks/chat/"])
async def test_every_webhook_path_is_served_with_a_trailing_slash(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.post(path, content=b"x", headers={"content-type": "text/plain"})
    assert answer.status_code == 415  # the endpoint itself answered: no 307, no 404
    assert answer.headers["content-type"] == "application/problem+json"


# -- defect 4: Twilio's HMAC-SHA256 signatures (Webhooks Configuration SharedKey) -----------


async def test_a_sha256_signature_made_with_the_shared_key_is_accepted(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = sms_form("signed with a SharedKey")
    signature = RequestValidator(SHARED_KEY).compute_signature(
        BASE + "/webhooks/sms", form, algorithm="HMAC_SHA256"
    )
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answer = await client.post("/webhooks/sms", content=urlencode(form), headers=headers)
    assert answer.status_code == 200, answer.text
    assert len(broker.published) == 1


async def test_a_sha256_signature_keyed_with_the_auth_token_is_refused(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    # what /tmp/audit-ingest/t_sms_sha256.py sends: Twilio never signs so (the header means
    # a SharedKey signed the request, not the Auth Token)
    form = sms_form("sha256 with the auth token")
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        BASE + "/webhooks/sms", form, algorithm="HMAC_SHA256"
    )
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "algorithm=HMAC_SHA256",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answer = await client.post("/webhooks/sms", content=urlencode(form), headers=headers)
    assert answer.status_code == 403 and broker.published == []


async def test_a_refused_webhook_is_logged_without_what_it_carried(
    client: httpx.AsyncClient, broker: FakeBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong secret refuses every message of a channel: it had left no line in the log."""
    form = sms_form("my TCC ID is A00123456, please renew")
    headers = {
        "X-Twilio-Signature": "bm90IHRoZSBzaWduYXR1cmU=",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    with caplog.at_level(logging.WARNING):
        answer = await client.post("/webhooks/sms", content=urlencode(form), headers=headers)
    assert answer.status_code == 403 and broker.published == []
    [line] = [r for r in caplog.records if r.getMessage() == "webhook refused"]
    seen = (line.channel, line.status, line.error)  # type: ignore[attr-defined]
    assert seen == ("sms", 403, "InvalidSignature")
    assert "A00123456" not in caplog.text and form["From"] not in caplog.text


async def test_a_shared_key_signature_without_a_configured_key_is_refused(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    form = sms_form()
    signature = RequestValidator(SHARED_KEY).compute_signature(
        BASE + "/webhooks/sms", form, algorithm="HMAC_SHA256"
    )
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with serving(tmp_path, broker, store) as client:
        answer = await client.post("/webhooks/sms", content=urlencode(form), headers=headers)
    assert answer.status_code == 403
    assert answer.json()["field"] == "X-Twilio-Webhooks-Signature-Settings"


# -- defect 5: a body that cannot be parsed is 400, a wrong shape 422 -----------------------


@pytest.mark.parametrize(
    "body", [b'{"type": "chat.message", "timestamp": ', b'\xff\xfe{"type": 1}', b"not json"]
)
async def test_chat_json_that_cannot_be_parsed_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    answer = await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "body"


async def test_chat_json_of_the_wrong_shape_is_still_422(client: httpx.AsyncClient) -> None:
    body = b"[1, 2]"
    answer = await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
    assert answer.status_code == 422


@pytest.mark.parametrize("path", ["/webhooks/sms", "/webhooks/email"])
async def test_a_broken_multipart_body_is_400_naming_the_body(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.post(
        path,
        content=b"--zz\r\nbroken",
        headers={"content-type": "multipart/form-data", "X-Twilio-Signature": "x"},  # no boundary
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["field"] == "body"


# -- defect 1: email bodies have a limit of their own; files are described, never kept -----


async def test_a_mailgun_email_with_a_photo_over_the_small_limit_is_accepted_and_described(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    photo = b"\xff\xd8\xff\xe0PHOTO-BYTES" + b"\x00" * (1_500_000 - 15)
    form = mailgun_form(
        "There is a hold on my account, photo attached.", **{"attachment-count": "2"}
    )
    files = {
        "attachment-1": ("IMG_2041.jpg", photo, "image/jpeg"),
        "attachment-2": (
            "carta de la biblioteca.pdf",
            b"%PDF-1.4\n" + b"x" * 20_000,
            "application/pdf",
        ),
    }
    answer = await client.post("/webhooks/email", data=form, files=files)
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["attachments"] == [
        {"name": "IMG_2041.jpg", "size": len(photo), "content_type": "image/jpeg"},
        {"name": "carta de la biblioteca.pdf", "size": 20_009, "content_type": "application/pdf"},
    ]
    published = json.dumps(broker.published)
    assert "PHOTO-BYTES" not in published and "PDF-1.4" not in published  # never the content


async def test_a_long_email_text_over_the_small_limit_is_accepted(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    # Starlette refuses a text field over 1 MiB unless told otherwise; an email's body-plain
    # and stripped-text may each be longer
    text = "Please help me find sources on climate policy. " * 30_000  # 1.4 MB, twice
    answer = await client.post("/webhooks/email", data=mailgun_form(text))
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["text"].startswith("Please help me find sources")


async def test_the_email_limit_still_refuses_larger_bodies(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/webhooks/email",
        data=mailgun_form(),
        files={"attachment-1": ("big.bin", b"\x00" * (EMAIL + 1), "application/octet-stream")},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"


async def test_the_small_limit_still_applies_to_sms_and_chat(client: httpx.AsyncClient) -> None:
    sms = await client.post(
        "/webhooks/sms",
        content=b"Body=" + b"a" * SMALL,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    body = b'{"type": "chat.message", "x": "' + b"a" * SMALL + b'"}'
    chat = await client.post("/webhooks/chat", content=body, headers=chat_signed(body))
    assert (sms.status_code, chat.status_code) == (413, 413)


async def test_a_raw_mime_email_over_the_small_limit_is_accepted_with_its_attachment(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    photo = base64.encodebytes(b"\xff\xd8" + b"\x01" * 600_000)
    raw = (
        b"From: Pat <pat@my.tccd.edu>\r\nTo: askdesk@tccd.edu\r\nSubject: hold notice\r\n"
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@my.tccd.edu>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain\r\n\r\nPhoto of the notice attached.\r\n"
        b"--b1\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; "
        b'filename="notice.jpg"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + photo
        + b"--b1--\r\n"
    )
    headers = {**chat_signed(raw), "content-type": "message/rfc822"}
    answer = await client.post("/webhooks/email/mime", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["text"] == "Photo of the notice attached."
    assert data["attachments"] == [
        {"name": "notice.jpg", "size": 600_002, "content_type": "image/jpeg"}
    ]


# -- defect 2: MMS media are described; a photo without text still reaches staff -----------


async def test_a_photo_only_mms_is_published_with_its_photo_described_not_its_url(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1"
    form = sms_form("", NumMedia="1", MediaUrl0=url, MediaContentType0="image/jpeg")
    form["MessageSid"] = "MM" + uuid.uuid4().hex
    answer = await client.post(
        "/webhooks/sms", content=urlencode(form), headers=twilio_signed("/webhooks/sms", form)
    )
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["text"] == ""
    assert data["attachments"] == [
        {"name": "photo 1.jpg", "size": None, "content_type": "image/jpeg"}
    ]
    assert url not in json.dumps(broker.published)


# -- defect 6: unusual but valid sender addresses are accepted -----------------------------


@pytest.mark.parametrize(
    ("sender", "contact"),
    [
        ('"john smith"@example.com', '"john smith"@example.com'),
        ("jose@münchen.de", "jose@münchen.de"),
        ("Ana <ana@[192.0.2.1]>", "ana@[192.0.2.1]"),
    ],
)
async def test_mailgun_senders_rfc_5322_and_6531_allow_are_accepted(
    client: httpx.AsyncClient, broker: FakeBroker, sender: str, contact: str
) -> None:
    answer = await client.post(
        "/webhooks/email", data=mailgun_form(**{"from": sender, "sender": sender})
    )
    assert answer.status_code == 200, answer.text
    assert data_of(broker)[0]["patron"]["contact"] == contact


async def test_a_sender_that_cannot_be_read_does_not_lose_the_email(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    sender = "Pat <pat@mail_server.example.com>"  # no reply can be sent there
    answer = await client.post(
        "/webhooks/email", data=mailgun_form(**{"from": sender, "sender": sender})
    )
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["patron"] == {
        "contact": None,
        "name": "Pat",
        "role": "unknown",
        "unverified": False,
    }
    assert data["text"] == "When do you open?"


async def test_an_email_with_an_empty_from_and_no_sender_is_accepted(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = mailgun_form(**{"from": ""})
    del form["sender"]
    answer = await client.post("/webhooks/email", data=form)
    assert answer.status_code == 200, answer.text
    [data] = data_of(broker)
    assert data["patron"]["contact"] is None


async def test_a_multipart_post_without_its_closing_boundary_is_400_not_401(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = mailgun_form()
    parts = b"".join(
        b'--zz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (name.encode(), value.encode())
        for name, value in form.items()
    )
    headers = {"content-type": "multipart/form-data; boundary=zz"}
    broken = await client.post("/webhooks/email", content=parts, headers=headers)
    assert broken.status_code == 400, broken.text
    assert broken.json()["field"] == "body"
    assert data_of(broker) == []
    whole = await client.post("/webhooks/email", content=parts + b"--zz--\r\n", headers=headers)
    assert whole.status_code == 200, whole.text


# -- Twilio status callbacks: what became of a text refdesk sent -------------------------------


def status_form(status: str, **extra: str) -> dict[str, str]:
    """A status callback as Twilio posts it to a message's StatusCallback URL."""
    return {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "SmsSid": "",
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": "AC" + "0" * 32,
        "From": "+18175550100",
        "To": "+18175550123",
        "ApiVersion": "2010-04-01",
        **extra,
    }


async def test_a_status_callback_is_published_by_the_texts_sid_without_the_number(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = status_form("undelivered", ErrorCode="30007")
    form["SmsSid"] = form["MessageSid"]
    path = "/webhooks/sms/status"
    counted = {"status": "undelivered"}
    before = REGISTRY.get_sample_value("refdesk_ingest_sms_reports_total", counted) or 0.0
    answer = await client.post(path, content=urlencode(form), headers=twilio_signed(path, form))
    assert answer.status_code == 200, answer.text
    assert REGISTRY.get_sample_value("refdesk_ingest_sms_reports_total", counted) == before + 1
    [(topic, key, event)] = broker.published
    assert (topic, key) == ("refdesk.sms-reports", form["MessageSid"])
    assert event["type"] == "edu.tccd.refdesk.sms.status_reported.v1"
    data = event["data"]
    assert (data["provider_id"], data["status"], data["error_code"]) == (
        form["MessageSid"],
        "undelivered",
        30007,
    )
    assert "+18175550123" not in json.dumps(event)  # the patron's number is not kept
    # Twilio posting the same callback again: the same event id, which status drops
    again = await client.post(path, content=urlencode(form), headers=twilio_signed(path, form))
    assert again.status_code == 200
    assert broker.published[1][2]["id"] == event["id"]
    delivered = {**form, "MessageStatus": "delivered", "SmsStatus": "delivered", "ErrorCode": ""}
    await client.post(path, content=urlencode(delivered), headers=twilio_signed(path, delivered))
    assert broker.published[2][2]["id"] != event["id"]
    assert broker.published[2][2]["data"]["error_code"] is None


async def test_a_status_callback_needs_twilios_signature(
    client: httpx.AsyncClient, broker: FakeBroker
) -> None:
    form = status_form("delivered")
    path = "/webhooks/sms/status"
    unsigned = await client.post(
        path, content=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert unsigned.status_code == 401
    forged = {**form, "MessageStatus": "undelivered"}
    refused = await client.post(path, content=urlencode(forged), headers=twilio_signed(path, form))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert broker.published == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"MessageSid": "", "SmsSid": ""}, "MessageSid"),
        ({"MessageSid": "SM123", "SmsSid": ""}, "MessageSid"),
        ({"MessageStatus": "", "SmsStatus": ""}, "MessageStatus"),
        ({"MessageStatus": "Delivered!", "SmsStatus": ""}, "MessageStatus"),
        ({"ErrorCode": "3000x"}, "ErrorCode"),
        ({"ErrorCode": "3²"}, "ErrorCode"),  # a digit to str.isdigit(), not to int()
    ],
)
async def test_a_malformed_status_callback_is_a_422_naming_its_field(
    client: httpx.AsyncClient, broker: FakeBroker, change: dict[str, str], field: str
) -> None:
    form = {**status_form("failed"), **change}
    path = "/webhooks/sms/status"
    answer = await client.post(path, content=urlencode(form), headers=twilio_signed(path, form))
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field
    assert broker.published == []


# -- every problem names its field (docs/ingest.md, Errors; an outside review) --------------

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"


async def test_the_body_limits_problems_name_the_body(client: httpx.AsyncClient) -> None:
    large = await client.post(
        "/webhooks/sms",
        content=b"Body=" + b"a" * SMALL,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    deep = b'{"type": "chat.message", "data": ' + b"[" * 100 + b"]" * 100 + b"}"
    nested = await client.post("/webhooks/chat", content=deep, headers=chat_signed(deep))
    for answer, status in ((large, 413), (nested, 400)):
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == "body" and answer.json()["detail"]


async def test_the_blocklist_apis_problems_read_like_the_webhooks(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    """A wrong token had answered `{"title": "a bearer token is required"}` with no detail, a
    contact that is no contact a title holding the text, a removal of none a title alone."""
    token = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with serving(tmp_path, broker, store, admin_token=ADMIN_TOKEN) as admin:
        wrong = await admin.put("/admin/blocklist/+18175550123", json={}, headers={"x": "y"})
        invalid = await admin.put("/admin/blocklist/not-a-contact", json={}, headers=token)
        absent = await admin.delete("/admin/blocklist/+18175550123", headers=token)
        long = await admin.put(
            "/admin/blocklist/+18175550123", json={"reason": "x" * 300}, headers=token
        )
    problems = [answer.json() for answer in (wrong, invalid, absent, long)]
    assert [(p["status"], p["title"], p["field"]) for p in problems] == [
        (401, "Token required", "Authorization"),
        (422, "Invalid field", "contact"),
        (404, "Not found", "contact"),
        (422, "Invalid request", "reason"),
    ]
    assert all(p["detail"] for p in problems)
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "not-a-contact" not in invalid.text  # the field, never its value


async def test_a_405_names_no_field(client: httpx.AsyncClient) -> None:
    """The method is what is wrong, not a field of the request (docs/ingest.md says so)."""
    answer = await client.get("/webhooks/sms")
    assert answer.status_code == 405 and "field" not in answer.json()


# -- a body that never arrives whole (an outside probe) --------------------------------------


@pytest.mark.timeout(30)  # without the deadline the request is held open for good
async def test_a_body_that_stalls_is_408_after_its_endpoints_deadline(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    """REFDESK_BODY_READ_TIMEOUT_S for SMS, chat and admin, and
    REFDESK_INGEST_EMAIL_BODY_READ_TIMEOUT_S for the email endpoints (shortened here: the
    client stalls for good after one part, and no test waits on a clock of its own)."""
    limits = {"body_read_timeout_s": 0.05, "ingest_email_body_read_timeout_s": 0.06}
    app = ingest_app(tmp_path, broker, store, **limits)

    async def answer(path: str) -> tuple[int, dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"Body=a", "more_body": True}
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"1000"),  # under the limit: declared, never sent
        ]
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("203.0.113.9", 40000),
            "server": ("desk.example.edu", 443),
        }
        await app(scope, receive, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    sms_status, sms = await answer("/webhooks/sms")
    email_status, email = await answer("/webhooks/email")
    assert (sms_status, sms["field"], email_status, email["field"]) == (408, "body", 408, "body")
    assert "0.05 s" in sms["detail"] and "0.06 s" in email["detail"]


async def test_a_secret_being_rotated_is_accepted_beside_the_new_one(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    """Each provider secret can be rotated without refusing a webhook: with the new value set
    and the old one as its previous, a request signed with either is accepted (Twilio signs
    with the old Auth Token until the new one is promoted); without the previous, the old
    one's signature is refused as before."""
    new_twilio = "new-twilio-auth-token-9876543210"
    new_mailgun = "new-mailgun-signing-key-9876543210"
    new_secret = "whsec_" + base64.b64encode(b"new-webhook-secret-9876543210").decode()
    rotated = {
        "twilio_auth_token": new_twilio,
        "ingest_previous_twilio_auth_token": TWILIO_TOKEN,
        "mailgun_signing_key": new_mailgun,
        "ingest_previous_mailgun_signing_key": MAILGUN_KEY,
        "webhook_secret": new_secret,
        "ingest_previous_webhook_secret": WEBHOOK_SECRET,
    }
    chat = json.dumps(
        {
            "type": "chat.started",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"conversation_id": f"c-{uuid.uuid4().hex[:8]}"},
        }
    ).encode()

    async def answers(client: httpx.AsyncClient) -> list[int]:
        form = sms_form()
        texted = await client.post(
            "/webhooks/sms", data=form, headers=twilio_signed("/webhooks/sms", form)
        )
        mailed = await client.post("/webhooks/email", data=mailgun_form())
        chatted = await client.post("/webhooks/chat", content=chat, headers=chat_signed(chat))
        return [texted.status_code, mailed.status_code, chatted.status_code]

    def previous(metric: str, kind: str) -> float:
        return REGISTRY.get_sample_value(metric, {"secret": kind}) or 0.0

    kinds = ("twilio", "mailgun", "webhook")
    accepted = "refdesk_ingest_previous_secret_accepted_total"
    before = {k: previous(accepted, k) for k in kinds}
    async with serving(tmp_path, broker, store, **rotated) as client:
        assert {
            k: previous("refdesk_ingest_previous_secret_set", k) for k in kinds
        } == dict.fromkeys(kinds, 1.0)
        assert await answers(client) == [200, 200, 200]  # signed with the old secrets
        # counted, so the operator sees when the providers have moved to the new ones
        assert {k: previous(accepted, k) - before[k] for k in kinds} == dict.fromkeys(kinds, 1.0)
        form = sms_form()
        signature = RequestValidator(new_twilio).compute_signature(BASE + "/webhooks/sms", form)
        headers = {"X-Twilio-Signature": signature}
        texted = await client.post("/webhooks/sms", data=form, headers=headers)
        assert texted.status_code == 200  # and with the new one, not counted
        assert previous(accepted, "twilio") - before["twilio"] == 1.0
    current_only = {k: v for k, v in rotated.items() if "previous" not in k}
    async with serving(tmp_path, broker, store, **current_only) as client:
        assert await answers(client) == [403, 403, 403]
        assert {
            k: previous("refdesk_ingest_previous_secret_set", k) for k in kinds
        } == dict.fromkeys(kinds, 0.0)
