"""`refdesk settle-ledger`: after the notifier's database is restored from a backup taken at T,
write the outcomes the broker holds for the commands after T into the restored send ledger,
before the notifier's group is rewound and it starts again, so nothing it sent after T is sent
a second time (services/notifier/settle.py says why and how).

It reads refdesk.notifications and refdesk.deliveries from T to their ends, without a group
(nothing is committed), and writes in one transaction; with `execute` False it only counts."""

from __future__ import annotations

from datetime import datetime

from aiokafka import AIOKafkaConsumer

from services.notifier.settle import Settled, settle
from shared.consumer import PoisonMessage, decode
from shared.db import create_engine
from shared.events import NotificationDelivered, NotificationRequested
from shared.kafka import topic_partitions
from shared.topics import DELIVERIES, NOTIFICATIONS


async def _read_since(bootstrap: str, topics: list[str], since: datetime) -> list[object]:
    """Every event on the topics from `since` to their ends (records that do not decode are
    passed over: they were dead-lettered when they were consumed)."""
    partitions = await topic_partitions(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        found = await consumer.offsets_for_times(
            dict.fromkeys(partitions, int(since.timestamp() * 1000))
        )
        for tp in partitions:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        events: list[object] = []
        waiting = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while waiting:
            batch = await consumer.getmany(*waiting, timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    try:
                        events.append(decode(record.value or b"")[1])
                    except PoisonMessage:
                        continue
            waiting = {tp for tp in waiting if await consumer.position(tp) < ends[tp]}
        return events
    finally:
        await consumer.stop()


async def settle_ledger(
    bootstrap: str, database_url: str, since: datetime, *, execute: bool
) -> Settled:
    """Read the two topics from `since` and settle the ledger at `database_url` (written only
    with `execute`)."""
    if since.tzinfo is None:
        raise ValueError("give the time with its zone, e.g. 2026-12-06T14:00:00Z")
    events = await _read_since(bootstrap, [NOTIFICATIONS.name, DELIVERIES.name], since)
    commands = [e for e in events if isinstance(e, NotificationRequested)]
    outcomes = [e for e in events if isinstance(e, NotificationDelivered)]
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            settled = await conn.run_sync(lambda sync: settle(sync, commands, outcomes))
            if execute:
                await conn.commit()
            else:
                await conn.rollback()
        return settled
    finally:
        await engine.dispose()
