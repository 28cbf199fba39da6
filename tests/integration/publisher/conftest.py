"""Fixtures for the publisher against a real broker: the service in-process, a producer."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from services.publisher.app import create_app
from services.publisher.settings import PublisherSettings
from shared.events import new_event
from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING
from tests.kafka_helpers import start_groups_at_end
from tests.servers import serving

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


@pytest.fixture
async def start_publisher(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> AsyncIterator[StartPublisher]:
    """Start the publisher (own groups, fresh database, quick retries); stopped afterwards."""
    servers = contextlib.AsyncExitStack()

    async def _start(*, from_committed: bool = False, **extra: Any) -> Running:
        """from_committed: keep the groups' committed offsets (a test that produced first)
        instead of starting them at the topics' ends."""
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
        if not from_committed:
            raw = [INTERACTIONS.name, ROUTING.name, PRESENCE.name]
            await start_groups_at_end(kafka_bootstrap, settings.projector_group, raw)
            await start_groups_at_end(kafka_bootstrap, settings.webhook_group, [PUBLIC.name])
        app = create_app(settings)
        url = await servers.enter_async_context(serving(app, what="the publisher", lifespan="on"))
        return Running(url, settings)

    async with servers:
        yield _start


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
