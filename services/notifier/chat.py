"""Chat delivery.

The hosted chat platform (Springshare LibAnswers) offers no public API for posting into a live
chat, so there is no network adapter here: chat hand-off messages go to a folder outbox that staff
tooling (or a future platform integration) reads. A real adapter only needs the same ``send``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from services.notifier.sms import write_outbox

log = logging.getLogger(__name__)


class ChatSender(Protocol):
    """What the notifier's consumer needs from a chat adapter."""

    async def send(self, *, conversation_id: str, body: str, idempotency_key: str) -> str: ...


class OutboxChatSender:
    """Each chat message becomes ``<folder>/<key>.json``, written atomically, once per key."""

    def __init__(self, folder: Path | str) -> None:
        self._folder = Path(folder)

    async def send(self, *, conversation_id: str, body: str, idempotency_key: str) -> str:
        """Record the chat message in the outbox; return a stable fake provider id."""
        provider_id = await write_outbox(
            self._folder,
            idempotency_key,
            {"channel": "chat", "conversation_id": conversation_id, "body": body},
        )
        log.info("chat message written to outbox key=%s", idempotency_key)
        return provider_id
