"""TwilioSmsSender against a real local HTTP server playing Twilio's Messages API: how each
answer is classified, and the lookup of a message an earlier attempt may have created."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from services.notifier.errors import (
    AuthenticationFailed,
    BodyTooLong,
    PermanentSendError,
    SettingsRefused,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.sms import LookupUnavailable, TwilioSmsSender

from .notifier_fakes import CREATED, FakeTwilio, free_port

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


async def test_asks_twilio_to_report_to_the_status_callback_when_one_is_set(
    twilio: FakeTwilio, client: Client
) -> None:
    callback = "https://desk.example.edu/webhooks/sms/status"
    sender = TwilioSmsSender(twilio.base_url, SID, TOKEN, FROM, client, status_callback=callback)
    await sender.send(to=TO, body="Your book is on hold", idempotency_key="k-3")
    [request] = twilio.requests
    assert request["form"] == {
        "To": TO,
        "From": FROM,
        "Body": "Your book is on hold",
        "StatusCallback": callback,
    }


async def test_a_whatsapp_patron_is_answered_from_the_desks_whatsapp_sender(
    twilio: FakeTwilio, client: Client
) -> None:
    """Twilio refuses a message from a plain number to `whatsapp:+1...` (an outside probe's
    WhatsApp patrons were answered from the SMS number, so never)."""
    sender = _sender(twilio, client)
    await sender.send(to=f"whatsapp:{TO}", body="We open at 8", idempotency_key="k-w")
    await sender.send(to=TO, body="We open at 8", idempotency_key="k-s")
    first, second = twilio.requests
    assert (first["form"]["To"], first["form"]["From"]) == (f"whatsapp:{TO}", f"whatsapp:{FROM}")
    assert (second["form"]["To"], second["form"]["From"]) == (TO, FROM)


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
    # a 5xx may come after the message was created; a 429 refused it before
    assert isinstance(info.value, UncertainSendError) is (status >= 500)


@pytest.mark.parametrize("status", [400, 404])
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


@pytest.mark.parametrize(
    ("status", "code"), [(400, 21606), (400, 21659), (400, 21212), (404, 20404), (404, None)]
)
async def test_a_refusal_of_the_notifiers_own_number_or_account_waits_for_an_operator(
    twilio: FakeTwilio, client: Client, status: int, code: int | None
) -> None:
    """A From number Twilio does not know as the account's (after a number change), or an
    account SID it cannot find, fails every text alike: each had been given up on at its first
    attempt, crisis resources included (an outside probe). They wait, as for refused
    credentials, until the settings are fixed."""
    body = {"status": status, "message": "The From phone number is not valid."}
    twilio.respond_next(status, body | ({"code": code} if code else {}))
    with pytest.raises(SettingsRefused) as info:
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-4b")
    assert info.value.code == status and TO not in str(info.value)


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


async def test_an_answer_slower_than_the_timeout_leaves_the_send_in_doubt(
    twilio: FakeTwilio,
) -> None:
    """The audit's case: Twilio created the message and answered after the client gave up."""
    twilio.respond_next(201, CREATED, delay=1.0)
    async with Client(timeout=0.3) as slow_client:
        with pytest.raises(UncertainSendError):
            await _sender(twilio, slow_client).send(to=TO, body="x", idempotency_key="k-9")


async def test_a_refused_connection_is_known_not_sent(twilio: FakeTwilio, client: Client) -> None:
    with pytest.raises(TransientSendError) as info:
        await _sender(twilio, client, f"http://127.0.0.1:{free_port()}").send(
            to=TO, body="x", idempotency_key="k-10"
        )
    assert not isinstance(info.value, UncertainSendError)


@pytest.mark.parametrize(
    ("status", "code"), [(401, 20003), (401, None), (403, 20003), (403, 20403), (403, None)]
)
async def test_refused_credentials_are_an_authentication_failure(
    twilio: FakeTwilio, client: Client, status: int, code: int | None
) -> None:
    """A rotated or mistyped auth token: retried loudly, never dead-lettered (the Deliverer)."""
    twilio.respond_next(status, {"code": code, "message": "Authenticate", "status": status})
    with pytest.raises(AuthenticationFailed) as info:
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-11")
    assert info.value.code == status and TOKEN not in str(info.value)


async def test_a_403_for_another_reason_is_permanent(twilio: FakeTwilio, client: Client) -> None:
    twilio.respond_next(403, {"code": 21408, "message": "Permission to send to this region"})
    with pytest.raises(PermanentSendError) as info:
        await _sender(twilio, client).send(to=TO, body="x", idempotency_key="k-12")
    assert not isinstance(info.value, AuthenticationFailed)


