"""Fixtures for the notifier's service-level tests: the relay, the Twilio fake, a producer."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from faststream.kafka import KafkaBroker
from starlette.applications import Starlette
from starlette.routing import Route

from services.notifier.settings import NotifierSettings
from shared.kafka import build_broker, ensure_topics
from shared.settings import CommonSettings

from ..notifier_adapters.notifier_fakes import FakeTwilio, free_port
from .notifier_env import SmtpRelay, notifier_settings, start_group_at_end

Configure = Callable[..., Awaitable[NotifierSettings]]


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    """A real aiosmtpd server on a free port; the test may stop and restart it."""
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
        await start_group_at_end(kafka_bootstrap, settings.notifier_group)
        return settings

    return _configure


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[FakeTwilio]:
    """The Twilio Messages API fake, served by uvicorn in a thread."""
    fake = FakeTwilio()
    app = Starlette(
        routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", fake.messages, methods=["POST"])]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the Twilio fake did not start")
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.requests.clear()
    twilio_server._replies.clear()
    return twilio_server
