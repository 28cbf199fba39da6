"""Real local servers for the notifier's delivery adapters: aiosmtpd (plain, STARTTLS, implicit
TLS, AUTH) and a Twilio Messages API fake served by uvicorn. Each runs in its own thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.routing import Route

from tests.servers import SmtpController, self_signed, serving_in_thread

from .notifier_fakes import (
    FakeTwilio,
    RecordingHandler,
    SmtpServer,
    TlsFiles,
    authenticator,
)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl CLI)."""
    return TlsFiles(*self_signed(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpServer]]:
    """Start an aiosmtpd server with the given SMTP options; every server stops after the test."""
    controllers: list[Controller] = []

    def _start(**options: Any) -> SmtpServer:
        handler = RecordingHandler()
        controller = SmtpController(handler, authenticator=authenticator, **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer(handler, controller.port)

    yield _start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_plain(start_smtp: Callable[..., SmtpServer]) -> SmtpServer:
    return start_smtp()


@pytest.fixture
def smtp_starttls(start_smtp: Callable[..., SmtpServer], tls_files: TlsFiles) -> SmtpServer:
    return start_smtp(
        tls_context=tls_files.server_context(), require_starttls=True, auth_required=True
    )


@pytest.fixture
def smtp_implicit_tls(start_smtp: Callable[..., SmtpServer], tls_files: TlsFiles) -> SmtpServer:
    # auth_require_tls=False: aiosmtpd only counts STARTTLS as TLS; this session is TLS throughout.
    return start_smtp(
        ssl_context=tls_files.server_context(), auth_required=True, auth_require_tls=False
    )


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word (an SMTP greeting that never comes)."""

    async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(_hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture
async def hangup_server() -> AsyncIterator[int]:
    """Greets like an SMTP server, then hangs up."""

    async def _hangup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(_hangup, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    path = "/2010-04-01/Accounts/{sid}/Messages.json"
    app = Starlette(
        routes=[
            Route(path, fake.messages, methods=["POST"]),
            Route(path, fake.list_messages, methods=["GET"]),
        ]
    )
    with serving_in_thread(app, what="the Twilio fake") as url:
        fake.base_url = url
        yield fake


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    return twilio_server
