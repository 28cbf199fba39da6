"""The projector: raw conversation and presence events in, public events out.

Its own consumer group on refdesk.interactions, refdesk.routing and refdesk.presence;
NACK_ON_ERROR with the shared Guard (invalid message -> the topic's DLQ, anything else ->
retried). Offsets are committed only after the public events were acknowledged.
"""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher.metrics import PROJECTED
from services.publisher.presence import apply_presence, presence_events
from services.publisher.projection import SOURCE, Outgoing, project
from services.publisher.settings import PublisherSettings
from shared.consumer import Guard
from shared.events import AnyEvent, PresenceChanged
from shared.kafka import publish_event
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING


async def emit(broker: KafkaBroker, outgoing: list[Outgoing]) -> None:
    """Publish public events and wait for the broker's acknowledgements."""
    for out in outgoing:
        with PUBLISH_SECONDS.labels(topic=PUBLIC.name).time():
            await publish_event(broker, PUBLIC.name, out.event, key=out.key)
        PUBLISHED.labels(topic=PUBLIC.name).inc()
        PROJECTED.labels(type=out.event.type).inc()


def register(
    broker: KafkaBroker, settings: PublisherSettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Subscribe the projector; call before the broker starts."""
    group = settings.projector_group
    guard = Guard(broker, group=group, source=SOURCE)

    async def dispatch(event: AnyEvent, data: BaseModel) -> None:
        if isinstance(data, PresenceChanged):
            async with sessions() as session:
                changes = await apply_presence(session, data)
                await emit(broker, presence_events(event, data, changes))
                await session.commit()
            return
        await emit(broker, project(event, data, key=settings.public_hash_key))

    @broker.subscriber(INTERACTIONS.name, ROUTING.name, PRESENCE.name, group_id=group,
                       auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_raw(msg: KafkaMessage) -> None:
        await guard(msg.body, msg, dispatch)
