"""An in-process ingest app against the real broker and a real database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import BaseModel
from standardwebhooks import Webhook
from twilio.request_validator import RequestValidator

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings

TWILIO_TOKEN = "test-twilio-token"
MAILGUN_KEY = "test-mailgun-key"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-0123456789").decode()
BASE = "https://desk.example.edu"


def ingest_settings(
    bootstrap: str, database_url: str, run_dir: Path, **extra: Any
) -> IngestSettings:
    """Settings for a test ingest."""
    return IngestSettings(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        run_dir=run_dir,
        public_base_url=BASE,
        twilio_auth_token=TWILIO_TOKEN,
        mailgun_signing_key=MAILGUN_KEY,
        webhook_secret=WEBHOOK_SECRET,
        admin_token="test-admin",
        topic_partitions=1,
        **extra,
    )


@asynccontextmanager
async def running(
    settings: IngestSettings, *, wait_connected: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client bound to it."""
    import asyncio

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if wait_connected:
            for _ in range(200):
                if app.state.ingest.connected:
                    break
                await asyncio.sleep(0.1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


async def publish_as(
    settings: IngestSettings, source: str, topic: str, data: BaseModel, *, key: str
) -> None:
    """Publish an event as another service would, from a producer of its own (`source`:
    "refdesk/status", "refdesk/router")."""
    from shared.kafka import build_broker, publish

    broker = build_broker(settings, client_id=f"{source.rsplit('/', 1)[-1]}-test")
    await broker.start()
    try:
        await publish(broker, topic, data, key=key, source=source)
    finally:
        await broker.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> IngestSettings:
    return ingest_settings(kafka_bootstrap, database_url, tmp_path)


def sms_form(
    body: str = "can i renew my book", *, sid: str | None = None, sender: str = "+18175550123"
) -> dict[str, str]:
    """A Twilio inbound-message webhook body."""
    return {
        "MessageSid": sid or f"SM{uuid.uuid4().hex}",
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+18175550100",
        "Body": body,
        "NumMedia": "0",
    }


def fresh_phone() -> str:
    """A valid US number no other test uses (so SMS threads do not mix)."""
    return f"+1817555{random.randrange(10_000):04d}"


def twilio_headers(form: dict[str, str], path: str = "/webhooks/sms") -> dict[str, str]:
    """Headers signed by twilio's own RequestValidator."""
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(BASE + path, form)
    return {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}


async def post_sms(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await client.post("/webhooks/sms", content=urlencode(form), headers=twilio_headers(form))


def mailgun_form(
    *,
    message_id: str | None = None,
    text: str = "Hello, when does the library open?",
    in_reply_to: str | None = None,
    subject: str = "Library hours",
    token: str | None = None,
    when: float | None = None,
) -> dict[str, str]:
    """A Mailgun inbound-route body, signed with the test key."""
    ts = str(int(when if when is not None else time.time()))
    tok = token or uuid.uuid4().hex
    form = {
        "sender": "Ana.Gomez@my.tccd.edu",
        "from": "Ana Gomez <Ana.Gomez@my.tccd.edu>",
        "recipient": "askdesk@tccd.edu",
        "subject": subject,
        "body-plain": text,
        "stripped-text": text,
        "Message-Id": f"<{message_id or uuid.uuid4().hex}@mail.example.edu>",
        "timestamp": ts,
        "token": tok,
        "signature": hmac.new(
            MAILGUN_KEY.encode(), (ts + tok).encode(), hashlib.sha256
        ).hexdigest(),
    }
    if in_reply_to:
        form["In-Reply-To"] = in_reply_to
    return form


def signed(body: bytes, *, msg_id: str | None = None, when: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for a body."""
    from datetime import UTC, datetime

    wid = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(when if when is not None else time.time(), UTC)
    return {
        "webhook-id": wid,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(WEBHOOK_SECRET).sign(wid, stamp, body.decode()),
    }


Where = Callable[[dict[str, Any]], bool]


def about(conversation_id: str) -> Where:
    return lambda e: e.get("subject") == conversation_id
