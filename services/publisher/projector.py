"""The projector: raw conversation and presence events in, public events out.

Its own consumer group on refdesk.interactions, refdesk.routing and refdesk.presence;
NACK_ON_ERROR with the shared Guard (invalid message -> the topic's DLQ, anything else ->
retried). Offsets are committed only after the public events were acknowledged. Each
conversation's public events go out in the order they happened (services/publisher/ordering.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher.metrics import PROJECTED
from services.publisher.ordering import Causes, Item, causal_order, split
from services.publisher.presence import apply_presence, presence_events
from services.publisher.projection import SOURCE, Outgoing, project
from services.publisher.settings import PublisherSettings
from shared.consumer import Guard, batch_subscriber, decode
from shared.events import PresenceChanged
from shared.kafka import publish_in_order
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING

HOLD_PAUSE_S = 0.1
"""After holding a decision back, a pause before the next poll, so the fetch of its interaction
can land first."""


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


def register(
    broker: KafkaBroker, settings: PublisherSettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Subscribe the projector; call before the broker starts."""
    group = settings.projector_group
    hash_key = settings.public_hash_key.get_secret_value()
    guard = Guard(broker, group=group, source=SOURCE)
    causes = Causes()

    # What the projector publishes, declared for the AsyncAPI document (published through
    # shared.kafka like every event; see emit).
    broker.publisher(
        PUBLIC.name,
        title=f"{PUBLIC.name}:PublicEvent",
        description="The public events other campus systems may read (docs/subscribing.md): "
        "no names, contacts, TCC IDs, message text or staff ids. Keyed by conversation_hash, "
        "or by department for presence counts.",
    )

    async def project_batch(items: Sequence[Item]) -> None:
        """Publish what the items yield, in order, then commit the presence tally."""
        outgoing: list[Outgoing] = []
        async with sessions() as session:
            for item in items:
                if isinstance(item.data, PresenceChanged):
                    outgoing += presence_events(await apply_presence(session, item.data))
                else:
                    outgoing += project(item.event, item.data, key=hash_key)
            await emit(broker, outgoing)
            await session.commit()

    # One poll batch: put in the order things happened, published together, the presence tally
    # committed after the acks, then the batch's offsets (those of a routing partition whose
    # decision waits for its interaction stay at that decision). The public stream is for other
    # systems, not for a patron waiting: the broker may hold a fetch until 64 KiB or 250 ms
    # gathered (as for the status service; at 100 interactions/s this cut the publisher's CPU
    # by a third against 100 ms, docs/performance.md).
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
        consumer: Any = msg.consumer  # aiokafka's AIOKafkaConsumer
        held: dict[tuple[str, int], int] = {}

        async def dispatch(items: list[Item]) -> None:
            ordered = causal_order(items)
            held.update(await causes.held(ordered, consumer))
            now, _later = split(ordered, held)
            await project_batch(now)
            causes.publish(now)

        await guard.batch(msg, dispatch, record_decoder=decode_item)
        # Read again from each held decision on: the commit that follows stops there. (A
        # poison record after it in its partition is dead-lettered again when read again.)
        assigned = consumer.assignment()
        for (topic, partition), offset in held.items():
            tp = TopicPartition(topic, partition)
            if tp in assigned:  # one revoked meanwhile is read again from its committed offset
                consumer.seek(tp, offset)
        if held:
            await asyncio.sleep(HOLD_PAUSE_S)
