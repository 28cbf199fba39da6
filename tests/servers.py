"""In-process HTTP and SMTP servers for tests, on a port the OS picks: the server binds port 0
and the test reads back the port it got, so no port is chosen first and handed over (another
process could take it in between)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import uvicorn

from refdesk_cli.mailsink import SmtpController
from shared.service import bound_port
from tests.eventually import eventually

__all__ = ["QuietServer", "SmtpController", "self_signed", "serving", "serving_in_thread"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost in `folder` (openssl CLI):
    (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class QuietServer(uvicorn.Server):
    """A server its fixture stops, so it installs no signal handlers. Servers nested in one
    process restore each other's handlers out of order, which can leave SIGTERM bound to a
    stopped server; sse-starlette reads that server's `should_exit` and then ends every event
    stream of the process as soon as it opens."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: Any, lifespan: Literal["on", "off"]) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, lifespan=lifespan, access_log=False
    )
    return QuietServer(config)


def _url(server: uvicorn.Server) -> str:
    return f"http://127.0.0.1:{bound_port(server.servers[0].sockets)}"


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, what: str, lifespan: Literal["on", "off"] = "off", timeout: float = 60.0
) -> AsyncIterator[str]:
    """Serve an ASGI app on this event loop (lifespan and all); yield its base URL."""
    server = _server(app, lifespan)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), f"{what} started", timeout=timeout)
    if not server.started:
        task.result()  # raises what stopped it
        raise RuntimeError(f"{what} did not start")
    try:
        yield _url(server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@contextlib.contextmanager
def serving_in_thread(
    app: Any, *, what: str, lifespan: Literal["on", "off"] = "off", timeout: float = 30.0
) -> Iterator[str]:
    """Serve an ASGI app on a thread of its own (for fixtures shared across event loops);
    yield its base URL."""
    server = _server(app, lifespan)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)
    try:
        yield _url(server)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
