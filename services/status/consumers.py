"""FastStream subscribers: refdesk.interactions and refdesk.routing fill the desk queue."""

from __future__ import annotations

import asyncio

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel

from services.status.deps import SOURCE, Resources
from services.status.handlers import Assigning, apply
from shared.consumer import Guard
from shared.events import AnyEvent
from shared.topics import INTERACTIONS, ROUTING

GROUP = "refdesk-status"


def register(broker: KafkaBroker, res: Resources) -> None:
    """Subscribe the queue handlers; call before the broker starts."""
    guard = Guard(broker, group=GROUP, source=SOURCE)
    assigning = Assigning(enabled=res.settings.auto_assign,
                          capacity=res.settings.capacity_per_person)

    # Both subscribers write the same conversation rows; one at a time avoids insert races.
    lock = asyncio.Lock()

    async def dispatch(event: AnyEvent, data: BaseModel) -> None:
        async with lock, res.sessions() as session:
            await apply(session, event_id=event.id, data=data, assigning=assigning)
            await session.commit()

    @broker.subscriber(INTERACTIONS.name, group_id=GROUP, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_interactions(msg: KafkaMessage) -> None:
        await guard(msg.body, msg, dispatch)

    @broker.subscriber(ROUTING.name, group_id=GROUP, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_routing(msg: KafkaMessage) -> None:
        await guard(msg.body, msg, dispatch)
