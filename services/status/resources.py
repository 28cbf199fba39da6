"""What the status service holds (settings, sessions, the publisher, the clock) and how it
publishes after a commit; built once per app by the lifespan, shared by routes, consumers and
the periodic sweeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.status.conversations.macros import MacroBook
from services.status.errors import Unavailable
from services.status.settings import StatusSettings
from shared.clock import utcnow
from shared.events import PresenceChanged
from shared.kafka import publish
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import PRESENCE

SOURCE = "refdesk/status"
REPUBLISH = "republish_presence"


class Publisher(Protocol):
    async def __call__(self, topic: str, data: BaseModel, *, key: str) -> None:
        """Publish one event and return once the broker acknowledged it."""


class KafkaPublisher:
    """Publishes CloudEvents through the service's broker (acks=all), waiting at most
    `timeout_s` for the acknowledgement: with the broker down a staff action had waited with no
    limit (200 s and more, then applied twice when the librarian tried again). A publish that
    outlives the wait is not abandoned: the idempotent producer keeps the record and delivers
    it once the broker is back."""

    def __init__(self, broker: KafkaBroker, *, timeout_s: float | None = None) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def __call__(self, topic: str, data: BaseModel, *, key: str) -> None:
        """Publish and count; TimeoutError once `timeout_s` passed without the ack."""
        with PUBLISH_SECONDS.labels(topic=topic).time():
            sending = asyncio.ensure_future(
                publish(self.broker, topic, data, key=key, source=SOURCE)
            )
            sending.add_done_callback(_settled)
            await asyncio.wait_for(asyncio.shield(sending), timeout=self.timeout_s)
        PUBLISHED.labels(topic=topic).inc()


def _settled(sending: asyncio.Future[Any]) -> None:
    """Take a late publish's outcome (a failure after the request was answered is logged by
    the publish itself, not left as "exception never retrieved")."""
    if not sending.cancelled():
        sending.exception()


@dataclass
class Resources:
    """Everything the routes, consumers and sweeps share; built once per app."""

    settings: StatusSettings
    sessions: async_sessionmaker[AsyncSession]
    publisher: Publisher
    clock: Callable[[], datetime] = utcnow
    engine: AsyncEngine | None = None
    broker: KafkaBroker | None = None
    book: MacroBook = field(default_factory=MacroBook)
    extra: dict[str, object] = field(default_factory=dict)
    changes_committed: Callable[[], None] = lambda: None
    """Called after a transaction that wrote live-feed rows commits (the app points it at its
    live feed's `nudge`, so the consoles on this replica see the change at once)."""


async def publish_presence(res: Resources, events: list[PresenceChanged]) -> None:
    """Publish presence changes keyed by staff id (after their commit)."""
    try:
        for event in events:
            await res.publisher(PRESENCE.name, event, key=event.staff_id)
    except Exception as exc:
        res.extra[REPUBLISH] = True  # the next sweep republishes everyone's presence
        raise Unavailable("change saved; presence event not published yet") from exc


async def publish_all(res: Resources, events: list[tuple[str, BaseModel]], *, key: str) -> None:
    """Publish an action's events after its commit; 503 if the broker did not take them
    (the change is saved, and repeating the request publishes them again)."""
    try:
        for topic, event in events:
            await res.publisher(topic, event, key=key)
    except Exception as exc:
        raise Unavailable(
            "saved; the message broker has not confirmed it yet, and refdesk passes it on once"
            " the broker answers"
        ) from exc
