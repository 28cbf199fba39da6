"""A refdesk consumer joining its group waits as long as the broker may take to answer.

The broker answers a JoinGroup once every member has joined again or the rebalance timeout has
passed. Here a member of the group is slow to give its partitions back (its revoke callback
takes longer than the rebalance timeout), so the broker holds a new member's JoinGroup for the
whole rebalance timeout. A request timeout no longer than that gave up on the join just as the
answer came (`RequestTimedOutError`, the connection closed, one more rebalance).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.consumer import batch_subscriber
from shared.kafka import REQUEST_TIMEOUT_MS, SESSION_TIMEOUT_MS, build_broker
from shared.settings import CommonSettings
from tests.eventually import eventually


class SlowToRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Holds on to its partitions for longer than the group's rebalance timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            await asyncio.sleep(self.seconds)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


async def test_a_join_held_for_the_whole_rebalance_timeout_is_not_cut_off(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert REQUEST_TIMEOUT_MS >= SESSION_TIMEOUT_MS + 5_000
    topic, group = f"refdesk.join-{uuid.uuid4().hex[:8]}", f"join-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()

    slow = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    slow.subscribe([topic], listener=SlowToRevoke(SESSION_TIMEOUT_MS / 1000 + 2))
    await slow.start()
    polling = asyncio.create_task(_poll_forever(slow))
    broker = build_broker(CommonSettings(kafka_bootstrap=kafka_bootstrap), client_id="join-test")

    @batch_subscriber(broker, topic, group_id=group, max_records=10, wait_ms=100)
    async def handle(_msg: Any) -> None:
        return None

    joining: Any = broker.subscribers[0]
    caplog.set_level(logging.ERROR, logger="aiokafka")
    try:
        await eventually(slow.assignment, "the slow member to hold partitions", timeout=30)
        await broker.start()
        await eventually(
            lambda: joining.consumer.assignment(), "the new member to get partitions", timeout=60
        )
    finally:
        await broker.stop()
        polling.cancel()
        await slow.stop()

    cut_off = [r.getMessage() for r in caplog.records if "JoinGroup" in r.getMessage()]
    assert cut_off == []


async def _poll_forever(consumer: AIOKafkaConsumer) -> None:
    while True:
        await consumer.getmany(timeout_ms=100)
