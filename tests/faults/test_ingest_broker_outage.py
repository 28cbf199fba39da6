"""Ingest while its broker dies and comes back: 503 fast, never 2xx, then every retry lands once.

These tests run their own broker (the session broker is shared and must stay up), kill it
mid-test and restart it on the same data directory and ports. Ingest is not restarted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from refdesk_cli.kafka_local import LocalKafka, free_port
from tests.integration.ingest.conftest import (
    fresh_phone,
    ingest_settings,
    mailgun_form,
    post_sms,
    running,
    sms_form,
)
from tests.kafka_helpers import settle

TOPIC = "refdesk.interactions"
ANSWER_WITHIN_S = 5.0  # the spec: "answer 503 within 5 seconds" when the broker is down
RECOVERY_S = 90.0  # how long a provider's retries may take to land after the broker returns


@dataclass
class OwnKafka:
    """A broker of the test's own that it may kill and restart on the same data and ports."""

    data_dir: Path
    port: int
    controller_port: int
    node: LocalKafka | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.node = LocalKafka(
            data_dir=self.data_dir, port=self.port, controller_port=self.controller_port
        )
        self.node.start()
        self.node.wait_ready()

    def ensure_up(self) -> None:
        if self.node is None or self.node.process is None or self.node.process.poll() is not None:
            self.start()

    def kill(self) -> None:
        assert self.node is not None
        self.node.kill()

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()


@pytest.fixture(scope="module")
def own_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnKafka]:
    kafka = OwnKafka(tmp_path_factory.mktemp("own-kafka"), free_port(), free_port())
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
async def broker(own_kafka: OwnKafka) -> OwnKafka:
    """The test's broker, up (a previous test may have left it killed)."""
    await asyncio.to_thread(own_kafka.ensure_up)
    return own_kafka


Send = Callable[[], Awaitable[httpx.Response]]


async def refused_quickly(send: Send) -> httpx.Response:
    """Send while the broker is down: a 503 with Retry-After, within the spec's 5 s."""
    started = time.monotonic()
    answer = await send()
    elapsed = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    assert elapsed < ANSWER_WITHIN_S
    return answer


async def retried_until_accepted(send: Send) -> httpx.Response:
    """Retry as a provider would (honouring Retry-After, capped) until answered 200."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        answer = await send()
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(min(float(answer.headers.get("retry-after", "1")), 1.0))


def provider_ids(*ids: str) -> Callable[[dict[str, object]], bool]:
    wanted = set(ids)
    return lambda e: (
        isinstance(e.get("data"), dict) and e["data"].get("provider_message_id") in wanted
    )  # type: ignore[union-attr]


async def test_sms_gets_503_while_the_broker_is_down_and_retries_land_once(
    broker: OwnKafka, database_url: str, tmp_path: Path
) -> None:
    settings = ingest_settings(broker.bootstrap, database_url, tmp_path)
    before = sms_form("before the outage", sender=fresh_phone())
    during = [sms_form(f"during the outage {i}", sender=fresh_phone()) for i in range(3)]
    async with running(settings) as client:
        assert (await post_sms(client, before)).status_code == 200
        await asyncio.to_thread(broker.kill)
        for form in during:
            await refused_quickly(lambda form=form: post_sms(client, form))  # type: ignore[misc]
        # Still refused on a second attempt while down: never a 2xx for an unstored message.
        await refused_quickly(lambda: post_sms(client, during[0]))
        await asyncio.to_thread(broker.start)  # same data directory, same ports
        for form in during:
            answer = await retried_until_accepted(lambda form=form: post_sms(client, form))  # type: ignore[misc]
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/xml")
        ready = await client.get("/readyz")  # the same producer, reconnected: no ingest restart
        assert ready.status_code == 200, ready.text
    sids = [f["MessageSid"] for f in (before, *during)]
    events = await settle(broker.bootstrap, TOPIC, provider_ids(*sids))
    counts = {sid: sum(e["data"]["provider_message_id"] == sid for e in events) for sid in sids}
    assert counts == dict.fromkeys(sids, 1)


async def test_mailgun_retry_with_the_same_token_after_a_503_is_accepted(
    broker: OwnKafka, database_url: str, tmp_path: Path
) -> None:
    settings = ingest_settings(broker.bootstrap, database_url, tmp_path)
    form = mailgun_form(message_id=uuid.uuid4().hex, text="Is the library open on Sunday?")
    async with running(settings) as client:
        await asyncio.to_thread(broker.kill)
        await refused_quickly(lambda: client.post("/webhooks/email", data=form))
        await asyncio.to_thread(broker.start)
        # Mailgun's retry resends the very same timestamp, token and signature.
        answer = await retried_until_accepted(lambda: client.post("/webhooks/email", data=form))
        assert answer.status_code == 200, answer.text
        again = await client.post("/webhooks/email", data=form)
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
    events = await settle(broker.bootstrap, TOPIC, provider_ids(form["Message-Id"].strip("<>")))
    assert len(events) == 1
