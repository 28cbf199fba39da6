"""Fixtures for the notifier's service-level tests: the relay, the Twilio fake, a producer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

from services.notifier.settings import NotifierSettings
from shared.kafka import build_broker, ensure_topics
from shared.settings import CommonSettings
from shared.topics import NOTIFICATIONS
from tests.kafka_helpers import start_groups_at_end

from ..notifier_adapters.conftest import twilio, twilio_server  # noqa: F401 (registered here too)
from .notifier_env import SmtpRelay, notifier_settings

Configure = Callable[..., Awaitable[NotifierSettings]]


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    """A real aiosmtpd server on a port the OS picked; the test may stop and restart it."""
    server = SmtpRelay()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[KafkaBroker]:
    """A started producer-only broker, as the router would publish with."""
    common = CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1)
    await ensure_topics(common)
    broker = build_broker(common, client_id="test-notifier-producer")
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
def configure(
    kafka_bootstrap: str, database_url: str, tmp_path: Path, relay: SmtpRelay, producer: KafkaBroker
) -> Configure:
    """Build notifier settings whose (fresh) group starts at the topic's current end.

    Other tests' commands stay on the shared topic; a group that began at `earliest` would
    deliver them all again to this test's relay.
    """

    async def _configure(**extra: Any) -> NotifierSettings:
        port = extra.pop("smtp_port", relay.port)
        settings = notifier_settings(kafka_bootstrap, database_url, tmp_path, port, **extra)
        await start_groups_at_end(kafka_bootstrap, settings.notifier_group, [NOTIFICATIONS.name])
        return settings

    return _configure
