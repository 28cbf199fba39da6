"""`refdesk redrive` on a real broker: dead letters written by the consumers' own
`dead_letter_record` go back to their topic when this release decodes them, under their key
and CloudEvent id, and stay (with why) when it would refuse them again (docs/operations.md,
"Dead letters")."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from typer.testing import CliRunner

from refdesk_cli.main import app
from refdesk_cli.redrive import RedriveRefused, redrive
from shared.events import ConversationTagged, DeadLetter, new_event
from shared.kafka import dead_letter_record, publish

PARTITIONS = 3


def tagged(conversation_id: str) -> bytes:
    """A valid CloudEvent of the desk's, as a producer of refdesk's writes it."""
    data = ConversationTagged(
        conversation_id=conversation_id, staff_id="lib1", read_scale=2, at=datetime.now(UTC)
    )
    return new_event(data, source="/refdesk/status").model_dump_json().encode()


async def records_of(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic, in partition then offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        assigned = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        found: list[Any] = []
        while len(found) < sum(ends.values()):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(records)
        return sorted(found, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def given_dead_letters(bootstrap: str) -> tuple[str, dict[str, Any]]:
    """A topic and its DLQ holding: a valid event a handler failed on (fixed since), a record
    that is no JSON, one whose bytes are no UTF-8, and a notification the notifier gave up on.
    Returns the topic and the originals by name."""
    topic = f"redrive-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, PARTITIONS, 1), NewTopic(f"{topic}.dlq", PARTITIONS, 1)]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = {
            "failed": await producer.send_and_wait(topic, tagged("c-1"), key=b"c-1"),
            "not json": await producer.send_and_wait(topic, b"{oops", key=b"c-2"),
            "not utf-8": await producer.send_and_wait(topic, b'{"x": "\xff"}', key=b"c-3"),
        }
    finally:
        await producer.stop()
    originals = {r.key.decode(): r for r in await records_of(bootstrap, topic)}
    reasons = {
        "c-1": "the handler failed on it 4 times: OperationalError",
        "c-2": "not a CloudEvent: <root>: Invalid JSON",
        "c-3": "not a CloudEvent: <root>: Invalid JSON",
    }
    broker = KafkaBroker(bootstrap)
    await broker.start()
    try:
        for key, record in originals.items():
            await dead_letter_record(
                broker, record, reason=reasons[key], group="refdesk-status", source="/refdesk/test"
            )
        given_up = DeadLetter(
            topic=topic,
            partition=-1,
            offset=-1,
            key="c-4",
            value='{"kind": "staff_reply"}',
            reason="retries exhausted after 20: relay down",
            consumer_group="refdesk-notifier",
            failed_at=datetime.now(UTC),
        )
        await publish(broker, f"{topic}.dlq", given_up, key="c-4", source="/refdesk/notifier")
    finally:
        await broker.stop()
    assert {m.topic for m in sent.values()} == {topic}
    return topic, originals


async def test_a_dry_run_judges_every_letter_and_publishes_nothing(kafka_bootstrap: str) -> None:
    topic, _ = await given_dead_letters(kafka_bootstrap)
    letters = await redrive(kafka_bootstrap, f"{topic}.dlq", execute=False)
    verdicts = {item.letter.key: item.verdict for item in letters if item.letter is not None}
    assert verdicts["c-1"] == "redrive"
    assert verdicts["c-2"].startswith("this release refuses it too (not a CloudEvent")
    assert verdicts["c-3"] == "its bytes were not UTF-8: the letter holds an altered copy"
    assert verdicts["c-4"].startswith("given up by the notifier")
    assert len(await records_of(kafka_bootstrap, topic)) == 3  # nothing added


async def test_execute_puts_the_decodable_letter_back_as_it_was(kafka_bootstrap: str) -> None:
    topic, originals = await given_dead_letters(kafka_bootstrap)
    letters = await redrive(kafka_bootstrap, f"{topic}.dlq", execute=True)
    assert sum(item.redrives for item in letters) == 1
    records = await records_of(kafka_bootstrap, topic)
    assert len(records) == 4
    original = originals["c-1"]
    again = next(r for r in records if r.key == b"c-1" and r.offset != original.offset)
    assert again.value == original.value  # the same bytes, so the same CloudEvent id
    assert again.partition == original.partition  # its key's partition, as refdesk's producers
    headers = dict(again.headers)
    assert headers["ce_type"] == b"edu.tccd.refdesk.desk.tagged.v1"
    assert headers["content-type"] == b"application/cloudevents+json"
    assert headers["ce_id"].decode() in original.value.decode()


async def test_letters_are_chosen_by_place_time_and_reason(kafka_bootstrap: str) -> None:
    topic, originals = await given_dead_letters(kafka_bootstrap)
    dlq = f"{topic}.dlq"
    failed = originals["c-1"]
    by_place = await redrive(
        kafka_bootstrap, dlq, at=[f"{failed.partition}:{failed.offset}"], execute=False
    )
    assert [item.letter.key for item in by_place if item.letter] == ["c-1"]
    by_reason = await redrive(kafka_bootstrap, dlq, reason="RETRIES EXHAUSTED", execute=False)
    assert [item.letter.key for item in by_reason if item.letter] == ["c-4"]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await redrive(kafka_bootstrap, dlq, since=later, execute=False) == []
    with pytest.raises(RedriveRefused, match="no PARTITION:OFFSET"):
        await redrive(kafka_bootstrap, dlq, at=["2-1534"], execute=False)
    with pytest.raises(RedriveRefused, match="no dead-letter topic"):
        await redrive(kafka_bootstrap, topic, execute=False)
    with pytest.raises(RedriveRefused, match="has no topic"):
        await redrive(kafka_bootstrap, "refdesk.nothing-here.dlq", execute=False)


async def test_the_command_shows_the_letters_and_publishes_only_with_execute(
    kafka_bootstrap: str,
) -> None:
    topic, _ = await given_dead_letters(kafka_bootstrap)
    args = ["redrive", f"{topic}.dlq", "--kafka", kafka_bootstrap]
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, app, args)
    assert shown.exit_code == 0, shown.output
    assert "1 to redrive (dry run" in shown.output and "handler failed" in shown.output
    assert len(await records_of(kafka_bootstrap, topic)) == 3
    done = await asyncio.to_thread(runner.invoke, app, [*args, "--execute"])
    assert done.exit_code == 0, done.output
    assert "1 published again" in done.output
    assert len(await records_of(kafka_bootstrap, topic)) == 4
    naive = await asyncio.to_thread(runner.invoke, app, [*args, "--since", "2026-12-06T14:00"])
    assert naive.exit_code == 2 and "with its zone" in naive.output
    refused = await asyncio.to_thread(runner.invoke, app, ["redrive", topic, "--kafka", "x:1"])
    assert refused.exit_code == 1 and "no dead-letter topic" in refused.output


async def test_a_record_every_group_refused_goes_back_once(kafka_bootstrap: str) -> None:
    """Each consumer group dead-letters a record it could not process: the letters of one
    original (the same partition and offset) put it back once, not once per group."""
    topic, originals = await given_dead_letters(kafka_bootstrap)
    failed = originals["c-1"]
    broker = KafkaBroker(kafka_bootstrap)
    await broker.start()
    try:
        await dead_letter_record(
            broker,
            failed,
            reason="the handler failed on it 4 times: OperationalError",
            group="refdesk-router",
            source="/refdesk/test",
        )
    finally:
        await broker.stop()
    letters = await redrive(kafka_bootstrap, f"{topic}.dlq", execute=True)
    assert sum(item.redrives for item in letters) == 2  # one letter per group
    again = [r for r in await records_of(kafka_bootstrap, topic) if r.key == b"c-1"]
    assert len(again) == 2  # the original and one copy
    with pytest.raises(RedriveRefused, match="cannot read"):
        await redrive("127.0.0.1:1", f"{topic}.dlq", execute=False)
