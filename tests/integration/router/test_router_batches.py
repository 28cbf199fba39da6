"""The router consuming refdesk.interactions in poll batches, against the real broker.

Each test gives its router a fresh group whose offsets start at the topic's end, writes its
records, then starts the router: the records are all in the log before the first poll, so
they reach the router as one poll batch (the tests check that with the batch counter).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from services.router.app import create_app
from services.router.handlers import CONSUMER
from services.router.settings import RouterSettings
from services.router.tables import conversations, processed
from shared.db import create_engine, migrate, processed_among, record_processed
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    Patron,
    derived_id,
    new_event,
)
from shared.kafka import CONTENT_TYPE, ensure_topics
from shared.topics import INTERACTIONS
from tests.kafka_helpers import Event, collect, read_to_end

OPEN_HOURS = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Chicago
OVERNIGHT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # a Wednesday, 02:00 in Chicago
TOPIC = INTERACTIONS.name
Record = tuple[bytes | None, list[tuple[str, bytes]]]


def interaction(
    text: str, conversation: str, *, when: datetime = OPEN_HOURS, channel: Channel = Channel.SMS
) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=str(uuid.uuid4()),
        conversation_id=conversation,
        channel=channel,
        provider="test",
        provider_message_id=str(uuid.uuid4()),
        patron=Patron(contact="+18175550123"),
        text=text,
        received_at=when,
    )


def record(data: InteractionReceived | ConversationClosed) -> Record:
    """A record as refdesk's producers write it (structured CloudEvent, type in a header)."""
    event_id = getattr(data, "interaction_id", None) or str(uuid.uuid4())
    event = new_event(data, source="test", subject=data.conversation_id, event_id=event_id)
    headers = [("content-type", CONTENT_TYPE.encode()), ("ce_type", event.type.encode())]
    return event.model_dump_json().encode(), headers


async def produce(bootstrap: str, key: str, records: list[Record]) -> None:
    """Write records under one key (one partition, in this order) and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(TOPIC, value, key=key.encode(), headers=headers)
            for value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def partitions(bootstrap: str) -> list[TopicPartition]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return [TopicPartition(TOPIC, p) for p in sorted(await producer.partitions_for(TOPIC))]
    finally:
        await producer.stop()


async def group_offsets(bootstrap: str, group: str, *, to: str | None = None) -> dict[Any, int]:
    """The group's committed offsets; with `to` ("end"), commit the topic's end offsets first."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = await partitions(bootstrap)
        consumer.assign(parts)
        if to == "end":
            ends = await consumer.end_offsets(parts)
            await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in ends.items()})
        return {tp: (await consumer.committed(tp)) or 0 for tp in parts}
    finally:
        await consumer.stop()


async def rewind(bootstrap: str, group: str, offsets: dict[Any, int]) -> None:
    """Move the (stopped) group back to earlier offsets: its batches are delivered again."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str) -> dict[Any, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(await partitions(bootstrap)))
    finally:
        await consumer.stop()


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"topic": TOPIC, **labels}) or 0.0


def batches(outcome: str = "processed") -> float:
    return counter("refdesk_consumer_batches_total", outcome=outcome)


@pytest.fixture
def settings(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> RouterSettings:
    return RouterSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        run_dir=tmp_path,
        router_group=f"router-batch-{uuid.uuid4().hex[:8]}",
        topic_partitions=1,
    )


@pytest.fixture
async def engine(settings: RouterSettings) -> AsyncIterator[AsyncEngine]:
    """The router's database, migrated, as another process (an operator, a replica) sees it."""
    eng = create_engine(settings.db_url("router"))
    await migrate(eng, "router")
    yield eng
    await eng.dispose()


@pytest.fixture
async def start_offsets(settings: RouterSettings) -> dict[Any, int]:
    """The group starts at the topic's current end: its router reads only this test's records."""
    await ensure_topics(settings)
    return await group_offsets(settings.kafka_bootstrap, settings.router_group, to="end")


