"""Reading and writing refdesk topics directly with aiokafka, for assertions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from services.status.settings import StatusSettings
from shared.events import new_event
from shared.kafka import CONTENT_TYPE


async def send(bootstrap: str, topic: str, data: BaseModel, *, key: str) -> str:
    """Publish one CloudEvent as another service would; returns its id."""
    event = new_event(data, source="tests/status")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            event.model_dump_json().encode(),
            key=key.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
    finally:
        await producer.stop()
    return event.id


async def send_raw(bootstrap: str, topic: str, value: bytes, *, key: str) -> None:
    """Publish arbitrary bytes (a poison message)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def wait_for_record(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any], str | None], bool],
    timeout_s: float = 60,
) -> tuple[dict[str, Any], str | None]:
    """The first record on a topic (from the start) whose decoded JSON and key match."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        try:
                            value = json.loads(record.value or b"null")
                        except ValueError:
                            continue  # other tests' poison messages share the topic
                        key = record.key.decode() if record.key else None
                        if isinstance(value, dict) and match(value, key):
                            return value, key
    finally:
        await consumer.stop()


async def queue_row(base_url: str, conversation_id: str, token: str) -> dict[str, Any] | None:
    """The queue row of a conversation, if it is listed."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/queue", headers={"Authorization": f"Bearer {token}"})
    rows = [r for r in response.json()["items"] if r["conversation_id"] == conversation_id]
    return rows[0] if rows else None


def status_settings(bootstrap: str, group: str, run_dir: Path) -> StatusSettings:
    """A status service of the tests: its own consumer group and a SQLite file in run_dir."""
    return StatusSettings(
        env="development",
        group=group,
        kafka_bootstrap=bootstrap,
        run_dir=run_dir,
        database_url=f"sqlite+aiosqlite:///{run_dir / 'status.db'}",
        sweep_interval_s=0.5,
        topic_partitions=1,
    )
