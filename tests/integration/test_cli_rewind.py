"""`refdesk rewind` on a real broker: a restored service's group goes back to the restore
point (docs/operations.md, "A restore and Kafka's offsets"), as Kafka's own
`kafka-consumer-groups.sh --reset-offsets --to-datetime` would, which a `make run` deployment
does not have."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from refdesk_cli.main import app
from refdesk_cli.rewind import RewindRefused, rewind

T0 = 1_780_000_000_000  # ms: the records' own times, one minute apart


async def given_topic(bootstrap: str, group: str) -> str:
    """Two partitions of three records each, read and committed to the end by `group`."""
    topic = f"rewind-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for minute in range(3):
            for partition in (0, 1):
                await producer.send_and_wait(
                    topic, b"x", partition=partition, timestamp_ms=T0 + minute * 60_000
                )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 3))
    finally:
        await consumer.stop()
    return topic


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


async def committed(bootstrap: str, group: str, topic: str) -> list[int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()
        return [await consumer.committed(TopicPartition(topic, p)) for p in (0, 1)]
    finally:
        await consumer.stop()


async def test_a_group_goes_back_to_the_first_record_at_or_after_the_time(
    kafka_bootstrap: str,
) -> None:
    group = f"refdesk-test-{uuid.uuid4().hex[:6]}"
    topic = await given_topic(kafka_bootstrap, group)
    seen = await rewind(kafka_bootstrap, group, [topic], at(T0 + 30_000), execute=False)
    assert [(m.partition, m.committed, m.target) for m in seen] == [(0, 3, 1), (1, 3, 1)]
    assert await committed(kafka_bootstrap, group, topic) == [3, 3]  # a dry run changes nothing
    await rewind(kafka_bootstrap, group, [topic], at(T0 + 30_000), execute=True)
    assert await committed(kafka_bootstrap, group, topic) == [1, 1]
    # a time after the records the group has not processed yet: it stays, skipping none (it
    # had moved the group forward past them, an operator's review)
    ahead = await rewind(kafka_bootstrap, group, [topic], at(T0 + 90_000), execute=True)
    assert [(m.committed, m.target) for m in ahead] == [(1, 1), (1, 1)]
    assert await committed(kafka_bootstrap, group, topic) == [1, 1]
    # a group at the end, to a time after the newest record: the end, nothing replayed
    other = f"refdesk-test-{uuid.uuid4().hex[:6]}"
    topic = await given_topic(kafka_bootstrap, other)
    await rewind(kafka_bootstrap, other, [topic], at(T0 + 600_000), execute=True)
    assert await committed(kafka_bootstrap, other, topic) == [3, 3]


async def test_a_group_that_never_committed_is_refused_as_a_likely_typo(
    kafka_bootstrap: str,
) -> None:
    topic = await given_topic(kafka_bootstrap, f"refdesk-test-{uuid.uuid4().hex[:6]}")
    with pytest.raises(RewindRefused, match="committed no offset"):
        await rewind(kafka_bootstrap, "refdesk-stauts", [topic], at(T0), execute=False)


async def test_a_group_with_a_running_member_is_refused(kafka_bootstrap: str) -> None:
    group = f"refdesk-test-{uuid.uuid4().hex[:6]}"
    topic = await given_topic(kafka_bootstrap, group)
    member = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group)
    await member.start()
    try:
        for _ in range(100):  # joined once it has partitions
            if member.assignment():
                break
            await asyncio.sleep(0.1)
        with pytest.raises(RewindRefused, match="stop every replica"):
            await rewind(kafka_bootstrap, group, [topic], at(T0), execute=True)
    finally:
        await member.stop()
    assert await committed(kafka_bootstrap, group, topic) == [3, 3]


async def test_the_command_shows_the_moves_and_commits_only_with_execute(
    kafka_bootstrap: str,
) -> None:
    group = f"refdesk-test-{uuid.uuid4().hex[:6]}"
    topic = await given_topic(kafka_bootstrap, group)
    args = ["rewind", "--kafka", kafka_bootstrap, "--group", group, "--topic", topic]
    when = at(T0 + 90_000).isoformat().replace("+00:00", "Z")
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, app, [*args, "--to", when])
    assert shown.exit_code == 0, shown.output
    assert "dry run" in shown.output and f"{topic}" in shown.output
    assert await committed(kafka_bootstrap, group, topic) == [3, 3]
    done = await asyncio.to_thread(runner.invoke, app, [*args, "--to", when, "--execute"])
    assert done.exit_code == 0, done.output
    assert await committed(kafka_bootstrap, group, topic) == [2, 2]
    naive = await asyncio.to_thread(runner.invoke, app, [*args, "--to", "2026-12-06T14:00:00"])
    assert naive.exit_code == 2 and "with its zone" in naive.output