async def test_a_body_over_the_limit_is_too_long(twilio: FakeTwilio, client: Client) -> None:
    twilio.respond_next(400, {"code": 21617, "message": "The concatenated message body exceeds"})
    with pytest.raises(BodyTooLong):
        await _sender(twilio, client).send(to=TO, body="x" * 1601, idempotency_key="k-13")


# ---- the lookup of an earlier attempt ----------------------------------------------------------


def _since(seconds: float = -30.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_the_lookup_finds_the_message_an_attempt_created(
    twilio: FakeTwilio, client: Client
) -> None:
    sender = _sender(twilio, client)
    await sender.send(to="+18175550999", body="Not this one", idempotency_key="k-20")
    sid = await sender.send(to=TO, body="Your book is ready", idempotency_key="k-21")
    await sender.send(to=TO, body="Another text", idempotency_key="k-22")
    found = await sender.find_sent(
        to=TO, body="Your book is ready", idempotency_key="k-21", since=_since()
    )
    assert found == sid
    [query] = twilio.lookups
    assert query == {"To": TO, "From": FROM, "PageSize": "50"}


async def test_the_lookup_ignores_other_bodies_older_messages_and_excluded_ones(
    twilio: FakeTwilio, client: Client
) -> None:
    sender = _sender(twilio, client)
    sid = await sender.send(to=TO, body="Your book is ready", idempotency_key="k-23")
    args = {"to": TO, "idempotency_key": "k-23"}
    assert await sender.find_sent(body="Other", since=_since(), **args) is None
    assert await sender.find_sent(body="Your book is ready", since=_since(60), **args) is None
    assert (
        await sender.find_sent(body="Your book is ready", since=_since(), exclude={sid}, **args)
        is None
    )


@pytest.mark.parametrize(
    ("status", "found"),
    [("failed", False), ("undelivered", False), ("canceled", False), ("sent", True)],
)
async def test_a_message_that_never_reached_the_phone_is_not_the_text_looked_for(
    twilio: FakeTwilio, client: Client, status: str, found: bool
) -> None:
    sender = _sender(twilio, client)
    listed = {
        "sid": "SM" + "f" * 32,
        "to": TO,
        "from": FROM,
        "body": "Your book is ready",
        "status": status,
        "date_created": formatdate(usegmt=True),
    }
    twilio.list_next(200, {"messages": [listed]})
    got = await sender.find_sent(
        to=TO, body="Your book is ready", idempotency_key="k-24", since=_since()
    )
    assert got == (listed["sid"] if found else None)


@pytest.mark.parametrize("status", [404, 405, 501, 403, 401])
async def test_a_list_endpoint_that_cannot_be_read_makes_the_lookup_unavailable(
    twilio: FakeTwilio, client: Client, status: int
) -> None:
    twilio.list_next(status, {"code": 20404, "status": status})
    with pytest.raises(LookupUnavailable):
        await _sender(twilio, client).find_sent(
            to=TO, body="x", idempotency_key="k-24", since=_since()
        )


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_list_endpoint_failing_now_is_transient(
    twilio: FakeTwilio, client: Client, status: int
) -> None:
    twilio.list_next(status, {"code": 20500, "status": status})
    with pytest.raises(TransientSendError) as info:
        await _sender(twilio, client).find_sent(
            to=TO, body="x", idempotency_key="k-25", since=_since()
        )
    assert not isinstance(info.value, UncertainSendError)


async def test_a_route_without_get_makes_the_lookup_unavailable(client: Client) -> None:
    """A Twilio fake that only accepts POST (as http.server answers 501 to a GET it lacks)."""
    transport = httpx.MockTransport(lambda request: httpx.Response(501))
    async with Client(transport=transport) as bare:
        with pytest.raises(LookupUnavailable):
            await TwilioSmsSender("http://twilio.test", SID, TOKEN, FROM, bare).find_sent(
                to=TO, body="x", idempotency_key="k-26", since=_since()
            )


async def test_development_signs_in_to_twilio_with_the_token_ingest_checks(
    twilio: FakeTwilio, client: Client, tmp_path: Path
) -> None:
    """With a Twilio base URL and no token (development), the notifier sent Basic auth with
    an empty password while ingest checked Twilio's signatures with the development token."""
    from services.notifier.app import build_adapters
    from services.notifier.settings import DEV_TWILIO_TOKEN, NotifierSettings

    settings = NotifierSettings(
        env="development",
        run_dir=tmp_path,
        sms_api_base_url=twilio.base_url,
        twilio_account_sid=SID,
        sms_from=FROM,
    )
    adapters = build_adapters(settings, client)
    await adapters.sms.send(to=TO, body="We open at 8", idempotency_key="k-dev")
    basic = base64.b64encode(f"{SID}:{DEV_TWILIO_TOKEN}".encode()).decode()
    assert twilio.requests[0]["authorization"] == f"Basic {basic}"
