"""Messages into a chat through a chat platform served over HTTP (uvicorn, its own thread) that
checks every request with the Standard Webhooks reference library and posts each webhook-id
once, as the specification asks of a receiver: a librarian's reply double-clicked is one
message, a 503 is retried under the same webhook-id into one message, a chat that is over
(410) is announced as not delivered, and a refused signature keeps the message waiting."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.notifier.settings import NotifierSettings
from shared.events import Channel, NotificationKind, NotificationRequested, StaffReplyContext
from shared.topics import NOTIFICATIONS
from tests.eventually import eventually
from tests.kafka_helpers import caught_up
from tests.servers import serving_in_thread

from .conftest import Configure
from .notifier_env import metric, running, send, settled, summary
from .test_notifier_replies import outcome_of

DEAD = "refdesk_notifications_dead_lettered_total"
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class ChatPlatform:
    """Posts each verified message into its chat once per webhook-id; answers the next
    requests with what it was told first."""

    url: str = ""
    secret: str = SECRET
    requests: int = 0
    refused: int = 0
    posted: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: list[int] = field(default_factory=list)

    async def messages(self, request: Request) -> Response:
        self.requests += 1
        body = (await request.body()).decode()
        try:
            event = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused += 1
            return Response(status_code=401)
        if self.answers:
            return Response(status_code=self.answers.pop(0))
        self.posted.setdefault(request.headers["webhook-id"], event)
        return JSONResponse({"id": f"msg-{len(self.posted)}"}, status_code=202)


@pytest.fixture(scope="module")
def platform_server() -> Iterator[ChatPlatform]:
    platform = ChatPlatform()
    app = Starlette(routes=[Route("/refdesk/messages", platform.messages, methods=["POST"])])
    with serving_in_thread(app, what="the chat platform") as url:
        platform.url = f"{url}/refdesk/messages"
        yield platform


@pytest.fixture
def platform(platform_server: ChatPlatform) -> ChatPlatform:
    platform_server.secret, platform_server.answers = SECRET, []
    platform_server.requests = platform_server.refused = 0
    platform_server.posted.clear()
    return platform_server


async def chat_settings(configure: Configure, platform: ChatPlatform) -> NotifierSettings:
    return await configure(chat_api_url=platform.url, chat_api_secret=SECRET)


def reply_in_chat(text: str) -> NotificationRequested:
    """The command the status service publishes when a librarian answers a chat."""
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    reply = StaffReplyContext(reply_id=uuid.uuid4().hex, staff_id="jdoe", text=text)
    return NotificationRequested(
        idempotency_key=f"reply-{reply.reply_id}",
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.CHAT,
        recipient=chat,
        conversation_id=chat,
        context=reply.model_dump(mode="json"),
        requested_at=datetime.now(UTC),
    )


async def test_a_double_clicked_reply_is_one_signed_message_in_the_chat(
    configure: Configure, platform: ChatPlatform, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await chat_settings(configure, platform)
    cmd = reply_in_chat("Yes: Room 2104 is free until 3 p.m. Want me to book it?")
    async with running(settings) as notifier:
        await send(producer, cmd)
        await send(producer, cmd)
        await eventually(
            lambda: caught_up(kafka_bootstrap, settings.notifier_group, NOTIFICATIONS.name),
            "the notifier committed past both commands",
        )
        await settled(notifier, sent=1)
    assert platform.requests == 1 and platform.refused == 0
    event = platform.posted[cmd.idempotency_key]
    assert event["type"] == "chat.message"
    assert event["data"] == {
        "conversation_id": cmd.recipient,
        "message_id": cmd.idempotency_key,
        "author": "staff",
        "staff_id": "jdoe",
        "kind": "staff_reply",
        "text": "Yes: Room 2104 is free until 3 p.m. Want me to book it?",
    }
    outcome = await outcome_of(kafka_bootstrap, cmd.idempotency_key)
    assert outcome["state"] == "sent" and outcome["text"] == event["data"]["text"]


async def test_a_503_is_retried_into_one_message(
    configure: Configure, platform: ChatPlatform, producer: KafkaBroker
) -> None:
    settings = await chat_settings(configure, platform)
    platform.answers = [503]
    cmd = reply_in_chat("The Writing Center opens at 9.")
    async with running(settings) as notifier:
        await send(producer, cmd)
        await settled(notifier, sent=1)
    assert platform.requests == 2 and list(platform.posted) == [cmd.idempotency_key]


async def test_a_chat_that_is_over_is_announced_as_not_delivered(
    configure: Configure, platform: ChatPlatform, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await chat_settings(configure, platform)
    platform.answers = [410]
    dead = metric(DEAD, kind="staff_reply", channel="chat")
    cmd = reply_in_chat("Are you still there?")
    async with running(settings) as notifier:
        await send(producer, cmd)
        await settled(notifier, sent=0, dead=1)
    outcome = await outcome_of(kafka_bootstrap, cmd.idempotency_key)
    assert outcome["state"] == "failed" and platform.posted == {}
    assert outcome["reason"] == "chat ended"
    # what happens each time a patron leaves: no dead letter, nothing for an operator
    assert metric(DEAD, kind="staff_reply", channel="chat") == dead


async def test_a_refused_signature_keeps_the_message_waiting(
    configure: Configure, platform: ChatPlatform, producer: KafkaBroker
) -> None:
    settings = await chat_settings(configure, platform)
    platform.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    refused = metric("refdesk_notification_auth_failures_total", channel="chat")
    cmd = reply_in_chat("See you at the desk.")
    async with running(settings) as notifier:
        await send(producer, cmd)
        await eventually(lambda: platform.refused >= 1, "the platform refusing the signature")
        await eventually(
            lambda: metric("refdesk_notification_auth_failures_total", channel="chat") > refused,
            "the refusal counted",
        )
        seen = await summary(notifier)
    assert seen["pending"] == 1 and seen["dead"] == 0 and platform.posted == {}
