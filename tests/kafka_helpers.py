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

from shared.kafka import topic_partitions

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
                    event = _decoded(record)
                    if "_raw" not in event and where(event):
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
    """Every partition of the topics, as the broker describes them (none for a missing topic)."""
    return await topic_partitions(bootstrap, topics)


async def read_topic(bootstrap: str, topic: str) -> list[Event]:
    """Every record of a topic up to its end as of this call, decoded, with no waiting.

    Exact for whatever the broker acknowledged before the call (a 2xx from ingest, a consumer
    that committed past its input): checks that something was published once, or not at all,
    read this instead of waiting out a quiet period. Each event carries `_key`, `_partition`
    and `_offset`; a record that is not a JSON object comes as `{"_raw": value}`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=30_000
    )
    await consumer.start()
    out: list[Event] = []
    try:
        parts = await partitions(bootstrap, [topic])
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        remaining = {tp for tp in parts if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        event = _decoded(record)
                        event["_partition"], event["_offset"] = tp.partition, record.offset
                        out.append(event)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return out


def _decoded(record: Any) -> Event:
    """A record's JSON object with its key as `_key` (`{"_raw": value}` when the value is not
    a JSON object)."""
    try:
        event = json.loads(record.value)
    except (ValueError, TypeError):
        event = None
    if not isinstance(event, dict):
        event = {"_raw": record.value}
    event["_key"] = record.key.decode() if record.key else None
    return event


async def read_to_end(
    bootstrap: str, topic: str, *, where: Callable[[Event], bool] = lambda e: True
) -> list[Event]:
    """The events of `read_topic` that match `where` (records that are not JSON left out)."""
    return [e for e in await read_topic(bootstrap, topic) if "_raw" not in e and where(e)]


async def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group has committed to the topic's end (for `eventually`)."""
    return await group_lag(bootstrap, group, topic) == 0


async def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of a topic a consumer group has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        parts = await partitions(bootstrap, [topic])
        ends = await consumer.end_offsets(parts)
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


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
