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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
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
from services.publisher.subscriptions import matches
from services.publisher.tables import Subscription
from shared.clock import utcnow, woken
from shared.consumer import batch_subscriber, describe
from shared.events import AnyEvent
from shared.logs import REPEATING
from shared.topics import PUBLIC
from shared.webhooks import signed_headers

log = logging.getLogger(__name__)


async def active_subscriptions(session: AsyncSession) -> list[Subscription]:
    """The subscriptions that receive events now."""
    return list((await session.execute(select(Subscription).where(Subscription.active))).scalars())


async def match_event(
    session: AsyncSession,
    *,
    subs: list[Subscription],
    event: AnyEvent,
    payload: str,
    now: datetime,
) -> int:
    """Queue an event for every subscription that wants it; how many were newly queued."""
    queued = 0
    for sub in subs:
        if matches(sub, event.type, event.data):
            queued += await deliveries.enqueue(
                session, sub=sub, event=event, payload=payload, now=now
            )
    return queued


USER_AGENT = "refdesk-publisher/1"
FETCH_ROUNDS = 4
"""How many rounds of deliveries one look at the database fetches: up to this many times each
subscription's limit of its own due rows, so a slot that frees starts the next fetched row
without a query."""


PURGE_INTERVAL_S = 3600.0
"""How often the worker deletes the finished deliveries of events older than the public
stream's retention (`deliveries.purge_finished`)."""


