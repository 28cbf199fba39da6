"""Fixtures for the publisher against a real broker: the service in-process, a producer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from refdesk_cli.kafka_local import free_port
from services.publisher.app import create_app
from services.publisher.settings import PublisherSettings
from shared.events import new_event
from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING

ADMIN_TOKEN = "test-admin-token-0123456789abcdefghij"
HASH_KEY = "test-public-hash-key-0123456789abcdef"


@dataclass
class Running:
    url: str
    settings: PublisherSettings

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token.get_secret_value()}"}


StartPublisher = Callable[..., Awaitable[Running]]


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


@pytest.fixture
async def start_publisher(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> AsyncIterator[StartPublisher]:
    """Start the publisher (own groups, fresh database, quick retries); stopped afterwards."""
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def _start(**extra: Any) -> Running:
        await ensure_topics(CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1))
        tag = uuid.uuid4().hex[:10]
        values: dict[str, Any] = {
            "env": "development",
            "kafka_bootstrap": kafka_bootstrap,
            "run_dir": tmp_path,
            "database_url": database_url,
            "topic_partitions": 1,
            "admin_token": ADMIN_TOKEN,
            "public_hash_key": HASH_KEY,
            "projector_group": f"test-publisher-{tag}",
            "webhook_group": f"test-webhooks-{tag}",
            "webhook_max_attempts": 3,
            "webhook_backoff_base_s": 0.05,
            "webhook_backoff_max_s": 0.2,
            "webhook_poll_interval_s": 0.1,
            "webhook_timeout_s": 5,
            "webhook_allow_loopback": True,  # the test receivers listen on 127.0.0.1
        }
        values.update(extra)
        settings = PublisherSettings(**values)
        raw = [INTERACTIONS.name, ROUTING.name, PRESENCE.name]
        await start_groups_at_end(kafka_bootstrap, settings.projector_group, raw)
        await start_groups_at_end(kafka_bootstrap, settings.webhook_group, [PUBLIC.name])
        port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            access_log=False,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        for _ in range(600):
            if server.started or task.done():
                break
            await asyncio.sleep(0.1)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("the publisher did not start")
        return Running(f"http://127.0.0.1:{port}", settings)

    yield _start
    for server, task in servers:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def produce(
    bootstrap: str, topic: str, data: BaseModel | bytes, *, key: str, event_id: str | None = None
) -> str:
    """Publish one raw event (or raw bytes) as a refdesk service would; its event id."""
    if isinstance(data, bytes):
        body, eid = data, ""
    else:
        event = new_event(data, source="tests/publisher", event_id=event_id)
        body, eid = event.model_dump_json().encode(), event.id
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, body, key=key.encode())
    finally:
        await producer.stop()
    return eid
