"""Request limits applied before any handler runs: body size (413), JSON nesting (400) and the
time a body takes to arrive (408).

Python's json module and the email parser recurse once per level of nesting, so a body nested
a few thousand levels deep ends in RecursionError (a 500, which the sender retries forever).
Bodies are therefore refused by size before they are read, and JSON bodies by depth before
anything parses them. A client that declares a body and sends it a byte at a time would hold
its connection (and a worker's attention) open for as long as it likes: the body must arrive
whole within a deadline.
"""

from __future__ import annotations

import asyncio
import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 64
"""Deepest JSON nesting any endpoint accepts; refdesk's own documents nest under 8 levels."""
DEFAULT_MAX_BODY_BYTES = 256 * 1024
"""Largest body the services other than ingest take (their JSON bodies are a few KiB)."""
BODY_READ_TIMEOUT_S = 30.0
"""Longest a request body may take to arrive whole, from the request's start: an outside
probe's 300 connections declaring 100,000 bytes and sending one every 5 s were never closed.
A 1 MiB body arrives within it at 35 KiB/s."""


class _BodyTimedOut(Exception):
    """The request's body did not arrive whole before its deadline."""


_JSON_TOKENS = re.compile(rb'["\\\[\]{}]')


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets nest more than `limit` deep outside strings (malformed JSON included).

    Linear in the body: bodies with few brackets are answered by counting them, others by one
    pass over the quotes, backslashes and brackets only.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, skip_at = 0, False, -1
    for match in _JSON_TOKENS.finditer(body):
        at, token = match.start(), match.group()
        if at == skip_at:  # the character after a backslash inside a string
            continue
        if in_string:
            if token == b"\\":
                skip_at = at + 1
            elif token == b'"':
                in_string = False
        elif token == b'"':
            in_string = True
        elif token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = bytes(value).split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class BodyLimit:
    """Refuse bodies over `limit` bytes (by Content-Length, or while streaming, unread) with 413,
    JSON bodies nested deeper than `json_depth` with 400, and bodies not whole within
    `read_timeout_s` of the request's start with 408; all as problem+json, closing the
    connection."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        json_depth: int = MAX_JSON_DEPTH,
        read_timeout_s: float = BODY_READ_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.limit = limit
        self.json_depth = json_depth
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        receive = self._deadline(receive)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _refuse(send, 413, "Payload too large", f"the body exceeds {self.limit} bytes")
            return
        if _is_json(scope):
            await self._json(scope, receive, send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            # Over the limit: answer 413 now and tell the app the client left (FastAPI turns
            # any exception raised while it reads a form into its own 400).
            nonlocal seen, started, refused
            if refused:
                return {"type": "http.disconnect"}
            try:
                message = await receive()
            except _BodyTimedOut:
                if not started:
                    await self._timed_out(send)
                started = refused = True
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started:
                        detail = f"the body exceeds {self.limit} bytes"
                        await _refuse(send, 413, "Payload too large", detail)
                    started = refused = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the app's answer to a body it never got goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, tracked)

    async def _json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole (bounded) JSON body, check its depth, then hand it on unchanged."""
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await receive()
            except _BodyTimedOut:
                await self._timed_out(send)
                return
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(
                    send, 413, "Payload too large", f"the body exceeds {self.limit} bytes"
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_too_deep(body, self.json_depth):
            detail = f"JSON nested more than {self.json_depth} levels deep"
            await _refuse(send, 400, "Malformed body", detail)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _deadline(self, receive: Receive) -> Receive:
        """`receive`, raising _BodyTimedOut once `read_timeout_s` from now have passed before
        the body's last part arrived; unbounded after it (an app may wait for the client to
        leave, as a live stream does)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout_s
        whole = False

        async def bounded() -> Message:
            nonlocal whole
            if whole:
                return await receive()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimedOut from None
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return bounded

    async def _timed_out(self, send: Send) -> None:
        detail = f"the body did not arrive whole within {self.read_timeout_s:g} s"
        await _refuse(send, 408, "Request timeout", detail)


async def _refuse(send: Send, status: int, title: str, detail: str) -> None:
    """Answer a problem about the body (its `field`) and close the connection."""
    problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body = json.dumps({**problem, "field": "body"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
