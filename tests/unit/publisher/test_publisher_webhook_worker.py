"""The webhook worker: a receiver that hangs holds only its own subscription's slots.

Given one subscription whose receiver does not answer and one whose receiver answers at once,
each with a backlog larger than any batch, the healthy one's deliveries all arrive while the
hanging one's attempts are still open, and the hanging one never has more attempts in flight
than its limit; once it answers, its backlog is delivered too (at least once, nothing lost).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from services.publisher import deliveries, subscriptions
from services.publisher.egress import Egress
from services.publisher.settings import PublisherSettings
from services.publisher.tables import Delivery
from services.publisher.webhooks import WebhookWorker
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PublicDepartmentPresence, new_event
from tests.eventually import eventually
from tests.fakes import secret_like

PUBLIC = "93.184.216.34"
T = datetime(2025, 12, 1, 15, tzinfo=UTC)
BACKLOG = 60  # more than one look at the due rows used to take (50)


@dataclass
class Receivers:
    """hang.example.edu waits until released; fast.example.edu answers 204 at once."""

    released: asyncio.Event = field(default_factory=asyncio.Event)
    hanging_now: int = 0
    hanging_most: int = 0
    delivered: dict[str, set[str]] = field(default_factory=dict)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        if host == "hang.example.edu":
            self.hanging_now += 1
            self.hanging_most = max(self.hanging_most, self.hanging_now)
            try:
                await self.released.wait()
            finally:
                self.hanging_now -= 1
        self.delivered.setdefault(host, set()).add(request.headers["webhook-id"])
        return httpx.Response(204)


async def resolver(_host: str, _port: int) -> list[str]:
    return [PUBLIC]


@pytest.fixture
async def setup(database_url: str) -> AsyncIterator[tuple[WebhookWorker, Receivers]]:
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    receivers = Receivers()
    settings = PublisherSettings(
        env="production",
        public_hash_key=secret_like("hash"),
        admin_token=secret_like("admin"),
        webhook_concurrency=16,
        webhook_subscription_concurrency=3,
        webhook_poll_interval_s=0.05,
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(receivers.handle))
    worker = WebhookWorker(
        settings=settings,
        sessions=session_factory(engine),
        http=http,
        egress=Egress(resolver=resolver),
        clock=lambda: T,
    )
    yield worker, receivers
    receivers.released.set()
    await http.aclose()
    await engine.dispose()


async def backlog(worker: WebhookWorker, host: str) -> None:
    """A subscription to https://<host>/in with BACKLOG due deliveries."""
    async with worker.sessions() as session:
        sub = await subscriptions.create(
            session=session, url=f"https://{host}/in", now=T, egress=Egress(resolver=resolver)
        )
        for n in range(BACKLOG):
            data = PublicDepartmentPresence(department="reference", online=n, changed_at=T)
            payload = new_event(data, source="unit").model_dump_json()
            event = AnyEvent.model_validate_json(payload)
            await deliveries.enqueue(session, sub=sub, event=event, payload=payload, now=T)
        await session.commit()


async def states(worker: WebhookWorker) -> dict[str, int]:
    async with worker.sessions() as session:
        rows = (await session.execute(select(Delivery.state))).scalars().all()
    return {state: rows.count(state) for state in set(rows)}


async def test_a_hanging_receiver_does_not_hold_up_another_subscription(
    setup: tuple[WebhookWorker, Receivers],
) -> None:
    worker, receivers = setup
    await backlog(worker, "hang.example.edu")  # older: first in line
    await backlog(worker, "fast.example.edu")
    stopping = asyncio.Event()
    running = asyncio.create_task(worker.run(stopping))
    try:
        await eventually(
            lambda: len(receivers.delivered.get("fast.example.edu", ())) == BACKLOG,
            "every delivery to the healthy receiver while the other hangs",
            timeout=30,
        )
        await eventually(lambda: receivers.hanging_now == 3, "three attempts at the hang")
        assert receivers.hanging_most == 3  # its own slots, no more
        assert "hang.example.edu" not in receivers.delivered

        receivers.released.set()
        await eventually(
            lambda: len(receivers.delivered.get("hang.example.edu", ())) == BACKLOG,
            "the hanging receiver's backlog once it answers",
            timeout=30,
        )
        assert receivers.hanging_most == 3

        async def all_delivered() -> bool:  # each outcome is recorded just after its answer
            return await states(worker) == {deliveries.DELIVERED: 2 * BACKLOG}

        await eventually(all_delivered, "every delivery recorded as delivered", timeout=30)
    finally:
        stopping.set()
        worker.wake.set()
        await asyncio.wait_for(running, 30)


