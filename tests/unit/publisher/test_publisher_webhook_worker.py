"""The webhook worker: a receiver that hangs holds only its own subscription's slots.

Given one subscription whose receiver does not answer and one whose receiver answers at once,
each with a backlog larger than any batch, the healthy one's deliveries all arrive while the
hanging one's attempts are still open, and the hanging one never has more attempts in flight
than its limit; once it answers, its backlog is delivered too (at least once, nothing lost).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from services.publisher import deliveries, subscriptions
from services.publisher.egress import Egress
from services.publisher.settings import PublisherSettings
from services.publisher.tables import Delivery
from services.publisher.webhooks import WebhookWorker
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PublicDepartmentPresence, new_event
from tests.eventually import eventually

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
        public_hash_key="k" * 40,
        admin_token="a" * 40,
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
