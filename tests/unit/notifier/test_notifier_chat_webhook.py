"""WebhookChatSender against a chat platform in the client's transport (httpx.MockTransport):
each message verifies with the Standard Webhooks reference library under the secret, carries
its idempotency key as webhook-id and the same body on every attempt, and each answer of the
platform becomes the failure the lanes treat as documented (services/notifier/chat.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from services.notifier.chat import WebhookChatSender
from services.notifier.errors import (
    AuthenticationFailed,
    ChatEnded,
    NotifierError,
    PermanentSendError,
    RateLimited,
    SettingsRefused,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.settings import NotifierSettings
from services.publisher.subscriptions import new_secret

URL = "https://chat.example.edu/refdesk/messages"
ASKED = datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
TEXT = "Hola Ana, sí: the 2nd floor printer takes cards. ¿Algo más?"


class Platform:
    """Answers each request with the next answer it was given (200 {} once they run out) and
    keeps what it received."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        if not self.answers:
            return httpx.Response(200, json={})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def send(platform: Platform, secret: str, *, kind: str = "staff_reply") -> str:
    async with httpx.AsyncClient(transport=httpx.MockTransport(platform)) as client:
        sender = WebhookChatSender(URL, [secret], client, clock=lambda: datetime.now(UTC))
        return await sender.send(
            conversation_id="chat-81234",
            body=TEXT,
            idempotency_key="reply-5f1c",
            kind=kind,
            requested_at=ASKED,
            staff_id="jdoe",
        )


async def test_a_message_verifies_with_the_reference_library_and_reads_as_chat_message() -> None:
    secret, platform = new_secret(), Platform(httpx.Response(202, json={"id": "msg-991"}))
    assert await send(platform, secret) == "msg-991"
    [request] = platform.received
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["webhook-id"] == "reply-5f1c"
    assert request.headers["content-type"] == "application/json"
    body = request.content.decode()
    verified = Webhook(secret).verify(body, dict(request.headers))
    assert verified == {
        "type": "chat.message",
        "timestamp": "2026-03-02T15:04:05+00:00",
        "data": {
            "conversation_id": "chat-81234",
            "message_id": "reply-5f1c",
            "author": "staff",
            "staff_id": "jdoe",
            "kind": "staff_reply",
            "text": TEXT,
        },
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, dict(request.headers))


async def test_while_the_secret_is_rotated_either_one_verifies() -> None:
    new, old = new_secret(), new_secret()
    platform = Platform()
    async with httpx.AsyncClient(transport=httpx.MockTransport(platform)) as client:
        sender = WebhookChatSender(URL, [new, old], client)
        await sender.send(
            conversation_id="chat-1",
            body="hi",
            idempotency_key="k-1",
            kind="staff_reply",
            requested_at=ASKED,
        )
    [request] = platform.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        Webhook(secret).verify(request.content.decode(), dict(request.headers))


async def test_refdesks_own_messages_are_by_refdesk_and_the_key_is_the_fallback_id() -> None:
    platform = Platform(httpx.Response(200, text="OK"))
    assert await send(platform, new_secret(), kind="handoff") == "reply-5f1c"
    data = json.loads(platform.received[0].content)["data"]
    assert (data["author"], data["staff_id"]) == ("refdesk", None)


async def test_a_retry_after_a_lost_answer_is_the_same_message() -> None:
    secret = new_secret()
    platform = Platform(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    with pytest.raises(UncertainSendError):
        await send(platform, secret)
    await send(platform, secret)
    first, second = platform.received
    assert first.content == second.content
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "reply-5f1c"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(404), ChatEnded),
        (httpx.Response(410), ChatEnded),
        (httpx.Response(422, json={"error": "bad"}), PermanentSendError),
        (httpx.Response(401), AuthenticationFailed),
        (httpx.Response(403), AuthenticationFailed),
        (httpx.Response(302, headers={"location": "https://sso.example.edu/"}), SettingsRefused),
        (httpx.Response(408), TransientSendError),
        (httpx.Response(500), UncertainSendError),
        (httpx.Response(502), UncertainSendError),
        (httpx.ConnectError("refused"), TransientSendError),
        (httpx.ReadTimeout("slow"), UncertainSendError),
    ],
)
async def test_each_answer_is_the_failure_the_lanes_expect(
    answer: httpx.Response | Exception, kind: type[NotifierError]
) -> None:
    with pytest.raises(kind) as raised:
        await send(Platform(answer), new_secret())
    assert type(raised.value) is kind
    assert "Hola" not in str(raised.value) and "chat-81234" not in str(raised.value)


async def test_a_chat_that_is_over_says_so() -> None:
    with pytest.raises(PermanentSendError, match="the chat is over"):
        await send(Platform(httpx.Response(410)), new_secret())


async def test_429_and_503_wait_as_long_as_the_platform_asked() -> None:
    with pytest.raises(RateLimited) as limited:
        await send(Platform(httpx.Response(429, headers={"Retry-After": "30"})), new_secret())
    assert limited.value.retry_after_s == 30
    later = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with pytest.raises(UncertainSendError) as unavailable:
        await send(Platform(httpx.Response(503, headers={"Retry-After": later})), new_secret())
    assert unavailable.value.retry_after_s is not None
    assert 100 <= unavailable.value.retry_after_s <= 121


def chat_settings(**values: object) -> NotifierSettings:
    return NotifierSettings.model_validate(values)


def test_the_url_needs_a_usable_secret() -> None:
    with pytest.raises(ValidationError, match="REFDESK_CHAT_API_SECRET"):
        chat_settings(chat_api_url=URL)
    with pytest.raises(ValidationError, match="whsec_ followed by base64"):
        chat_settings(chat_api_url=URL, chat_api_secret="whsec_!!!not base64!!!")
    assert chat_settings(chat_api_url=URL, chat_api_secret=new_secret()).chat_api_url == URL


@pytest.mark.parametrize(
    "url", ["ftp://chat.example.edu/x", "https://user:pw@chat.example.edu/x", "chat.example.edu"]
)
def test_a_url_that_is_not_plain_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="chat_api_url"):
        chat_settings(chat_api_url=url, chat_api_secret=new_secret())


def test_a_timeout_past_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="REFDESK_CHAT_API_TIMEOUT_S"):
        chat_settings(chat_api_timeout_s=500)
