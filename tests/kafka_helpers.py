"""Reading what services published, straight from the real broker; starting a test's own
consumer group at the topics' ends, so a service under test sees only that test's records."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Event = dict[str, Any]


async def collect(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[Event]], bool],
    where: Callable[[Event], bool] = lambda e: True,
    timeout: float = 30.0,
) -> list[Event]:
    """Read a topic from the beginning, keeping events that match `where`, until `until` holds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Event] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(found):
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and where(event):
                        event["_key"] = record.key.decode() if record.key else None
                        found.append(event)
    finally:
        await consumer.stop()
    return found


async def settle(
    bootstrap: str, topic: str, where: Callable[[Event], bool], *, quiet: float = 3.0
) -> list[Event]:
    """Everything matching on a topic once nothing new has arrived for `quiet` seconds."""
    seen: list[Event] = []
    last = -1
    while len(seen) != last:
        last = len(seen)
        await asyncio.sleep(quiet)
        seen = await collect(bootstrap, topic, until=lambda _e: False, where=where, timeout=quiet)
    return seen


async def partitions(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """Every partition of the topics, as the broker describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def start_groups_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit a fresh group's offsets at the topics' ends: it sees only what comes next."""
    tps = await partitions(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit(dict((await consumer.end_offsets(tps)).items()))
    finally:
        await consumer.stop()
