"""Ingest's logs never carry patron data: names, phones, emails, TCC IDs or message text."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import mailgun_form, post_sms, running, signed, sms_form
from tests.kafka_helpers import collect

NAME = "Marisol Quintanilla"
PHONE = "+18175550177"
EMAIL = "marisol.quintanilla@my.tccd.edu"
TCC_ID = "4815162"
SECRETS = (NAME, PHONE, PHONE.removeprefix("+1"), EMAIL, TCC_ID)
LOGGERS = (
    "services.ingest",
    "shared",
    "refdesk.ingest.kafka",
    "faststream",
    "aiokafka",
    "uvicorn",
    "httpx",
)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__)


def rendered(record: logging.LogRecord) -> str:
    """Everything a handler could write: the message, its arguments, extras, exception text."""
    extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    return " ".join(
        (
            record.getMessage(),
            repr(record.args),
            json.dumps(extras, default=repr),
            record.exc_text or "",
            repr(record.exc_info),
        )
    )


async def test_no_patron_data_in_any_log_record(
    settings: IngestSettings, kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.INFO, logger=name)
    caplog.set_level(logging.INFO)
    text = f"Hi, I'm {NAME}, TCC ID {TCC_ID}, phone {PHONE}, email {EMAIL}: renew my book?"
    sms = sms_form(text, sender=PHONE)
    mail = mailgun_form(message_id=uuid.uuid4().hex, text=text, subject=f"{NAME} {TCC_ID}")
    mail["from"] = mail["sender"] = f"{NAME} <{EMAIL}>"
    conversation = f"chat-{uuid.uuid4().hex[:12]}"
    chat = json.dumps(
        {
            "type": "chat.message",
            "timestamp": "2026-11-28T15:00:00Z",
            "data": {
                "conversation_id": conversation,
                "message_id": "m1",
                "text": text,
                "patron": {"name": NAME, "email": EMAIL, "phone": PHONE, "role": "student"},
            },
        }
    ).encode()
    bad_chat = chat.replace(b'"m1"', b'""')  # refused: the error path must not echo the body
    async with running(settings) as client:
        answers = [
            await post_sms(client, sms),
            await post_sms(client, sms),  # a duplicate
            await client.post("/webhooks/email", data=mail),
            await client.post("/webhooks/email", data={**mail, "signature": "0" * 64}),
            await client.post(
                "/webhooks/chat",
                content=chat,
                headers={**signed(chat), "content-type": "application/json"},
            ),
            await client.post(
                "/webhooks/chat",
                content=bad_chat,
                headers={**signed(bad_chat), "content-type": "application/json"},
            ),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 403, 200, 422]
    published = await collect(
        kafka_bootstrap,
        "refdesk.interactions",
        until=lambda f: len(f) >= 3,
        where=lambda e: TCC_ID in e.get("data", {}).get("text", ""),
    )
    assert len(published) >= 3  # the data did flow through ingest while we listened
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert records, "expected ingest to log something at INFO"
    leaks = [(r.name, secret) for r in records for secret in SECRETS if secret in rendered(r)]
    assert leaks == []
