"""Fixtures for the status service against a real broker: Kafka and the running service.

The status tests share the session's broker; the service runs in-process under uvicorn,
lifespan and all, with a consumer group of its own that starts at the topics' ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from status_kafka_helpers import status_settings

from services.status.app import create_app
from services.status.consumers import TOPICS
from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from tests.kafka_helpers import start_groups_at_end
from tests.servers import serving


@pytest.fixture(scope="session")
def status_kafka(kafka_bootstrap: str) -> str:
    """The session broker: the status service's own consumer group starts at the topics' ends
    (status_server), so other tests' traffic is never backlog here."""
    return kafka_bootstrap


@pytest.fixture(scope="session")
async def status_server(
    status_kafka: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The status service on a free port; yields its base URL."""
    run_dir = tmp_path_factory.mktemp("status-run")
    await ensure_topics(CommonSettings(kafka_bootstrap=status_kafka, topic_partitions=1))
    group = f"test-status-{uuid.uuid4().hex[:10]}"
    await start_groups_at_end(status_kafka, group, list(TOPICS))
    settings = status_settings(status_kafka, group, run_dir)
    async with serving(create_app(settings), what="the status service", lifespan="on") as url:
        yield url
