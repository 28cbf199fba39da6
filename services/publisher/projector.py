"""The projector: raw conversation and presence events in, public events out.

Its own consumer group on refdesk.interactions, refdesk.routing and refdesk.presence;
NACK_ON_ERROR with the shared Guard (invalid message -> the topic's DLQ, anything else ->
retried). Offsets are committed only after the public events were acknowledged. Each
conversation's public events go out in the order they happened (services/publisher/ordering.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher.metrics import PROJECTED
from services.publisher.ordering import Causes, Item, Positions, causal_order, split
from services.publisher.presence import apply_presence, presence_events
from services.publisher.projection import SOURCE, Outgoing, project
from services.publisher.settings import PublisherSettings
from shared.consumer import Guard, batch_subscriber, decode
from shared.domain import DEPARTMENTS
from shared.events import PresenceChanged
from shared.kafka import publish_in_order
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING

HOLD_PAUSE_S = 0.1
"""How long a held partition stays paused before it is read again from its held offset, so the
fetch of what it waits for can land first. Only that partition waits: the others are read on."""


class Pausable(Positions, Protocol):
    """What the projector asks of the Kafka consumer to hold a partition back."""

    def seek(self, partition: TopicPartition, offset: int) -> None: ...

    def pause(self, *partitions: TopicPartition) -> None: ...

    def resume(self, *partitions: TopicPartition) -> None: ...


@dataclass
class Pauses:
    """Held partitions: each set back to its held offset and paused for `pause_s`, then read
    again; nothing else waits. The batch's commit, which follows, stops at the held offset (a
    consumer commits the positions it reads from next), and so does every commit until the
    partition is read past it."""

    pause_s: float = HOLD_PAUSE_S
    _timers: dict[TopicPartition, asyncio.TimerHandle] = field(default_factory=dict)

    def hold(self, consumer: Pausable, held: dict[tuple[str, int], int]) -> None:
        """Set each held partition back to its offset and pause it for a while."""
        assigned = consumer.assignment()
        loop = asyncio.get_running_loop()
        for (topic, partition), offset in held.items():
            tp = TopicPartition(topic, partition)
            if tp not in assigned:  # revoked meanwhile: read again from its committed offset
                continue
            consumer.seek(tp, offset)
            consumer.pause(tp)
            if (timer := self._timers.pop(tp, None)) is not None:
                timer.cancel()
            self._timers[tp] = loop.call_later(self.pause_s, self._resume, consumer, tp)

    def paused(self) -> set[TopicPartition]:
        """The partitions paused now."""
        return set(self._timers)

    def _resume(self, consumer: Pausable, tp: TopicPartition) -> None:
        del self._timers[tp]
        if tp in consumer.assignment():  # a partition revoked and assigned again is not paused
            consumer.resume(tp)


async def emit(broker: KafkaBroker, outgoing: list[Outgoing]) -> None:
    """Publish public events in order and wait for the broker's acknowledgements."""
    if not outgoing:
        return
    with PUBLISH_SECONDS.labels(topic=PUBLIC.name).time():
        await publish_in_order(broker, [(PUBLIC.name, out.event, out.key) for out in outgoing])
    PUBLISHED.labels(topic=PUBLIC.name).inc(len(outgoing))
    for out in outgoing:
        PROJECTED.labels(type=out.event.type).inc()


def decode_item(record: ConsumerRecord[Any, Any]) -> Item:
    """A record's event and data, with where it was read from (PoisonMessage: the Guard
    dead-letters the record)."""
    event, data = decode(record.value or b"")
    return Item(str(record.topic), int(record.partition), int(record.offset), event, data)


@dataclass
class Projector:
    """One poll batch at a time: put in the order things happened, published together, the
    presence tally committed after the acks; what must wait is held back (ordering.py) by
    setting its partitions back and pausing only them."""

    broker: KafkaBroker
    sessions: async_sessionmaker[AsyncSession]
    guard: Guard
    hash_key: str
    departments: frozenset[str] = DEPARTMENTS
    causes: Causes = field(default_factory=Causes)
    pauses: Pauses = field(default_factory=Pauses)

    async def handle(self, msg: KafkaMessage) -> None:
        """Project one poll batch; its offsets are committed when this returns (up to the held
        offset of a held partition)."""
        consumer: Any = msg.consumer  # aiokafka's AIOKafkaConsumer
        held: dict[tuple[str, int], int] = {}

        async def dispatch(items: list[Item]) -> None:
            ordered = causal_order(items)
            held.update(await self.causes.held(ordered, consumer))
            now, _later = split(ordered, held)
            await self.project(now)
            self.causes.publish(now)

        await self.guard.batch(msg, dispatch, record_decoder=decode_item)
        # Read again from each held offset on, after a pause of that partition alone. (A poison
        # record after it in its partition is dead-lettered again when read again.)
        self.pauses.hold(consumer, held)

    async def project(self, items: Sequence[Item]) -> None:
        """Publish what the items yield, in order, then commit the presence tally.

        The tally's transaction stays open until the broker acknowledged the counts, on
        purpose: a publish that fails rolls the tally back, so the redelivered change yields the
        same counts again instead of none; and a replica sharing the tally (PostgreSQL) waits
        on the changed departments' row locks until this one's counts are acknowledged and
        committed, so a department's counts reach refdesk.public in the order of their
        `changed_at` (docs/reliability.md, "publisher")."""
        outgoing: list[Outgoing] = []
        async with self.sessions() as session:
            for item in items:
                if isinstance(item.data, PresenceChanged):
                    outgoing += presence_events(await apply_presence(session, item.data))
                else:
                    outgoing += project(
                        item.event, item.data, key=self.hash_key, departments=self.departments
                    )
            await emit(self.broker, outgoing)
            await session.commit()


def register(
    broker: KafkaBroker, settings: PublisherSettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Subscribe the projector; call before the broker starts."""
    group = settings.projector_group
    projector = Projector(
        broker=broker,
        sessions=sessions,
        guard=Guard(broker, group=group, source=SOURCE),
        hash_key=settings.public_hash_key.get_secret_value(),
        departments=settings.known_departments,
    )

    # What the projector publishes, declared for the AsyncAPI document (published through
    # shared.kafka like every event; see emit).
    broker.publisher(
        PUBLIC.name,
        title=f"{PUBLIC.name}:PublicEvent",
        description="The public events other campus systems may read (docs/subscribing.md): "
        "no names, contacts, TCC IDs, message text or staff ids. Keyed by conversation_hash, "
        "or by department for presence counts.",
    )

    # The public stream is for other systems, not for a patron waiting: the broker may hold a
    # fetch until 64 KiB or 250 ms gathered (as for the status service; at 100 interactions/s
    # this cut the publisher's CPU by a third against 100 ms, docs/performance.md).
    # Range assignment gives one replica the same partition of each topic: a conversation's
    # messages and decisions share its key, so they are read by the same projector. (Round
    # robin stays listed, so replicas that list only it can still share the group.)
    @batch_subscriber(
        broker,
        INTERACTIONS.name,
        ROUTING.name,
        PRESENCE.name,
        group_id=group,
        max_records=500,
        wait_ms=200,
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=250,
        partition_assignment_strategy=(RangePartitionAssignor, RoundRobinPartitionAssignor),
    )
    async def on_raw(msg: KafkaMessage) -> None:
        await projector.handle(msg)
