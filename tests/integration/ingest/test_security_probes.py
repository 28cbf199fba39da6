"""The outside probe's requests against ingest, replayed (issue 13, findings 3, 4 and 5): each
now gets the refusal or the delivery it should, never a 500."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlencode

from services.ingest.settings import IngestSettings
from services.ingest.translate import OVERFLOW_NOTE
from shared.http import PROBLEM
from tests.integration.ingest.conftest import (
    mailgun_form,
    post_sms,
    running,
    signed,
    sms_form,
)
from tests.kafka_helpers import collect

TOPIC = "refdesk.interactions"


def by_message(provider_id: str):
    return lambda e: e.get("data", {}).get("provider_message_id") == provider_id


async def test_one_mailgun_signature_sent_ten_times_at_once_is_accepted_once(
    settings: IngestSettings,
) -> None:
    first = mailgun_form()
    forms = [{**first, "Message-Id": f"<{uuid.uuid4().hex}@mail.example.edu>"} for _ in range(10)]
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with running(settings) as client:
        answers = await asyncio.gather(
            *(client.post("/webhooks/email", content=urlencode(f), headers=headers) for f in forms)
        )
        # Mailgun retrying the winner's message with its own token is still welcome
        winner = forms[[a.status_code for a in answers].index(200)]
        retried = await client.post("/webhooks/email", content=urlencode(winner), headers=headers)
    assert sorted(a.status_code for a in answers) == [200] + [403] * 9
    assert all(a.headers["content-type"] == PROBLEM for a in answers if a.status_code == 403)
    assert retried.status_code == 200 and retried.json()["status"] == "duplicate"


async def test_a_signed_iso_8859_1_email_is_delivered(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    message_id = f"{uuid.uuid4().hex}@correo.example.edu"
    raw = (
        "From: Jos\xe9 P\xe9rez <jose.perez@my.tccd.edu>\r\nTo: askdesk@tccd.edu\r\n"
        f"Subject: Pr\xe9stamo\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "\xbfPuedo renovar el libro de qu\xedmica?\r\n"
    ).encode("iso-8859-1")
    headers = {**signed_raw(raw), "content-type": "message/rfc822"}
    async with running(settings) as client:
        answer = await client.post("/webhooks/email/mime", content=raw, headers=headers)
    assert answer.status_code == 200, answer.text
    [event] = await collect(
        kafka_bootstrap, TOPIC, until=lambda f: len(f) >= 1, where=by_message(message_id)
    )
    assert event["data"]["text"] == "¿Puedo renovar el libro de química?"
    assert event["data"]["patron"]["name"] == "José Pérez"
    assert event["data"]["subject"] == "Préstamo"


def signed_raw(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers over raw bytes (the library signs only UTF-8 text)."""
    import base64
    import hashlib
    import hmac
    import time

    from tests.integration.ingest.conftest import WEBHOOK_SECRET

    wid, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{wid}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": wid,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


async def test_signed_json_nested_5000_deep_is_a_400_problem(settings: IngestSettings) -> None:
    body = json.dumps({"type": "chat.message", "timestamp": "2026-01-06T14:00:00Z"})[:-1]
    body += ', "data": ' + "[" * 5000 + "]" * 5000 + "}"
    raw = body.encode()
    async with running(settings) as client:
        answer = await client.post(
            "/webhooks/chat",
            content=raw,
            headers={**signed(raw), "content-type": "application/json"},
        )
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM


async def test_signed_mime_nested_1000_parts_deep_is_a_422_problem(
    settings: IngestSettings,
) -> None:
    body = "Content-Type: text/plain\r\n\r\nhi\r\n"
    for i in range(1000):
        body = f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n{body}--b{i}--\r\n'
    raw = f"From: a@example.edu\r\nMessage-ID: <{uuid.uuid4().hex}@x>\r\n{body}".encode()
    async with running(settings) as client:
        answer = await client.post(
            "/webhooks/email/mime",
            content=raw,
            headers={**signed_raw(raw), "content-type": "message/rfc822"},
        )
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["field"] == "body"


async def test_a_900k_character_sms_is_capped_with_a_note(
    settings: IngestSettings, kafka_bootstrap: str
) -> None:
    form = sms_form("a" * 900_000)
    async with running(settings) as client:
        answer = await post_sms(client, form)
    assert answer.status_code == 200
    [event] = await collect(
        kafka_bootstrap, TOPIC, until=lambda f: len(f) >= 1, where=by_message(form["MessageSid"])
    )
    assert len(event["data"]["text"]) == 1600
    assert event["data"]["attachments"] == [
        {"name": OVERFLOW_NOTE, "size": 898_400, "content_type": "text/plain"}
    ]
