"""Outbound webhooks: match public events to subscriptions, then deliver them, signed.

The matcher is one more consumer of refdesk.public (its own group): each event is written
to the delivery log of every subscription that wants it, then the offset is committed. The
worker sends due deliveries and retries failures with capped exponential backoff (full
jitter); after the attempt limit a delivery is dead: it stays in the log, and a replay
re-queues it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher import deliveries
from services.publisher.egress import Egress, Refused, failure_class, status_class
from services.publisher.metrics import (
    PUBLIC_SKIPPED,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DEAD,
    WEBHOOK_PENDING,
)
from services.publisher.settings import PublisherSettings
from services.publisher.signing import signed_headers
from services.publisher.subscriptions import matches
from services.publisher.tables import Subscription
from shared.clock import utcnow
from shared.consumer import describe
from shared.events import AnyEvent
from shared.topics import PUBLIC

log = logging.getLogger(__name__)


async def match_event(
    session: AsyncSession, *, event: AnyEvent, payload: str, now: datetime
) -> int:
    """Queue an event for every subscription that wants it; how many were newly queued."""
    subs = (await session.execute(select(Subscription).where(Subscription.active))).scalars()
    queued = 0
    for sub in subs:
        if matches(sub, event.type, event.data):
            queued += await deliveries.enqueue(
                session, sub=sub, event=event, payload=payload, now=now
            )
    return queued


@dataclass
class WebhookWorker:
    """Sends due deliveries and records each attempt."""

    settings: PublisherSettings
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    egress: Egress
    clock: Callable[[], datetime] = utcnow
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff with full jitter, capped (attempts counts those already made)."""
        s = self.settings
        ceiling = min(s.webhook_backoff_max_s, s.webhook_backoff_base_s * 2 ** max(0, attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def attempt(self, key: str) -> None:
        """Claim one due delivery, send it, record the outcome."""
        async with self.sessions() as session:
            claimed = await deliveries.claim(
                session, key, now=self.clock(), lease_s=self.settings.webhook_lease_s
            )
        if claimed is None:
            return
        status: int | None = None
        try:
            status = await self.send(claimed)
            if 200 <= status < 300:
                await self._record(key, status=status, error=None, state=deliveries.DELIVERED)
                WEBHOOK_ATTEMPTS.labels(outcome="delivered").inc()
                return
            error = status_class(status)
        except (httpx.HTTPError, Refused) as exc:
            # the log shows admins a short class, never the error's or the receiver's text
            error = failure_class(exc)
        await self._failed(claimed, status=status, error=error)

    async def send(self, claimed: deliveries.Claimed) -> int:
        """POST one delivery to the address checked just now; its status (body left unread)."""
        target = await self.egress.target(claimed.url)
        headers = signed_headers(
            secret=claimed.secret, msg_id=claimed.id, payload=claimed.payload, now=self.clock()
        )
        headers["Host"] = target.host
        extensions = {"sni_hostname": target.sni} if target.sni else {}
        async with self.http.stream(
            "POST",
            target.url,
            content=claimed.payload.encode(),
            headers=headers,
            extensions=extensions,
        ) as response:
            return response.status_code

    async def _failed(self, claimed: deliveries.Claimed, *, status: int | None, error: str) -> None:
        attempts = claimed.attempts + 1
        if attempts >= self.settings.webhook_max_attempts:
            await self._record(claimed.id, status=status, error=error, state=deliveries.DEAD)
            WEBHOOK_ATTEMPTS.labels(outcome="dead").inc()
            WEBHOOK_DEAD.inc()
            log.warning(
                "webhook delivery dead",
                extra={"delivery": claimed.id, "attempts": attempts, "status": status},
            )
            return
        retry_at = self.clock() + timedelta(seconds=self.backoff_s(attempts))
        await self._record(
            claimed.id,
            status=status,
            error=error,
            state=deliveries.PENDING,
            next_attempt_at=retry_at,
        )
        WEBHOOK_ATTEMPTS.labels(outcome="retry").inc()
        log.info(
            "webhook delivery failed; retry scheduled",
            extra={"delivery": claimed.id, "attempts": attempts, "status": status},
        )

    async def _record(
        self,
        key: str,
        *,
        status: int | None,
        error: str | None,
        state: str,
        next_attempt_at: datetime | None = None,
    ) -> None:
        async with self.sessions() as session:
            await deliveries.record(
                session,
                key,
                now=self.clock(),
                status=status,
                error=error,
                state=state,
                next_attempt_at=next_attempt_at,
            )

    async def drain(self) -> int:
        """Attempt every due delivery once (a few at a time); how many were due."""
        async with self.sessions() as session:
            keys = await deliveries.due(session, now=self.clock())
            WEBHOOK_PENDING.set(await deliveries.pending_count(session))
        gate = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def one(key: str) -> None:
            async with gate:
                await self.attempt(key)

        await asyncio.gather(*(one(k) for k in keys))
        return len(keys)

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until told to stop."""
        while not stopping.is_set():
            try:
                worked = await self.drain()
            except Exception as exc:  # the database may be briefly unavailable; keep going
                log.warning("webhook pass failed", extra={"error": type(exc).__name__})
                worked = 0
            if not worked:
                self.wake.clear()
                try:
                    await asyncio.wait_for(
                        self.wake.wait(), timeout=self.settings.webhook_poll_interval_s
                    )
                except TimeoutError:
                    pass


def register(broker: KafkaBroker, worker: WebhookWorker) -> None:
    """Subscribe the matcher to refdesk.public; call before the broker starts."""

    @broker.subscriber(
        PUBLIC.name,
        group_id=worker.settings.webhook_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_public(msg: KafkaMessage) -> None:
        # raw bytes (msg.body): a `body: bytes` parameter would fail outside this handler on a
        # JSON record without our content type, and NACK_ON_ERROR would redeliver it forever.
        try:
            event = AnyEvent.model_validate_json(msg.body)
        except ValidationError as exc:
            # refdesk.public has no DLQ: count it and move on rather than stall every webhook
            PUBLIC_SKIPPED.inc()
            log.warning("unreadable event on refdesk.public", extra={"reason": describe(exc)})
            return
        async with worker.sessions() as session:
            queued = await match_event(
                session, event=event, payload=msg.body.decode(), now=worker.clock()
            )
            await session.commit()
        if queued:
            worker.wake.set()
