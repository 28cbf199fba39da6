"""Test doubles for the notifier adapters: a recording aiosmtpd handler, TLS files, a Twilio fake.

Imported by this package's conftest and tests.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.requests import Request
from starlette.responses import JSONResponse

USER, PASSWORD = "refdesk", "s3cret-pass"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- SMTP ------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None
    peer: Any = None
    """The client's (host, port): one per SMTP session."""
    mail_options: list[str] = field(default_factory=list)


@dataclass
class RecordingHandler:
    """Records accepted messages; ``reject_next`` makes it refuse the next N commands."""

    messages: list[Received] = field(default_factory=list)
    quits: int = 0
    data_delay_s: float = 0.0
    """How long the server takes to answer the end of the message (a relay that scans it)."""
    _rejections: deque[tuple[str, str]] = field(default_factory=deque)

    def reject_next(self, reply: str, count: int = 1, *, at: str = "DATA") -> None:
        self._rejections.extend([(at, reply)] * count)

    def _take(self, at: str) -> str | None:
        if self._rejections and self._rejections[0][0] == at:
            return self._rejections.popleft()[1]
        return None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._take("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._take("DATA")
        if reply:
            return reply
        if self.data_delay_s:
            await asyncio.sleep(self.data_delay_s)
        auth = session.auth_data if session.authenticated else None
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self.messages.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or b""),
                login,
                session.peer,
                list(envelope.mail_options),
            )
        )
        return "250 Message accepted"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@dataclass
class SmtpServer:
    handler: RecordingHandler
    port: int


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


# ---- Twilio fake -----------------------------------------------------------------------------


CREATED = object()
"""A scripted reply's body meaning: create the message as Twilio would, answer its 201."""


@dataclass
class FakeTwilio:
    """Twilio's Messages API: records create requests and answers 201 with a SID unless told
    otherwise; keeps what it created and lists it (GET, filtered by To and From, newest first)
    as the notifier's lookup reads it."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    """Messages as Twilio lists them (sid, to, from, body, status, date_created)."""
    lookups: list[dict[str, str]] = field(default_factory=list)
    """The query of each list request."""
    listing: bool = True
    """False: the list endpoint answers 404, as a fake or proxy without it would."""
    _replies: deque[tuple[int, Any, float]] = field(default_factory=deque)
    _list_replies: deque[tuple[int, Any]] = field(default_factory=deque)

    def respond_next(self, status: int, body: Any = None, *, delay: float = 0.0) -> None:
        """Answer the next create with this (CREATED: create it), after `delay` seconds."""
        self._replies.append((status, body, delay))

    def list_next(self, status: int, body: Any = None) -> None:
        """Answer the next list request with this."""
        self._list_replies.append((status, body))

    def reset(self) -> None:
        for kept in (self.requests, self.created, self.lookups, self._replies, self._list_replies):
            kept.clear()
        self.listing = True

    def bodies_to(self, to: str) -> list[str]:
        """The bodies of the messages created for `to`, in the order they were created."""
        return [m["body"] for m in self.created if m["to"] == to]

    def _create(self, form: dict[str, str]) -> dict[str, Any]:
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "date_created": formatdate(usegmt=True),
            "date_sent": None,
        }
        self.created.append(message)
        return message

    async def messages(self, request: Request) -> JSONResponse:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(
            {
                "account_sid": request.path_params["sid"],
                "form": form,
                "authorization": request.headers.get("authorization"),
                "idempotency": request.headers.get("i-twilio-idempotency-token"),
                "content_type": request.headers.get("content-type"),
            }
        )
        if self._replies:
            status, body, delay = self._replies.popleft()
            if body is CREATED:
                body = self._create(form)
            await asyncio.sleep(delay)
            return JSONResponse(body, status_code=status)
        return JSONResponse(self._create(form), status_code=201)

    async def list_messages(self, request: Request) -> JSONResponse:
        query = dict(request.query_params)
        self.lookups.append(query)
        if self._list_replies:
            status, body = self._list_replies.popleft()
            return JSONResponse(body, status_code=status)
        if not self.listing:
            return JSONResponse({"code": 20404, "status": 404}, status_code=404)
        found = [
            m
            for m in reversed(self.created)
            if m["to"] == query.get("To") and m["from"] == query.get("From")
        ]
        size = int(query.get("PageSize", "50"))
        return JSONResponse({"messages": found[:size], "page_size": size}, status_code=200)
