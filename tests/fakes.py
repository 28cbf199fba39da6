"""Fakes of ports several services share, for component tests: a broker that records events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


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
            self.published.append((topic, key.decode(), json.loads(body)))
            ack.set_result(None)
        return ack

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The events published on one topic, in order."""
        return [event for t, _key, event in self.published if t == topic]
