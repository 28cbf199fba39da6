"""TwilioSmsSender against a real local HTTP server playing Twilio's Messages API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from services.notifier.errors import PermanentSendError, TransientSendError
from services.notifier.sms import TwilioSmsSender

from .notifier_fakes import FakeTwilio, free_port

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "tok-secret"
FROM, TO = "+18175550100", "+18175550123"
Client = httpx.AsyncClient


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(timeout=5) as c:
        yield c


def _sender(fake: FakeTwilio, client: Client, base_url: str | None = None) -> TwilioSmsSender:
    return TwilioSmsSender(base_url or fake.base_url + "/", SID, TOKEN, FROM, client)


async def test_posts_form_fields_with_basic_auth(twilio: FakeTwilio, client: Client) -> None:
    sender = _sender(twilio, client)
    sid = await sender.send(to=TO, body="Hi from the library", idempotency_key="k-1")
    [request] = twilio.requests
    assert sid.startswith("SM")
    assert request["account_sid"] == SID
    assert request["form"] == {"To": TO, "From": FROM, "Body": "Hi from the library"}
    assert request["content_type"].startswith("application/x-www-form-urlencoded")
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {basic}"
    assert request["idempotency"] == "k-1"


async def test_unicode_body_round_trips(twilio: FakeTwilio, client: Client) -> None:
    await _sender(twilio, client).send(to=TO, body="Café — ¿mañana? 😀", idempotency_key="k-2")
    assert twilio.requests[0]["form"]["Body"] == "Café — ¿mañana? 😀"


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_and_throttling_are_transient(
    twilio: FakeTwilio, client: Client, status: int
) -> None:
    twilio.respond_next(status, {"code": 20500, "message": "Internal error", "status": status})
    with pytest.raises(TransientSendError) as info:
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-3")
    assert info.value.code == status


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_client_errors_are_permanent(twilio: FakeTwilio, client: Client, status: int) -> None:
    twilio.respond_next(
        status,
        {
            "code": 21211,
            "status": status,
            "message": f"The 'To' number {TO} is not a valid phone number.",
        },
    )
    with pytest.raises(PermanentSendError) as info:
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-4")
    assert info.value.code == status
    assert "21211" in str(info.value) and TO not in str(info.value)


async def test_non_json_error_is_still_classified(twilio: FakeTwilio, client: Client) -> None:
    twilio.respond_next(503, "Service Unavailable")
    with pytest.raises(TransientSendError):
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-5")


async def test_accepted_without_sid_is_transient(twilio: FakeTwilio, client: Client) -> None:
    twilio.respond_next(201, {"status": "queued"})
    with pytest.raises(TransientSendError):
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-6")


async def test_connection_refused_is_transient(twilio: FakeTwilio, client: Client) -> None:
    with pytest.raises(TransientSendError):
        await _sender(twilio, client, f"http://127.0.0.1:{free_port()}").send(
            to=TO, body="x", idempotency_key="k-7"
        )


async def test_timeout_is_transient(twilio: FakeTwilio) -> None:
    twilio.respond_next(201, {"sid": "SMlate"}, delay=2.0)
    async with Client(timeout=0.3) as slow_client:
        with pytest.raises(TransientSendError):
            await _sender(twilio, slow_client).send(to=TO, body="x", idempotency_key="k-8")