@dataclass
class WebhookWorker:
    """Sends due deliveries and records each attempt; subscriptions do not wait for each other.

    It looks at the database for due deliveries in batches (`look`): when new ones are queued
    (`notify`: the matcher, a replay), when a retry falls due, once per poll interval, and when
    a slot is free and what it fetched is used up while more may be due. Between looks, each
    attempt that ends starts the next fetched delivery its subscription may send.
    """

    settings: PublisherSettings
    sessions: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    egress: Egress
    clock: Callable[[], datetime] = utcnow
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    """Set to have the worker go round at once (a slot freed, new work, stopping)."""
    _in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False)
    """Delivery id -> its attempt."""
    _busy: Counter[str] = field(default_factory=Counter, init=False)
    """Subscription id -> its deliveries in flight."""
    _fetched: list[tuple[str, str]] = field(default_factory=list, init=False)
    """(delivery id, subscription id) due at the last look and not started yet, oldest first."""
    _capped: set[str] = field(default_factory=set, init=False)
    """Subscriptions the last look fetched as many rows of as it takes: more may be due."""
    _truncated: bool = field(default=False, init=False)
    """Whether the last look fetched as many rows as it takes in all."""
    _new_work: bool = field(default=True, init=False)
    _next_look: float = field(default=0.0, init=False)
    """Event loop time of the next look whatever happens (the poll interval, a retry due)."""
    _next_purge: float = field(default=0.0, init=False)
    """Event loop time of the next purge of old finished deliveries (hourly)."""

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
            secrets=claimed.secrets,
            msg_id=claimed.id,
            payload=claimed.payload,
            now=self.clock(),
            user_agent=USER_AGENT,
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
        wait_s = self.backoff_s(attempts)
        retry_at = self.clock() + timedelta(seconds=wait_s)
        await self._record(
            claimed.id,
            status=status,
            error=error,
            state=deliveries.PENDING,
            next_attempt_at=retry_at,
        )
        # look for it when it falls due, not only at the next poll; only once it is recorded
        # as pending: a look made before that (another attempt's end wakes the worker) finds it
        # still leased, and would spend this earlier look on nothing until the next poll
        self._next_look = min(self._next_look, asyncio.get_running_loop().time() + wait_s)
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

    def notify(self) -> None:
        """New deliveries were queued (or re-queued): look at the database for them now."""
        self._new_work = True
        self.wake.set()

    async def look(self) -> None:
        """Fetch the due deliveries, oldest first: up to FETCH_ROUNDS times each subscription's
        limit of its own, so one receiver's backlog never hides the others' due rows, and in
        all enough for each subscription that can be at its limit plus FETCH_ROUNDS rounds of
        every slot."""
        s = self.settings
        per_subscription = FETCH_ROUNDS * s.webhook_subscription_concurrency
        at_their_limit = -(-s.webhook_concurrency // s.webhook_subscription_concurrency)
        limit = FETCH_ROUNDS * s.webhook_concurrency + per_subscription * at_their_limit
        async with self.sessions() as session:
            rows = await deliveries.due(
                session,
                now=self.clock(),
                per_subscription=per_subscription,
                limit=limit + len(self._in_flight),  # rows in flight may still look due
            )
            WEBHOOK_PENDING.set(await deliveries.pending_count(session))
        self._fetched = [(key, sub) for key, sub in rows if key not in self._in_flight]
        counts = Counter(sub for _key, sub in rows)
        self._capped = {sub for sub, n in counts.items() if n >= per_subscription}
        self._truncated = len(rows) >= limit + len(self._in_flight)

    def start_fetched(self) -> int:
        """Start an attempt of each fetched delivery the limits allow; how many started.

        A subscription has at most `webhook_subscription_concurrency` deliveries in flight and
        the worker `webhook_concurrency` in all. Nothing waits for an attempt to end: each frees
        its slot and wakes the worker when it does, so a receiver that answers slowly holds
        only its own slots while the others' deliveries keep flowing.
        """
        s = self.settings
        started = 0
        waiting: list[tuple[str, str]] = []
        for key, subscription_id in self._fetched:
            if key in self._in_flight:
                continue
            if (
                len(self._in_flight) >= s.webhook_concurrency
                or self._busy[subscription_id] >= s.webhook_subscription_concurrency
            ):
                waiting.append((key, subscription_id))
                continue
            self._busy[subscription_id] += 1
            self._in_flight[key] = asyncio.create_task(self._attempt(key, subscription_id))
            started += 1
        self._fetched = waiting
        return started

    async def start_due(self) -> int:
        """Look at the database and start what is due (within the limits); how many started."""
        await self.look()
        return self.start_fetched()

    def _used_up(self) -> bool:
        """A slot is free, nothing fetched can take it, and the last look may have left due
        rows behind (it took all it takes, or all it takes of a subscription that has a free
        slot now and no fetched row left)."""
        s = self.settings
        if len(self._in_flight) >= s.webhook_concurrency:
            return False
        limit = s.webhook_subscription_concurrency
        fetched = {sub for _key, sub in self._fetched}
        if any(self._busy[sub] < limit for sub in fetched):
            return False
        return self._truncated or any(
            sub not in fetched and self._busy[sub] < limit for sub in self._capped
        )

    async def _attempt(self, key: str, subscription_id: str) -> None:
        try:
            await self.attempt(key)
        except Exception as exc:  # the database may be briefly unavailable; the lease expires
            # and the delivery is attempted again, so nothing is lost (at least once)
            log.warning("webhook attempt failed", extra={"error": type(exc).__name__})
        finally:
            del self._in_flight[key]
            self._busy[subscription_id] -= 1
            if not self._busy[subscription_id]:
                del self._busy[subscription_id]
            self.wake.set()  # a slot is free

    async def purge(self) -> int:
        """Delete the finished deliveries of events the public stream no longer keeps."""
        async with self.sessions() as session:
            purged = await deliveries.purge_finished(session, now=self.clock())
            await session.commit()
        if purged:
            log.info("old finished deliveries deleted", extra={"count": purged})
        return purged

    async def drain(self) -> int:
        """Start what is due (within the limits) and wait for those attempts; how many."""
        started = await self.start_due()
        await asyncio.gather(*self._in_flight.values())
        return started

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until told to stop, then let the attempts in flight finish."""
        loop = asyncio.get_running_loop()
        try:
            while not stopping.is_set():
                self.wake.clear()  # before looking, so a wake-up while looking is kept
                try:
                    if self._new_work or loop.time() >= self._next_look or self._used_up():
                        self._new_work = False
                        self._next_look = loop.time() + self.settings.webhook_poll_interval_s
                        await self.look()
                    self.start_fetched()
                    if loop.time() >= self._next_purge:
                        self._next_purge = loop.time() + PURGE_INTERVAL_S
                        await self.purge()
                except Exception as exc:  # the database may be briefly unavailable; keep going
                    log.warning(
                        "webhook pass failed",
                        extra={"error": type(exc).__name__, REPEATING: True},
                    )
                await woken(self.wake, max(0.0, self._next_look - loop.time()))
            if self._in_flight:
                await asyncio.wait(list(self._in_flight.values()))
        finally:
            for task in list(self._in_flight.values()):
                task.cancel()  # its delivery stays leased and is attempted again later


def readable(body: bytes) -> tuple[AnyEvent, str] | None:
    """A public event and its payload, or None (counted and logged) when it does not parse:
    refdesk.public has no DLQ, and one unreadable record must not stall every webhook."""
    try:
        return AnyEvent.model_validate_json(body), body.decode()
    except (ValidationError, UnicodeDecodeError) as exc:
        PUBLIC_SKIPPED.inc()
        reason = describe(exc) if isinstance(exc, ValidationError) else "not UTF-8"
        log.warning("unreadable event on refdesk.public", extra={"reason": reason})
        return None


def register(broker: KafkaBroker, worker: WebhookWorker) -> None:
    """Subscribe the matcher to refdesk.public; call before the broker starts.

    A poll batch at a time: the active subscriptions are read once, every event of the batch
    is matched against them and queued in one transaction, then the batch's offsets are
    committed. No patron waits on a webhook, so the broker may hold a fetch until 64 KiB or
    250 ms have gathered.
    """

    @batch_subscriber(
        broker,
        PUBLIC.name,
        group_id=worker.settings.webhook_group,
        max_records=500,
        wait_ms=200,
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=250,
    )
    async def on_public(msg: KafkaMessage) -> None:
        raw: Any = msg.raw_message
        records = raw if isinstance(raw, tuple) else (raw,)
        events = [found for record in records if (found := readable(record.value or b""))]
        if not events:
            return
        queued = 0
        async with worker.sessions() as session:
            subs = await active_subscriptions(session)
            now = worker.clock()
            for event, payload in events:
                queued += await match_event(
                    session, subs=subs, event=event, payload=payload, now=now
                )
            await session.commit()
        if queued:
            worker.notify()
