"""Fixtures for the status service against a real broker: Kafka and the running service.

The status tests get a LocalKafka of their own for the session. The service runs in-process
under uvicorn, lifespan and all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn

from refdesk_cli.kafka_local import LocalKafka, free_port
from services.status.app import create_app
from services.status.settings import StatusSettings


@pytest.fixture(scope="session")
def status_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of the status tests' own: the service's group reads its topics from the start,
    so other tests' traffic on a shared broker would only be backlog here."""
    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("status-kafka"), port=free_port())
    kafka.start()
    try:
        kafka.wait_ready()
        yield kafka.bootstrap
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
async def status_server(
    status_kafka: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """The status service on a free port; yields its base URL."""
    run_dir = tmp_path_factory.mktemp("status-run")
    settings = StatusSettings(
        env="development",
        kafka_bootstrap=status_kafka,
        run_dir=run_dir,
        database_url=f"sqlite+aiosqlite:///{run_dir / 'status.db'}",
        sweep_interval_s=0.5,
        topic_partitions=1,
    )
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
    for _ in range(600):
        if server.started or task.done():
            break
        await asyncio.sleep(0.1)
    if not server.started:
        if task.done():
            task.result()
        raise RuntimeError("the status service did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
