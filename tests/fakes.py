"""Fakes of ports several services share, for component tests: a broker that records events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from shared.topics import TOPICS, carried_types

KNOWN_TOPICS = frozenset(
    name for t in TOPICS for name in (t.name, *([t.dlq_name] if t.dlq else []))
)


def check_carried(topic: str, event_type: str) -> None:
    """Fail a test whose code publishes a type the topic map (shared.topics) does not list for
    that topic: the AsyncAPI documents are built from the map. Test-only topic names pass."""
    if topic in KNOWN_TOPICS and event_type not in carried_types(topic):
        raise AssertionError(f"{event_type} published on {topic}, which does not carry it")


@dataclass
class FakeBroker:
    """Records every publish as (topic, key, event); acknowledges it at once, or fails it."""

    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    async def publish(
        self, body: bytes, *, topic: str, key: bytes, headers: dict[str, str], no_confirm: bool
    ) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.down:
            ack.set_exception(ConnectionError("the broker is down"))
        else:
            event = json.loads(body)
            check_carried(topic, event["type"])
            self.published.append((topic, key.decode(), event))
            ack.set_result(None)
        return ack

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The events published on one topic, in order."""
        return [event for t, _key, event in self.published if t == topic]


def secret_like(label: str, length: int = 40) -> str:
    """A value shaped like a generated secret (production refuses "k" * 40 as not random),
    the same for the same label."""
    import base64
    import hashlib

    digest = hashlib.sha512(label.encode()).digest()
    return base64.b64encode(digest).decode().replace("+", "x").replace("/", "y")[:length]


def webhook_secret_like(label: str) -> str:
    """A Standard Webhooks secret (`whsec_` and base64) shaped like a generated one."""
    import base64
    import hashlib

    return "whsec_" + base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()
