"""A development mail sink: an SMTP server (aiosmtpd) that keeps each message as a file."""

from __future__ import annotations

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


def start_sink(
    host: str = "127.0.0.1", port: int = 1025, folder: Path | None = None, **kwargs: Any
) -> tuple[Controller, SinkHandler]:
    """Start a sink in a background thread; stop it with controller.stop()."""
    handler = SinkHandler(folder=folder)
    controller = Controller(handler, hostname=host, port=port, **kwargs)
    controller.start()
    return controller, handler