@dataclass
class Counting:
    """A receiver that answers 204 after a short wait, and counts who is in flight."""

    failing_first: bool = False
    now: Counter[str] = field(default_factory=Counter)
    most: Counter[str] = field(default_factory=Counter)
    most_in_all: int = 0
    delivered: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        self.now[host] += 1
        self.most[host] = max(self.most[host], self.now[host])
        self.most_in_all = max(self.most_in_all, self.now.total())
        try:
            await asyncio.sleep(0.002)
        finally:
            self.now[host] -= 1
        key = request.headers["webhook-id"]
        if self.failing_first and key not in self.failed:
            self.failed.add(key)
            return httpx.Response(503)
        self.delivered.add(key)
        return httpx.Response(204)


@pytest.fixture
async def quiet(database_url: str) -> AsyncIterator[tuple[WebhookWorker, Counting, list[int]]]:
    """A worker whose poll interval is long (it looks only when told or when it runs out), a
    counting receiver, and how many due rows each look at the database returned."""
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    receiver = Counting()
    settings = PublisherSettings(
        env="production",
        public_hash_key=secret_like("hash"),
        admin_token=secret_like("admin"),
        webhook_concurrency=16,
        webhook_subscription_concurrency=3,
        webhook_poll_interval_s=3600,
        webhook_backoff_base_s=0.01,
        webhook_backoff_max_s=0.02,
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver.handle))
    worker = WebhookWorker(
        settings=settings,
        sessions=session_factory(engine),
        http=http,
        egress=Egress(resolver=resolver),
    )
    looks: list[int] = []
    due = deliveries.due

    async def counted(session: Any, **kwargs: Any) -> list[tuple[str, str]]:
        rows = await due(session, **kwargs)
        looks.append(len(rows))
        return rows

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deliveries, "due", counted)
        yield worker, receiver, looks
    await http.aclose()
    await engine.dispose()


async def running(worker: WebhookWorker) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stopping = asyncio.Event()
    return stopping, asyncio.create_task(worker.run(stopping))


async def stop(worker: WebhookWorker, stopping: asyncio.Event, task: asyncio.Task[None]) -> None:
    stopping.set()
    worker.wake.set()
    await asyncio.wait_for(task, 30)


async def test_the_worker_fetches_due_deliveries_in_batches_not_after_each_one(
    quiet: tuple[WebhookWorker, Counting, list[int]],
) -> None:
    """Each attempt that ends starts the next fetched row: 60 deliveries to one receiver take a
    handful of looks at the database (each fetching four rounds of its three slots), where the
    worker used to look after every single delivery."""
    worker, receiver, looks = quiet
    await backlog(worker, "fast.example.edu")
    stopping, task = await running(worker)
    try:
        await eventually(lambda: len(receiver.delivered) == BACKLOG, "the whole backlog")
    finally:
        await stop(worker, stopping, task)
    assert receiver.most["fast.example.edu"] <= 3
    assert sum(looks) >= BACKLOG
    assert len(looks) <= BACKLOG // 8, looks


