"""Why the presence tally's transaction stays open until the broker acknowledged its counts.

Given a count whose publish fails, then the redelivered change publishes it (the tally was
rolled back, not committed without it). Given two publisher replicas sharing the tally on
PostgreSQL, each applying a change to one department while the other's count is still on its
way to the broker, then the department's counts land on refdesk.public in the order of their
`changed_at` (the second replica waits for the first one's acknowledgement and commit: the
locks that are held across the ack, docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.publisher.ordering import Item
from services.publisher.presence import apply_presence
from services.publisher.projection import SOURCE
from services.publisher.projector import Projector
from shared.consumer import Guard
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PresenceChanged, StaffStatus, new_event
from shared.topics import PRESENCE, PUBLIC
from tests.fakes import FakeBroker

T = datetime(2026, 1, 5, 15, tzinfo=UTC)


def change(staff: str, minute: int, status: StaffStatus = StaffStatus.ONLINE) -> Item:
    data = PresenceChanged(
        staff_id=staff,
        status=status,
        departments=["reference"],
        changed_at=T + timedelta(minutes=minute),
    )
    event = AnyEvent.model_validate_json(new_event(data, source="unit").model_dump_json())
    return Item(PRESENCE.name, 0, minute, event, data)


def projector(engine: AsyncEngine, broker: Any) -> Projector:
    return Projector(
        broker=broker,
        sessions=session_factory(engine),
        guard=Guard(broker, group="test-projector", source=SOURCE, retry_pause_s=0),
        hash_key="k" * 40,
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    yield engine
    await engine.dispose()


async def test_a_count_whose_publish_failed_is_published_when_the_change_comes_again(
    engine: AsyncEngine,
) -> None:
    broker = FakeBroker(down=True)
    ana = [change("ana", 0)]
    with pytest.raises(ConnectionError):
        await projector(engine, broker).project(ana)
    broker.down = False
    await projector(engine, broker).project(ana)  # the batch, redelivered
    [count] = broker.on(PUBLIC.name)
    assert (count["data"]["department"], count["data"]["online"]) == ("reference", 1)


@dataclass
class Landing:
    """A broker whose records land on refdesk.public (`topic`) when it acknowledges them;
    with `release`, not before that is set."""

    topic: list[dict[str, Any]]
    release: asyncio.Event | None = None
    handed: asyncio.Event = field(default_factory=asyncio.Event)
    _landing: set[asyncio.Task[None]] = field(default_factory=set)

    async def publish(
        self, body: bytes, *, topic: str, key: bytes, headers: dict[str, str], no_confirm: bool
    ) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def land() -> None:
            if self.release is not None:
                await self.release.wait()
            self.topic.append(json.loads(body))
            ack.set_result(None)

        task = asyncio.create_task(land())
        self._landing.add(task)
        task.add_done_callback(self._landing.discard)
        self.handed.set()
        return ack


@pytest.mark.parametrize("department", ["new", "known"])
async def test_two_replicas_publish_a_departments_counts_in_the_order_of_their_times(
    database_url: str, department: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share the tally on PostgreSQL only")
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        await migrate(engines[0], "publisher")
        if department == "known":  # the department has had a count before
            async with session_factory(engines[0])() as session:
                await apply_presence(session, change("cy", -5, StaffStatus.OFFLINE).data)  # type: ignore[arg-type]
                await session.commit()
        topic: list[dict[str, Any]] = []
        release = asyncio.Event()
        slow, quick = Landing(topic, release), Landing(topic)
        first = asyncio.create_task(projector(engines[0], slow).project([change("ana", 0)]))
        await asyncio.wait_for(slow.handed.wait(), 10)
        second = asyncio.create_task(projector(engines[1], quick).project([change("bo", 1)]))
        # the second replica has every chance to overtake the first, whose count is not yet
        # acknowledged; it may not
        await asyncio.wait({second}, timeout=1)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 30)
    finally:
        for engine in engines:
            await engine.dispose()
    counts = [(e["data"]["online"], e["data"]["changed_at"]) for e in topic]
    assert [online for online, _at in counts] == [1, 2]
    times = [datetime.fromisoformat(at) for _online, at in counts]
    assert times == sorted(times) and len(set(times)) == 2
