"""Per-key order on refdesk.public against a real broker: a conversation's interaction.received
comes before its conversation.routed, whether the two are read in one poll batch or the
decision is read first (docs/subscribing.md: "ordering: per key")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.publisher.projection import conversation_hash
from shared.events import (
    Action,
    Channel,
    InteractionReceived,
    Patron,
    Priority,
    RoutingDecided,
    new_event,
)
from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from shared.topics import INTERACTIONS, PRESENCE, PUBLIC, ROUTING
from tests.kafka_helpers import collect, start_groups_at_end

from .conftest import HASH_KEY, StartPublisher

pytestmark = pytest.mark.timeout(240)


def received(cid: str, at: datetime, *, text: str = "hours?") -> InteractionReceived:
    return InteractionReceived(
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        provider="chat",
        provider_message_id=f"m-{cid}",
        patron=Patron(),
        text=text,
        received_at=at,
    )


def routed(cid: str, at: datetime) -> RoutingDecided:
    return RoutingDecided(
        decision_id=f"d-{cid}",
        interaction_id=f"i-{cid}",
        conversation_id=cid,
        channel=Channel.CHAT,
        action=Action.ANSWER,
        department="reference",
        priority=Priority.NORMAL,
        overnight=False,
        policy_version="test",
        decided_at=at,
    )


async def produce_all(bootstrap: str, records: list[tuple[str, Any, str, datetime]]) -> None:
    """Publish (topic, data, key, event time) records in this order, as refdesk services do."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for topic, data, key, at in records:
            event = new_event(data, source="tests/publisher").model_copy(update={"time": at})
            await producer.send(topic, event.model_dump_json().encode(), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def public_order(bootstrap: str, cids: list[str]) -> dict[str, list[str]]:
    """conversation id -> the kinds of its public events, in the order they are on the topic."""
    hashes = {conversation_hash(c, key=HASH_KEY): c for c in cids}

    def ours(e: dict[str, Any]) -> bool:
        return e["data"].get("conversation_hash") in hashes

    def complete(found: list[dict[str, Any]]) -> bool:
        return len(found) >= 2 * len(cids)

    found = await collect(bootstrap, PUBLIC.name, where=ours, until=complete, timeout=90)
    order: dict[str, list[str]] = {c: [] for c in cids}
    for e in found:  # one key is one partition: the topic's order is the order read
        order[hashes[e["data"]["conversation_hash"]]].append(e["type"].split(".")[-2])
    return order


async def backlog_group(bootstrap: str) -> str:
    """A fresh projector group committed at the topics' ends: what the test produces next is
    what the publisher finds waiting when it starts."""
    await ensure_topics(CommonSettings(kafka_bootstrap=bootstrap, topic_partitions=1))
    group = f"test-order-{uuid.uuid4().hex[:10]}"
    await start_groups_at_end(bootstrap, group, [INTERACTIONS.name, ROUTING.name, PRESENCE.name])
    await start_groups_at_end(bootstrap, f"{group}-wh", [PUBLIC.name])
    return group


async def test_messages_and_decisions_read_together_go_out_in_order(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    group = await backlog_group(kafka_bootstrap)
    tag = group.removeprefix("test-order-")
    now = datetime.now(UTC)
    cids = [f"conv-{tag}-{n}" for n in range(10)]
    records = []
    for n, cid in enumerate(cids):  # as ingest and the router write them: message, then decision
        at = now + timedelta(milliseconds=10 * n)
        records.append((INTERACTIONS.name, received(cid, at), cid, at))
        records.append((ROUTING.name, routed(cid, at), cid, at + timedelta(milliseconds=5)))
    await produce_all(kafka_bootstrap, records)
    # the twenty records wait as one backlog, read in one poll
    await start_publisher(from_committed=True, projector_group=group, webhook_group=f"{group}-wh")
    order = await public_order(kafka_bootstrap, cids)
    assert order == {c: ["received", "routed"] for c in cids}


async def test_a_decision_read_before_its_message_waits_for_it(
    kafka_bootstrap: str, start_publisher: StartPublisher
) -> None:
    """A first fetch of refdesk.interactions stops at 1 MiB, before the message, while the
    fetch of refdesk.routing brings its decision: the decision waits for the next poll."""
    group = await backlog_group(kafka_bootstrap)
    tag = group.removeprefix("test-order-")
    now = datetime.now(UTC)
    filler = "x" * 4000
    records: list[tuple[str, Any, str, datetime]] = []
    fillers = [f"conv-{tag}-filler-{n}" for n in range(300)]  # about 1.3 MB
    for n, cid in enumerate(fillers):
        at = now + timedelta(microseconds=n)
        records.append((INTERACTIONS.name, received(cid, at, text=filler), cid, at))
    cid = f"conv-{tag}-late"
    at = now + timedelta(seconds=1)
    records.append((INTERACTIONS.name, received(cid, at), cid, at))
    records.append((ROUTING.name, routed(cid, at), cid, at + timedelta(milliseconds=5)))
    await produce_all(kafka_bootstrap, records)
    await start_publisher(from_committed=True, projector_group=group, webhook_group=f"{group}-wh")
    order = await public_order(kafka_bootstrap, [cid])
    assert order == {cid: ["received", "routed"]}
