"""A development mail sink: an SMTP server (aiosmtpd) that keeps each message as a file."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class SinkHandler:
    """Stores every accepted message under folder/<time>-<id>.eml and keeps it in memory."""

    folder: Path | None = None
    messages: list[EmailMessage] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    """SMTP replies to give instead of accepting, one per message (e.g. '451 try later')."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Accept (or refuse, when told to) one message."""
        if self.fail_next:
            return self.fail_next.pop(0)
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
            tmp = self.folder / f".{name}"
            tmp.write_bytes(data)
            tmp.rename(self.folder / name)
        return "250 Message accepted for delivery"


class SmtpController(Controller):
    """aiosmtpd's Controller that may listen on a port the system picks (`port=0`, read back
    into `.port` once bound); a restart listens on that same port again."""

    def __init__(
        self, handler: Any, *, hostname: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        super().__init__(handler, hostname=hostname, port=port, **options)

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.base_events.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


def start_sink(
    host: str = "127.0.0.1", port: int = 1025, folder: Path | None = None, **kwargs: Any
) -> tuple[SmtpController, SinkHandler]:
    """Start a sink in a background thread (port 0: one the system picks, then in
    `controller.port`); stop it with controller.stop()."""
    handler = SinkHandler(folder=folder)
    controller = SmtpController(handler, hostname=host, port=port, **kwargs)
    controller.start()
    return controller, handler
