"""A request body must arrive whole within its deadline, else 408 and the connection closed: an
outside probe's 300 connections declaring 100,000 bytes and sending one every 5 s were never
closed. The client here stalls for good after its first part; the deadline is shortened, and
no test waits on a clock of its own."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from shared.limits import BodyLimit

DEADLINE_S = 0.05


def scope(content_type: bytes) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/sms",
        "headers": [(b"content-type", content_type), (b"content-length", b"100000")],
    }


def stalling(*parts: bytes) -> Receive:
    """A client that sends `parts` (more to come after each) and then nothing, ever."""
    queue = list(parts)

    async def receive() -> Message:
        if queue:
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


class Sent:
    """What the middleware sent the client."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def problem(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.messages[1]["body"])
        return loaded


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the body to its end, as a form parser does, then answers 200."""
    while (message := await receive())["type"] == "http.request":
        if not message.get("more_body", False):
            break
    else:
        return  # the client left: nothing to answer
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_form_body_that_stalls_is_answered_408_and_closed() -> None:
    limit = BodyLimit(reading_app, limit=1_000_000, read_timeout_s=DEADLINE_S)
    sent = Sent()
    await limit(scope(b"application/x-www-form-urlencoded"), stalling(b"Body=a"), sent)
    assert sent.status == 408
    assert sent.headers[b"content-type"] == b"application/problem+json"
    assert sent.headers[b"connection"] == b"close"
    assert sent.problem["field"] == "body" and sent.problem["title"] == "Request timeout"
    assert len(sent.messages) == 2  # the app's own answer, if any, goes nowhere


async def test_a_json_body_that_stalls_is_answered_408_before_the_app_runs() -> None:
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    sent = Sent()
    limit = BodyLimit(app, limit=1_000_000, read_timeout_s=DEADLINE_S)
    await limit(scope(b"application/json"), stalling(b'{"type": '), sent)
    assert (sent.status, sent.problem["field"], called) == (408, "body", False)


async def test_a_body_that_arrives_is_read_as_before() -> None:
    parts = [b"Body=a", b"&From=b", b""]

    async def receive() -> Message:
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    sent = Sent()
    await BodyLimit(reading_app, limit=1_000_000, read_timeout_s=DEADLINE_S)(
        scope(b"application/x-www-form-urlencoded"), receive, sent
    )
    assert sent.status == 200