async def test_new_work_and_due_retries_wake_the_worker_between_polls(
    quiet: tuple[WebhookWorker, Counting, list[int]],
) -> None:
    """With a poll interval of an hour, deliveries queued after it went idle go out when the
    matcher says so, and a failed attempt is retried when its backoff ends."""
    worker, receiver, looks = quiet
    receiver.failing_first = True
    stopping, task = await running(worker)
    try:
        await eventually(lambda: len(looks) == 1, "the first look, at start")
        await backlog(worker, "late.example.edu")
        worker.notify()
        await eventually(lambda: len(receiver.delivered) == BACKLOG, "delivered after retries")
    finally:
        await stop(worker, stopping, task)
    assert receiver.failed == receiver.delivered


async def test_many_subscriptions_keep_both_limits(
    quiet: tuple[WebhookWorker, Counting, list[int]],
) -> None:
    worker, receiver, _looks = quiet
    hosts = [f"r{n}.example.edu" for n in range(8)]
    for host in hosts:
        await backlog(worker, host)
    stopping, task = await running(worker)
    try:
        await eventually(
            lambda: len(receiver.delivered) == BACKLOG * len(hosts), "every backlog", timeout=60
        )
    finally:
        await stop(worker, stopping, task)
    assert max(receiver.most.values()) <= 3
    assert receiver.most_in_all <= 16


async def test_a_retry_recorded_while_the_worker_looks_is_not_left_for_the_next_poll(
    quiet: tuple[WebhookWorker, Counting, list[int]],
) -> None:
    """Three deliveries fail at once and their retries take a while to record: the worker,
    woken when the first is recorded, looks while the other two are still leased. It used to
    have lowered its next look for all three before recording them, spend that look on the
    first, and leave the other two for the poll an hour later (the fast tier saw this once
    under load, as a 60 s wait for "delivered after retries")."""
    worker, receiver, _looks = quiet
    receiver.failing_first = True
    async with worker.sessions() as session:
        sub = await subscriptions.create(
            session=session,
            url="https://slow.example.edu/in",
            now=T,
            egress=Egress(resolver=resolver),
        )
        for n in range(3):
            data = PublicDepartmentPresence(department="reference", online=n, changed_at=T)
            payload = new_event(data, source="unit").model_dump_json()
            event = AnyEvent.model_validate_json(payload)
            await deliveries.enqueue(session, sub=sub, event=event, payload=payload, now=T)
        await session.commit()
    record = worker._record
    pending = 0

    async def slowly(key: str, **kwargs: Any) -> None:
        nonlocal pending
        if kwargs["state"] == deliveries.PENDING:
            pending += 1
            await asyncio.sleep(0.1 * pending)  # the three end 0.1 s apart
        await record(key, **kwargs)

    worker._record = slowly  # type: ignore[method-assign]
    stopping, task = await running(worker)
    try:
        await eventually(lambda: len(receiver.delivered) == 3, "each retried once", timeout=10)
    finally:
        await stop(worker, stopping, task)
    assert receiver.failed == receiver.delivered


async def test_finished_deliveries_go_once_the_public_stream_no_longer_keeps_their_events(
    setup: tuple[WebhookWorker, Receivers],
) -> None:
    """A row per event and subscription had been kept for good (a privacy review: per-
    conversation crisis routes with their times, linkable to a chat platform's ids)."""
    worker, _ = setup
    await backlog(worker, "campus.example.edu")
    async with worker.sessions() as session:
        ids = list((await session.execute(select(Delivery.id).order_by(Delivery.id))).scalars())
        await session.execute(update(Delivery).values(event_time=T))  # the events' own times
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids[:5])).values(state=deliveries.DELIVERED)
        )
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids[5:7])).values(state=deliveries.DEAD)
        )
        await session.commit()
    keep = deliveries.FINISHED_KEEP_DAYS
    early = dataclasses.replace(worker, clock=lambda: T + timedelta(days=keep, seconds=-1))
    assert await early.purge() == 0
    late = dataclasses.replace(worker, clock=lambda: T + timedelta(days=keep, seconds=1))
    assert await late.purge() == 7
    assert await states(worker) == {deliveries.PENDING: BACKLOG - 7}  # never one still owed
