"""The projector: raw conversation and presence events in, public events out.

Its own consumer group on refdesk.interactions, refdesk.routing and refdesk.presence;
NACK_ON_ERROR with the shared Guard (invalid message -> the topic's DLQ, anything else ->
retried). Offsets are committed only after the public events were acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher.metrics import PROJECTED
from services.publisher.presence import apply_presence, presence_events
from services.publisher.projection import SOURCE, Outgoing, project
from services.publisher.settings import PublisherSettings
from shared.consumer import Decoded, Guard, batch_subscriber
from shared.events import PresenceChanged
from shared.kafka import publish_in_order
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING


async def emit(broker: KafkaBroker, outgoing: list[Outgoing]) -> None:
    """Publish public events in order and wait for the broker's acknowledgements."""
    if not outgoing:
        return
    with PUBLISH_SECONDS.labels(topic=PUBLIC.name).time():
        await publish_in_order(broker, [(PUBLIC.name, out.event, out.key) for out in outgoing])
    PUBLISHED.labels(topic=PUBLIC.name).inc(len(outgoing))
    for out in outgoing:
        PROJECTED.labels(type=out.event.type).inc()


def register(
    broker: KafkaBroker, settings: PublisherSettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Subscribe the projector; call before the broker starts."""
    group = settings.projector_group
    hash_key = settings.public_hash_key.get_secret_value()
    guard = Guard(broker, group=group, source=SOURCE)

    async def dispatch(items: Sequence[Decoded]) -> None:
        # one poll batch: projected in order, published together, presence state committed
        # after the acks, then the batch's offsets. The public stream is for other systems,
        # not for a patron waiting: the broker may hold a fetch until 64 KiB or 250 ms gathered
        # (as for the status service; at 100 interactions/s this cut the publisher's CPU by a
        # third against 100 ms, docs/performance.md).
        outgoing: list[Outgoing] = []
        async with sessions() as session:
            for event, data in items:
                if isinstance(data, PresenceChanged):
                    changes = await apply_presence(session, data)
                    outgoing += presence_events(event, data, changes)
                else:
                    outgoing += project(event, data, key=hash_key)
            await emit(broker, outgoing)
            await session.commit()

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
    )
    async def on_raw(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch)
