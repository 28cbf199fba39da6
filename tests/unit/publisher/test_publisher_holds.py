"""The projector's holds through fakes of its ports: given poll batches as a consumer of three
partitions per topic hands them over, then these public events, in this order, and these
offsets to commit. A decision held for its message costs its own partition, and the partitions
its conversation's later events are in; every other conversation's events go out with the
batch they were read in, and the handler never waits for a hold to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from services.publisher.projection import SOURCE, conversation_hash
from services.publisher.projector import Pauses, Projector
from shared.consumer import Guard
from shared.db import create_engine, migrate, session_factory
from shared.events import (
    Action,
    Channel,
    InteractionReceived,
    Patron,
    Priority,
    RoutingDecided,
    new_event,
)
from shared.kafka import partition_of
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING
from tests.eventually import eventually
from tests.fakes import FakeBroker

HASH_KEY = "k" * 40
T = datetime(2026, 1, 5, 15, tzinfo=UTC)
PARTITIONS = [0, 1, 2]


def home(partition: int, name: str) -> str:
    """A conversation id whose events go to this partition of each topic."""
    n = 0
    while partition_of(f"{name}-{n}".encode(), PARTITIONS, PARTITIONS) != partition:
        n += 1
    return f"{name}-{n}"


@dataclass
class FakeMessage:
    raw_message: tuple[ConsumerRecord[Any, Any], ...]
    consumer: Log


@dataclass
class Log:
    """Three partitions of each raw topic as written, and one consumer of them all: where it
    reads next (what a commit now would store) and which partitions it has paused."""

    records: dict[TopicPartition, list[bytes]] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    paused: set[TopicPartition] = field(default_factory=set)

    def write(self, topic: str, data: BaseModel, *, key: str, second: float) -> None:
        event = new_event(data, source="unit").model_copy(
            update={"time": T + timedelta(seconds=second)}
        )
        tp = TopicPartition(topic, partition_of(key.encode(), PARTITIONS, PARTITIONS))
        self.records.setdefault(tp, []).append(event.model_dump_json().encode())

    def poll(self, *fetched: TopicPartition) -> FakeMessage:
        """A poll batch: the records of these partitions (those whose fetch landed) from where
        the consumer reads next, paused ones left out."""
        batch: list[ConsumerRecord[Any, Any]] = []
        for tp in fetched:
            if tp in self.paused:
                continue
            start = self.positions.get(tp, 0)
            for offset, body in enumerate(self.records.get(tp, [])[start:], start):
                batch.append(
                    ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", body, None, 1, 1, [])
                )
            self.positions[tp] = len(self.records.get(tp, []))
        return FakeMessage(tuple(batch), self)

    # what the projector asks of aiokafka's consumer
    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(t, p) for t in (INTERACTIONS.name, ROUTING.name) for p in PARTITIONS}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(PARTITIONS)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp, 0)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.records.get(tp, [])) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)


def received(cid: str, n: int = 1) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=f"i-{cid}-{n}",
        conversation_id=cid,
        channel=Channel.CHAT,
        provider="chat",
        provider_message_id=f"m-{cid}-{n}",
        patron=Patron(),
        text="hours?",
        received_at=T,
    )


def routed(cid: str, n: int = 1) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d-{cid}-{n}",
        interaction_id=f"i-{cid}-{n}",
        conversation_id=cid,
        channel=Channel.CHAT,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.NORMAL,
        overnight=False,
        policy_version="test",
        decided_at=T,
    )


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


@pytest.fixture
async def projector(tmp_path: Path) -> AsyncIterator[Projector]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'publisher.db'}")
    await migrate(engine, "publisher")
    broker: Any = FakeBroker()
    yield Projector(
        broker=broker,
        sessions=session_factory(engine),
        guard=Guard(broker, group="test-projector", source=SOURCE),
        hash_key=HASH_KEY,
        pauses=Pauses(pause_s=3600),  # a hold ends only when a test says so
    )
    await engine.dispose()


def public(projector: Projector, *cids: str) -> dict[str, list[str]]:
    """Conversation -> the kinds of its public events, in the order published."""
    names = {conversation_hash(c, key=HASH_KEY): c for c in cids}
    broker: Any = projector.broker
    events = broker.on(PUBLIC.name)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "an event published twice"
    order: dict[str, list[str]] = {c: [] for c in cids}
    for e in events:
        if (cid := names.get(e["data"].get("conversation_hash"))) is not None:
            order[cid].append(e["type"].split(".")[-2])
    return order


async def handle(projector: Projector, msg: FakeMessage) -> None:
    # the old projector slept through the hold here, with every partition waiting on it
    await asyncio.wait_for(projector.handle(msg), 10)  # type: ignore[arg-type]


async def test_a_hold_costs_its_partition_not_the_other_conversations(
    projector: Projector,
) -> None:
    x, y, w = home(0, "x"), home(1, "y"), home(2, "w")
    z = home(0, "z")  # shares x's partitions: its decision, after x's, waits with it
    log = Log()
    log.write(INTERACTIONS.name, received(x), key=x, second=1)
    log.write(ROUTING.name, routed(x), key=x, second=2)
    log.write(ROUTING.name, routed(z), key=z, second=3)
    for n, cid in enumerate((y, w)):
        log.write(INTERACTIONS.name, received(cid), key=cid, second=1 + n)
        log.write(ROUTING.name, routed(cid), key=cid, second=2 + n)
    # the fetch of refdesk.interactions partition 0 has not landed: x's decision must wait
    await handle(
        projector,
        log.poll(
            tp(ROUTING.name, 0),
            tp(ROUTING.name, 1),
            tp(ROUTING.name, 2),
            tp(INTERACTIONS.name, 1),
            tp(INTERACTIONS.name, 2),
        ),
    )
    assert public(projector, x, y, w, z) == {
        x: [],
        y: ["received", "routed"],
        w: ["received", "routed"],
        z: [],
    }
    # only routing partition 0 waits, from x's decision: the commit stops there
    assert log.paused == {tp(ROUTING.name, 0)}
    assert log.positions[tp(ROUTING.name, 0)] == 0
    assert log.positions[tp(ROUTING.name, 1)] == log.positions[tp(ROUTING.name, 2)] == 1

    # while it waits, the other partitions are read and published as they come
    later = home(1, "later")
    log.write(INTERACTIONS.name, received(later), key=later, second=5)
    log.write(ROUTING.name, routed(later), key=later, second=6)
    await handle(projector, log.poll(tp(ROUTING.name, 1), tp(INTERACTIONS.name, 1)))
    assert public(projector, later)[later] == ["received", "routed"]

    # x's message arrives; when the pause ends its decision follows it, and z's with it
    await handle(projector, log.poll(tp(INTERACTIONS.name, 0)))
    log.resume(tp(ROUTING.name, 0))
    await handle(projector, log.poll(tp(ROUTING.name, 0)))
    assert public(projector, x, z) == {x: ["received", "routed"], z: ["routed"]}
    assert log.paused == set()
    assert all(log.positions[p] == len(records) for p, records in log.records.items())


async def test_a_conversations_later_events_wait_for_its_held_decision(
    projector: Projector,
) -> None:
    """x's decision waits in routing partition 0; x's message and its second message arrive
    while that partition is paused: the first goes out, the second waits for the decision (its
    partition held from there), and another conversation's message before it goes out."""
    x, v = home(0, "x"), home(0, "v")
    log = Log()
    log.write(INTERACTIONS.name, received(v), key=v, second=0.5)
    log.write(INTERACTIONS.name, received(x, 1), key=x, second=1)
    log.write(ROUTING.name, routed(x, 1), key=x, second=2)
    log.write(INTERACTIONS.name, received(x, 2), key=x, second=3)
    log.write(ROUTING.name, routed(x, 2), key=x, second=4)
    await handle(projector, log.poll(tp(ROUTING.name, 0)))
    assert public(projector, x) == {x: []}
    assert log.paused == {tp(ROUTING.name, 0)}

    await handle(projector, log.poll(tp(INTERACTIONS.name, 0)))
    assert public(projector, x, v) == {x: ["received"], v: ["received"]}
    assert log.paused == {tp(ROUTING.name, 0), tp(INTERACTIONS.name, 0)}
    assert log.positions[tp(INTERACTIONS.name, 0)] == 2  # x's second message, read again later

    log.resume(tp(ROUTING.name, 0))
    log.resume(tp(INTERACTIONS.name, 0))
    # the routing fetch lands first: x's decision goes out, and its second decision waits for
    # the second message, which is read with the next poll
    await handle(projector, log.poll(tp(ROUTING.name, 0)))
    await handle(projector, log.poll(tp(INTERACTIONS.name, 0)))
    log.resume(tp(ROUTING.name, 0))
    await handle(projector, log.poll(tp(ROUTING.name, 0), tp(INTERACTIONS.name, 0)))
    assert public(projector, x) == {x: ["received", "routed", "received", "routed"]}
    assert all(log.positions[p] == len(records) for p, records in log.records.items())


async def test_a_paused_partition_is_read_again_after_the_pause() -> None:
    log = Log()
    log.positions[tp(ROUTING.name, 0)] = 7
    pauses = Pauses(pause_s=0.01)
    pauses.hold(log, {(ROUTING.name, 0): 3})
    assert log.paused == {tp(ROUTING.name, 0)} and log.positions[tp(ROUTING.name, 0)] == 3
    await eventually(lambda: not log.paused, "the partition resumed")
    assert pauses.paused() == set()


async def test_a_partition_no_longer_assigned_is_neither_set_back_nor_paused() -> None:
    log = Log()
    Pauses(pause_s=0.01).hold(log, {(PRESENCE.name, 0): 3})  # not in this consumer's assignment
    assert log.paused == set() and log.positions == {}