@contextlib.asynccontextmanager
async def running_router(settings: RouterSettings) -> AsyncIterator[None]:
    # decided within minutes of the night's messages, whenever the tests run: what a patron
    # is told ("closed right now") is read at the moment of the decision
    app = create_app(settings, clock=lambda: OVERNIGHT + timedelta(minutes=10))
    async with app.router.lifespan_context(app):
        yield


def of(conversation: str) -> Callable[[Event], bool]:
    return lambda e: e.get("subject") == conversation


async def decisions_of(
    bootstrap: str, conversation: str, until: Callable[[list[Event]], bool]
) -> list[Event]:
    return await collect(bootstrap, "refdesk.routing", where=of(conversation), until=until)


def decided(*interactions: InteractionReceived) -> Callable[[list[Event]], bool]:
    wanted = {i.interaction_id for i in interactions}
    return lambda found: wanted <= {e["data"]["interaction_id"] for e in found}


async def committed_to_end(bootstrap: str, group: str) -> bool:
    """Whether the group's committed offsets reached the topic's end (polls for a while)."""
    for _ in range(100):
        if await group_offsets(bootstrap, group) == await end_offsets(bootstrap):
            return True
        await asyncio.sleep(0.2)
    return False


async def test_poison_records_in_a_batch_are_dead_lettered_and_the_rest_decided(
    settings: RouterSettings, start_offsets: dict[Any, int]
) -> None:
    bootstrap, conv = settings.kafka_bootstrap, f"c-{uuid.uuid4().hex[:12]}"
    marker = uuid.uuid4().hex
    first = interaction("where are the statistics books", conv)
    binary_header = interaction("can i renew my book online", conv)
    last = interaction("How do I cite a government report in APA 7?", conv)
    invalid = {
        "specversion": "1.0",
        "id": f"poison-{marker}",
        "source": "test",
        "type": "edu.tccd.refdesk.interaction.received.v1",
        "time": datetime.now(UTC).isoformat(),
        "data": {"poison": marker},
    }
    good_value, good_headers = record(binary_header)
    records: list[Record] = [
        record(first),
        (f"not json {marker}".encode(), []),
        (json.dumps(invalid).encode(), [("content-type", b"application/json")]),
        (f"{{broken json {marker}".encode(), [("content-type", b"application/json")]),
        (good_value, [*good_headers, ("trace", b"\xff\xfe binary")]),
        record(last),
    ]
    before = {
        "batches": batches(),
        "dead": counter("refdesk_events_consumed_total", outcome="dead_lettered"),
    }
    await produce(bootstrap, conv, records)
    async with running_router(settings):
        found = await decisions_of(bootstrap, conv, decided(first, binary_header, last))
        letters = await collect(
            bootstrap,
            f"{TOPIC}.dlq",
            until=lambda f: len(f) >= 3,
            where=lambda e: marker in (e.get("data") or {}).get("value", ""),
        )
        assert await committed_to_end(bootstrap, settings.router_group)
    assert [e["data"]["interaction_id"] for e in found] == [
        first.interaction_id,
        binary_header.interaction_id,
        last.interaction_id,
    ]
    reasons = sorted(d["data"]["reason"].split(":")[0] for d in letters)
    assert len(letters) == 3, reasons
    assert reasons == [
        "invalid edu.tccd.refdesk.interaction.received.v1 data",
        "not a CloudEvent",
        "not a CloudEvent",
    ]
    start = start_offsets[TopicPartition(TOPIC, letters[0]["data"]["partition"])]
    assert {d["data"]["offset"] for d in letters} == {start + 1, start + 2, start + 3}
    assert all(d["data"]["consumer_group"] == settings.router_group for d in letters)
    assert batches() - before["batches"] == 1, "the records did not arrive as one batch"
    dead = counter("refdesk_events_consumed_total", outcome="dead_lettered") - before["dead"]
    assert dead == 3


