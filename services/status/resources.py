"""What the status service holds (settings, sessions, the publisher, the clock) and how it
publishes after a commit; built once per app by the lifespan, shared by routes, consumers and
the periodic sweeps."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.status.conversations.macros import MacroBook
from services.status.errors import Unavailable
from services.status.models import OutboxRecord
from services.status.settings import StatusSettings
from shared.clock import utcnow
from shared.events import EVENT_TYPES, TYPE_OF, PresenceChanged
from shared.kafka import publish
from shared.logs import REPEATING
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import PRESENCE

SOURCE = "refdesk/status"
REPUBLISH = "republish_presence"
RELAY_AFTER = timedelta(seconds=30)
"""The periodic relay publishes outbox records at least this old: younger ones are still the
request's own to publish (REFDESK_STATUS_PUBLISH_TIMEOUT_S, 4 s by default)."""
RELAY_BATCH = 500

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def __call__(
        self, topic: str, data: BaseModel, *, key: str, event_id: str | None = None
    ) -> None:
        """Publish one event and return once the broker acknowledged it."""


class KafkaPublisher:
    """Publishes CloudEvents through the service's broker (acks=all), waiting at most
    `timeout_s` for the acknowledgement: with the broker down a staff action had waited with no
    limit (200 s and more, then applied twice when the librarian tried again). A publish that
    outlives the wait is not abandoned: the idempotent producer keeps the record and delivers
    it while the producer keeps it; what the producer gives up on, a staff action's events
    kept in the outbox are published again (`deliver`)."""

    def __init__(self, broker: KafkaBroker, *, timeout_s: float | None = None) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def __call__(
        self, topic: str, data: BaseModel, *, key: str, event_id: str | None = None
    ) -> None:
        """Publish and count; TimeoutError once `timeout_s` passed without the ack."""
        with PUBLISH_SECONDS.labels(topic=topic).time():
            sending = asyncio.ensure_future(
                publish(self.broker, topic, data, key=key, source=SOURCE, event_id=event_id)
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


Record = tuple[str, BaseModel, str]
"""(topic, event data, key)."""


def keyed(events: Sequence[tuple[str, BaseModel]], key: str) -> list[Record]:
    """(topic, data) events as records of one key (a conversation's)."""
    return [(topic, data, key) for topic, data in events]


async def deliver(res: Resources, session: AsyncSession, records: Sequence[Record]) -> None:
    """A staff action's events: saved in the outbox with the action's change (this commits
    the session), then published in order with any earlier records of the same keys still
    waiting. With the broker away (it did not answer the last ping: `broker_answers`) the
    change stands and the answer is the action's own, at once: the periodic relay (`relay`)
    publishes the records once the broker is back, each under the CloudEvent id it was saved
    with, so a record published twice is one event to consumers."""
    now = res.clock()
    session.add_all(
        OutboxRecord(
            topic=topic,
            key=key,
            event_id=str(uuid.uuid4()),
            type=TYPE_OF[type(data)],
            data=data.model_dump_json(),
            created_at=now,
        )
        for topic, data, key in records
    )
    await session.commit()
    if not records:
        return
    topics = sorted({t for t, _d, _k in records})
    if not await broker_answers(res):
        log.warning(
            "the broker is away; the outbox relay publishes a staff action once it is back",
            extra={"topics": topics},
        )
        return
    try:
        await _publish_waiting(res, session, OutboxRecord.key.in_({k for _t, _d, k in records}))
    except Exception as exc:
        log.warning(
            "the broker has not confirmed a staff action; the outbox relay publishes it later",
            extra={"topics": topics, "error": type(exc).__name__},
        )


async def relay(res: Resources, session: AsyncSession) -> None:
    """Publish the outbox records a request could not (older than RELAY_AFTER), oldest
    first, while the broker answers (each attempt with it away had left one more copy of the
    oldest record in the producer's buffer); raises what the broker raised."""
    if await broker_answers(res):
        await _publish_waiting(res, session, OutboxRecord.created_at < res.clock() - RELAY_AFTER)


BROKER_CHECKED = "broker_checked"
BROKER_CHECK_S = 5.0
"""How long one check of the broker serves (every console polls it each 10 s; every staff
action and relay pass asks)."""


async def broker_answers(res: Resources) -> bool:
    """Whether the message broker answered a ping within the last BROKER_CHECK_S; at most one
    ping per BROKER_CHECK_S per replica (no broker at all, a test's: yes)."""
    checked = res.extra.get(BROKER_CHECKED)
    now = time.monotonic()
    if isinstance(checked, tuple) and now - checked[0] < BROKER_CHECK_S:
        return bool(checked[1])
    try:
        up = res.broker is None or bool(await res.broker.ping(timeout=2.0))
    except Exception:  # not connected yet, or gone
        up = False
    res.extra[BROKER_CHECKED] = (now, up)
    return up


async def _publish_waiting(
    res: Resources, session: AsyncSession, which: ColumnElement[bool]
) -> None:
    """Publish the matching records in the order they were saved, removing each batch once
    the broker acknowledged it; the first failure to publish stops the pass (what was
    acknowledged is removed) and is raised. A record that cannot be read back (its type or
    data no longer valid) is logged at ERROR and left in place, passed over rather than
    holding up every record after it; the gauge and its alert keep it in sight."""
    after = 0
    while True:
        rows = (
            (
                await session.execute(
                    select(OutboxRecord)
                    .where(which, OutboxRecord.id > after)
                    .order_by(OutboxRecord.id)
                    .limit(RELAY_BATCH)
                )
            )
            .scalars()
            .all()
        )
        done: list[int] = []
        try:
            for row in rows:
                after = row.id
                try:
                    data = EVENT_TYPES[row.type].model_validate_json(row.data)
                except (KeyError, ValueError) as exc:
                    log.error(
                        "an outbox record cannot be read back; passed over",
                        extra={
                            "outbox_id": row.id,
                            "type": row.type,
                            "topic": row.topic,
                            "error": type(exc).__name__,
                            REPEATING: f"outbox-{row.id}",
                        },
                    )
                    continue
                await res.publisher(row.topic, data, key=row.key, event_id=row.event_id)
                done.append(row.id)
        finally:
            if done:
                await session.execute(delete(OutboxRecord).where(OutboxRecord.id.in_(done)))
            await session.commit()
        if len(rows) < RELAY_BATCH:
            return
