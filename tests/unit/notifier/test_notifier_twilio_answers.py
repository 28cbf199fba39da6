"""TwilioSmsSender against a fake of Twilio's Messages API in the client's transport
(httpx.MockTransport): a 429's Retry-After, in seconds or as an HTTP date, capped; a refusal's
Twilio error code, carried for the desk to put in words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from deliverer_fakes import T0

from services.notifier.errors import (
    AuthenticationFailed,
    BodyTooLong,
    PermanentSendError,
    RateLimited,
    UncertainSendError,
)
from services.notifier.sms import RETRY_AFTER_MAX_S, TwilioSmsSender

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "tok-secret"
FROM, TO = "+18175550100", "+18175550123"


class FakeMessagesApi:
    """Answers the next request with what it was told (a status, a JSON body, headers)."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, Any], dict[str, str]] = (201, {"sid": "SM1"}, {})

    def answer_next(
        self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.answer = (status, body or {}, headers or {})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        status, body, headers = self.answer
        return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
def twilio() -> FakeMessagesApi:
    return FakeMessagesApi()


@pytest.fixture
async def sender(twilio: FakeMessagesApi) -> AsyncIterator[TwilioSmsSender]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(twilio)) as client:
        yield TwilioSmsSender("https://api.twilio.test", SID, TOKEN, FROM, client, clock=lambda: T0)


async def refusal(sender: TwilioSmsSender) -> Exception:
    with pytest.raises(Exception) as info:
        await sender.send(to=TO, body="NE is open until 9 tonight.", idempotency_key="k-1")
    assert isinstance(info.value, Exception)
    return info.value


def http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=True)


# ---- 429 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wait_s"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"Retry-After": " 0 "}, 0.0),
        # a date, measured from the answer's own Date (Twilio's clock) ...
        (
            {
                "Retry-After": http_date(T0 + timedelta(minutes=5, seconds=45)),
                "Date": http_date(T0 + timedelta(minutes=5)),
            },
            45.0,
        ),
        # ... or from ours when it has none; a date gone by is no wait
        ({"Retry-After": http_date(T0 + timedelta(seconds=90))}, 90.0),
        ({"Retry-After": http_date(T0 - timedelta(seconds=90))}, 0.0),
        # capped: no text parked for a day on one header
        ({"Retry-After": "86400"}, RETRY_AFTER_MAX_S),
        ({"Retry-After": http_date(T0 + timedelta(days=2))}, RETRY_AFTER_MAX_S),
        # none, or unreadable: the lane's own backoff
        ({}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
    ],
)
async def test_a_429_says_how_long_twilio_asked_to_wait(
    twilio: FakeMessagesApi,
    sender: TwilioSmsSender,
    headers: dict[str, str],
    wait_s: float | None,
) -> None:
    twilio.answer_next(429, {"code": 20429, "message": "Too Many Requests"}, headers)
    error = await refusal(sender)
    assert isinstance(error, RateLimited) and error.code == 429
    assert error.retry_after_s == wait_s


async def test_a_429_on_the_lookup_says_how_long_too(
    twilio: FakeMessagesApi, sender: TwilioSmsSender
) -> None:
    twilio.answer_next(429, {"code": 20429}, {"Retry-After": "12"})
    with pytest.raises(RateLimited) as info:
        await sender.find_sent(to=TO, body="x", idempotency_key="k-1", since=T0)
    assert info.value.retry_after_s == 12.0


async def test_a_503_says_how_long_twilio_asked_to_wait_too(
    twilio: FakeMessagesApi, sender: TwilioSmsSender
) -> None:
    """Maintenance or overload: the text may exist (the next attempt asks first), and the
    retry waits what Retry-After says (it was the lane's own backoff, 1 s then 2 s ...)."""
    twilio.answer_next(503, {"code": 20503}, {"Retry-After": "120"})
    error = await refusal(sender)
    assert isinstance(error, UncertainSendError) and error.retry_after_s == 120.0
    twilio.answer_next(502, {})
    error = await refusal(sender)
    assert isinstance(error, UncertainSendError) and error.retry_after_s is None


# ---- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [21610, 21211, 21614, 21612])
async def test_a_refusal_carries_twilios_error_code(
    twilio: FakeMessagesApi, sender: TwilioSmsSender, code: int
) -> None:
    twilio.answer_next(400, {"code": code, "message": "refused", "status": 400})
    error = await refusal(sender)
    assert type(error) is PermanentSendError
    assert (error.code, error.provider_code) == (400, code)
    assert TO not in str(error)


@pytest.mark.parametrize(
    ("status", "body", "kind", "provider_code"),
    [
        (400, {"message": "no code"}, PermanentSendError, None),
        (400, {"code": "21610"}, PermanentSendError, None),  # not Twilio's shape: no code
        (400, {"code": 21617}, BodyTooLong, 21617),
        (401, {"code": 20003}, AuthenticationFailed, None),
    ],
)
async def test_other_refusals_keep_their_kind(
    twilio: FakeMessagesApi,
    sender: TwilioSmsSender,
    status: int,
    body: dict[str, Any],
    kind: type[Exception],
    provider_code: int | None,
) -> None:
    twilio.answer_next(status, body)
    error = await refusal(sender)
    assert type(error) is kind
    assert getattr(error, "provider_code", None) == provider_code