async def test_a_redelivered_batch_yields_one_decision_each(
    settings: RouterSettings, start_offsets: dict[Any, int], engine: AsyncEngine
) -> None:
    bootstrap, conv = settings.kafka_bootstrap, f"c-{uuid.uuid4().hex[:12]}"
    x = interaction("can i renew my book online", conv)
    y = interaction("I need a tutor for biology", conv)
    before = batches()
    await produce(bootstrap, conv, [record(x), record(y), record(x)])  # a repeat in the batch
    async with running_router(settings):
        await decisions_of(bootstrap, conv, decided(x, y))
        assert await committed_to_end(bootstrap, settings.router_group)
    assert batches() - before == 1, "the records did not arrive as one batch"

    # The same batch again (as after a crash before the offset commit): already recorded.
    await rewind(bootstrap, settings.router_group, start_offsets)
    z = interaction("how do I cite a website in MLA", conv)
    await produce(bootstrap, conv, [record(z)])
    async with running_router(settings):
        found = await decisions_of(bootstrap, conv, decided(z))
        assert await committed_to_end(bootstrap, settings.router_group)
    assert [e["data"]["interaction_id"] for e in found] == [
        x.interaction_id,
        y.interaction_id,
        z.interaction_id,
    ]
    commands = await read_to_end(bootstrap, "refdesk.notifications", where=of(conv))
    keys = {(c["data"]["interaction_id"], c["data"]["idempotency_key"]) for c in commands}
    # y and z are follow-ups of x's conversation: x's hand-off is the only one
    assert {i for i, _ in keys} == {x.interaction_id}
    assert [e["data"]["follow_up"] for e in found] == [False, True, True]
    assert len(commands) == len(keys), "a redelivered interaction was commanded twice"

    # Published but not recorded (a crash between the acks and the processed rows' commit):
    # the batch is published again with the same decision ids and idempotency keys.
    # (the conversation's row commits with the processed rows, so it goes too)
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(processed).where(
                processed.c.event_id.in_([x.interaction_id, y.interaction_id])
            )
        )
        await conn.execute(sa.delete(conversations).where(conversations.c.conversation_id == conv))
    await rewind(bootstrap, settings.router_group, start_offsets)
    w = interaction("HOURS", conv)
    await produce(bootstrap, conv, [record(w)])
    async with running_router(settings):
        again = await decisions_of(bootstrap, conv, decided(w))
        repeated = await collect(
            bootstrap,
            "refdesk.notifications",
            where=of(conv),
            until=lambda f: w.interaction_id in {c["data"]["interaction_id"] for c in f},
        )
    assert [e["data"]["interaction_id"] for e in again] == [
        x.interaction_id,
        y.interaction_id,
        z.interaction_id,
        x.interaction_id,
        y.interaction_id,
        w.interaction_id,
    ]
    ids: dict[str, set[str]] = {}
    for e in again:
        ids.setdefault(e["data"]["interaction_id"], set()).add(e["data"]["decision_id"])
    assert ids == {i: {derived_id(i, "decision")} for i in ids}
    again_keys = {
        (c["data"]["interaction_id"], c["data"]["idempotency_key"])
        for c in repeated
        if c["data"]["interaction_id"] != w.interaction_id
    }
    assert again_keys == keys
    copies = [
        c for c in repeated if c["data"]["interaction_id"] in (x.interaction_id, y.interaction_id)
    ]
    assert len(copies) == 2 * len({k for k in keys if k[0] != z.interaction_id})


