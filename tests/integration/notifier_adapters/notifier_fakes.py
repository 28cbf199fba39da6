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


@dataclass
class FakeTwilio:
    """Records Messages API requests; answers 201 with a SID unless told otherwise."""

    base_url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    _replies: deque[tuple[int, Any, float]] = field(default_factory=deque)

    def respond_next(self, status: int, body: Any = None, *, delay: float = 0.0) -> None:
        self._replies.append((status, body, delay))

    async def messages(self, request: Request) -> JSONResponse:
        form = await request.form()
        self.requests.append(
            {
                "account_sid": request.path_params["sid"],
                "form": {k: str(v) for k, v in form.items()},
                "authorization": request.headers.get("authorization"),
                "idempotency": request.headers.get("i-twilio-idempotency-token"),
                "content_type": request.headers.get("content-type"),
            }
        )
        if self._replies:
            status, body, delay = self._replies.popleft()
            await asyncio.sleep(delay)
            return JSONResponse(body, status_code=status)
        sid = "SM" + uuid.uuid4().hex
        return JSONResponse(
            {"sid": sid, "status": "queued", "body": form.get("Body")}, status_code=201
        )
