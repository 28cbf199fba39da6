"""FastStream subscribers: the desk's topics fill the queue and the transcripts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.status.handlers import Assigning, apply_batch
from services.status.resources import SOURCE, Resources
from shared.asyncapi import declare_published
from shared.consumer import Decoded, Guard, batch_subscriber
from shared.topics import (
    DELIVERIES,
    DESK,
    INTERACTIONS,
    NOTIFICATIONS,
    PRESENCE,
    ROUTING,
    SMS_REPORTS,
)

GROUP = "refdesk-status"
"""The default consumer group (REFDESK_STATUS_GROUP)."""
TOPICS = (
    INTERACTIONS.name,
    ROUTING.name,
    NOTIFICATIONS.name,
    DELIVERIES.name,
    DESK.name,
    SMS_REPORTS.name,
)


def register(broker: KafkaBroker, res: Resources) -> None:
    """Subscribe the queue handlers, and declare what staff actions publish; call before the
    broker starts."""
    declare_published(broker, INTERACTIONS, ROUTING, NOTIFICATIONS, PRESENCE, DESK)
    group = res.settings.group
    guard = Guard(broker, group=group, source=SOURCE)
    assigning = Assigning(
        enabled=res.settings.auto_assign, capacity=res.settings.capacity_per_person
    )

    # One subscriber reads every topic; one batch at a time avoids insert races on the same
    # conversation rows. A poll batch is applied in one transaction, in order, each event with its
    # processed id (claimed together, the rows they touch loaded together); the batch's offsets
    # are committed once, after that transaction.
    lock = asyncio.Lock()

    async def dispatch(items: Sequence[Decoded]) -> None:
        async with lock, res.sessions() as session:
            await apply_batch(
                session, [(event.id, data) for event, data in items], assigning=assigning
            )
            await session.commit()

    # The queue is not on the path a patron waits on: the broker holds a fetch until 64 KiB
    # or 250 ms have gathered, so under load a batch carries many events per transaction.
    batched = batch_subscriber(
        broker,
        *TOPICS,
        group_id=group,
        max_records=500,
        wait_ms=200,
        fetch_min_bytes=64 * 1024,
        fetch_max_wait_ms=250,
    )

    @batched
    async def on_events(msg: KafkaMessage) -> None:
        await guard.batch(msg, dispatch)