async def test_one_conversation_in_one_batch_keeps_its_order_and_one_after_hours_ack(
    settings: RouterSettings, start_offsets: dict[Any, int]
) -> None:
    bootstrap, conv = settings.kafka_bootstrap, f"c-{uuid.uuid4().hex[:12]}"
    first = interaction("can i renew my book online", conv, when=OVERNIGHT)
    # a follow-up: no second hand-off or acknowledgement, but a circulation email (it names
    # an item), so both interactions have commands whose order can be checked
    second = interaction(
        "also I lost the library book Beloved", conv, when=OVERNIGHT + timedelta(minutes=3)
    )
    closed = ConversationClosed(
        conversation_id=conv,
        channel=Channel.SMS,
        closed_at=OVERNIGHT + timedelta(minutes=5),
        patron_contact="+18175550123",
    )
    before = batches()
    await produce(bootstrap, conv, [record(first), record(second), record(closed)])
    async with running_router(settings):
        found = await decisions_of(bootstrap, conv, decided(first, second))
        commands = await collect(
            bootstrap,
            "refdesk.notifications",
            where=of(conv),
            until=lambda f: any(c["data"]["kind"] == "survey" for c in f),
        )
    assert batches() - before == 1, "the records did not arrive as one batch"
    assert [e["data"]["interaction_id"] for e in found] == [
        first.interaction_id,
        second.interaction_id,
    ]
    assert all(e["data"]["overnight"] for e in found)
    # what was published for the conversation follows the order it was received in (the
    # close's survey carries no interaction id)
    received = [first.interaction_id, second.interaction_id, None]
    order = [c["data"].get("interaction_id") for c in commands]
    assert order == sorted(order, key=received.index) and set(order) == set(received)
    assert commands[-1]["data"]["kind"] == "survey"
    acks = [c["data"] for c in commands if c["data"]["kind"] == "after_hours_ack"]
    assert {a["interaction_id"] for a in acks} == {first.interaction_id}
    assert {a["idempotency_key"] for a in acks} == {derived_id(conv, "after-hours-ack")}
    [email] = [c["data"] for c in commands if c["data"]["kind"] == "circulation_email"]
    assert email["interaction_id"] == second.interaction_id


async def test_a_failing_database_redelivers_the_batch_uncommitted(
    settings: RouterSettings, start_offsets: dict[Any, int], engine: AsyncEngine
) -> None:
    bootstrap, conv = settings.kafka_bootstrap, f"c-{uuid.uuid4().hex[:12]}"
    x = interaction("can i renew my book online", conv)
    name = processed.name
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"ALTER TABLE {name} RENAME TO {name}_away"))
    retried = batches("retried")
    await produce(bootstrap, conv, [record(x)])
    async with running_router(settings):
        for _ in range(150):
            if batches("retried") > retried:
                break
            await asyncio.sleep(0.2)
        assert batches("retried") > retried, "the failing batch was never retried"
        assert await group_offsets(bootstrap, settings.router_group) == start_offsets
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"ALTER TABLE {name}_away RENAME TO {name}"))
        await decisions_of(bootstrap, conv, decided(x))
        assert await committed_to_end(bootstrap, settings.router_group)
    found = await read_to_end(bootstrap, "refdesk.routing", where=of(conv))
    assert [e["data"]["interaction_id"] for e in found] == [x.interaction_id]


async def test_recording_tolerates_rows_another_replica_wrote(engine: AsyncEngine) -> None:
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:  # another replica recorded `theirs` after our lookup
        await conn.execute(
            sa.insert(processed).values(consumer=CONSUMER, event_id=theirs, processed_at=earlier)
        )
    async with engine.begin() as conn:
        await conn.run_sync(record_processed, processed, CONSUMER, [ours, theirs, ours])
    async with engine.connect() as conn:
        assert await conn.run_sync(
            processed_among, processed, CONSUMER, [ours, theirs, "other"]
        ) == {
            ours,
            theirs,
        }
        rows = (
            await conn.execute(
                sa.select(processed.c.event_id, processed.c.processed_at).where(
                    processed.c.event_id == theirs
                )
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].processed_at.replace(tzinfo=UTC) == earlier  # the replica's row is kept
