"""`refdesk redrive TOPIC.dlq`: put dead letters back on the topic they came from, once the
cause is fixed (docs/operations.md, "Dead letters").

Each letter of the DLQ is read (from its first record to its end when the command starts) and
judged with the consumers' own decoder, the one this release runs:

- a record this release decodes (a handler that failed on it 4 times, since fixed; a type or
  field an older release did not know) is published again to its topic, under its key (so to
  its partition) and with its CloudEvent id: a consumer that applied it already drops it, so a
  letter redriven twice is applied once;
- a record this release would refuse as well (not JSON, not a CloudEvent, invalid data) stays
  where it is, with the reason it would be refused now: publishing it would only dead-letter
  it again;
- a notification the notifier gave up on (its relay or provider refused it for a day) is no
  record of the topic: it stays too, and its conversation shows it for staff to send again;
- a letter whose bytes were not UTF-8 holds a copy with replacement characters, not the
  original, and stays.

A dry run by default; `--execute` publishes (acks=all, idempotent) and returns once the broker
acknowledged every record; a record several consumer groups refused (one letter each) goes
back once. The letters stay in the DLQ until they expire (Kafka deletes nothing on demand): a
second `--execute` publishes them again, and every consumer drops what it applied.

Letters are chosen by where the original was read (`--at PARTITION:OFFSET`, as the consumer's
ERROR log names it), by when they failed (`--since`) or by their reason (`--reason`); with
none of these, every letter of the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.consumer import PoisonMessage, decode
from shared.events import DeadLetter
from shared.kafka import CONTENT_TYPE, partition_of

REPLACEMENT = "\ufffd"
DLQ_SUFFIX = ".dlq"


class RedriveRefused(Exception):
    """The redrive cannot be done as asked (said in words for the operator)."""


@dataclass(frozen=True)
class Letter:
    """One dead letter and what a redrive does with it."""

    dlq_partition: int
    dlq_offset: int
    letter: DeadLetter | None
    """None: the DLQ record is no dead letter this release can read."""
    verdict: str
    """`redrive`, or why the letter stays."""

    @property
    def redrives(self) -> bool:
        return self.verdict == "redrive"

    @property
    def origin(self) -> str:
        """Where the original record was read: `partition:offset`."""
        if self.letter is None or self.letter.partition < 0:
            return "-"
        return f"{self.letter.partition}:{self.letter.offset}"


def origin_topic(dlq: str) -> str:
    """The topic whose letters `dlq` holds (RedriveRefused for a name that is no DLQ's)."""
    if not dlq.endswith(DLQ_SUFFIX) or dlq == DLQ_SUFFIX:
        raise RedriveRefused(f"{dlq!r} is no dead-letter topic (<topic>{DLQ_SUFFIX})")
    return dlq.removesuffix(DLQ_SUFFIX)


def judge(raw: bytes | None, topic: str) -> tuple[DeadLetter | None, str]:
    """The letter in a DLQ record of `topic`'s, and `redrive` or why it stays."""
    try:
        _, data = decode(raw or b"")
    except PoisonMessage:
        return None, "not a dead letter this release can read"
    if not isinstance(data, DeadLetter):
        return None, "not a dead letter this release can read"
    if data.partition < 0:
        return data, "given up by the notifier: staff send it again from its conversation"
    if data.topic != topic:
        return data, f"read from {data.topic}, not {topic}"
    if REPLACEMENT in data.value:
        return data, "its bytes were not UTF-8: the letter holds an altered copy"
    try:
        decode(data.value.encode())
    except PoisonMessage as exc:
        return data, f"this release refuses it too ({exc})"
    return data, "redrive"


def parse_at(values: Collection[str]) -> set[tuple[int, int]]:
    """`PARTITION:OFFSET` strings as pairs (ValueError naming a malformed one)."""
    found = set()
    for value in values:
        partition, sep, offset = value.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise ValueError(f"{value!r} is no PARTITION:OFFSET such as 2:1534")
        found.add((int(partition), int(offset)))
    return found


def chosen(
    item: Letter, at: set[tuple[int, int]], since: datetime | None, reason: str | None
) -> bool:
    """Whether the operator's selectors pick this letter (every letter when none is given)."""
    letter = item.letter
    if letter is None:
        return not at and since is None and reason is None
    if at and (letter.partition, letter.offset) not in at:
        return False
    if since is not None and letter.failed_at < since:
        return False
    return reason is None or reason.casefold() in letter.reason.casefold()


async def dlq_partitions(bootstrap: str, dlq: str) -> list[TopicPartition]:
    """The DLQ's partitions (RedriveRefused when the broker has no such DLQ or no topic it
    would go back to)."""
    topic = origin_topic(dlq)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = {t["topic"]: t for t in await admin.describe_topics([dlq, topic])}
    finally:
        await admin.close()
    for name in (dlq, topic):
        if name not in found or found[name]["error_code"] != 0:
            raise RedriveRefused(f"the broker has no topic {name!r}")
    return [TopicPartition(dlq, p["partition"]) for p in found[dlq]["partitions"]]


async def read_letters(bootstrap: str, dlq: str) -> list[Letter]:
    """Every record of the DLQ up to its end when called, judged."""
    topic = origin_topic(dlq)
    assigned = await dlq_partitions(bootstrap, dlq)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp: end for tp, end in ends.items() if end > await consumer.position(tp)}
        letters: list[Letter] = []
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    letter, verdict = judge(record.value, topic)
                    letters.append(Letter(tp.partition, record.offset, letter, verdict))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.pop(tp, None)
        return sorted(letters, key=lambda item: (item.dlq_partition, item.dlq_offset))
    finally:
        await consumer.stop()


def once_each(letters: list[Letter]) -> list[Letter]:
    """One letter per original record: a record every consumer group refused is a letter of
    each group's, and goes back once."""
    seen: set[tuple[int, int]] = set()
    kept = []
    for item in letters:
        assert item.letter is not None
        place = (item.letter.partition, item.letter.offset)
        if place not in seen:
            seen.add(place)
            kept.append(item)
    return kept


async def publish(bootstrap: str, topic: str, letters: list[Letter]) -> None:
    """Publish the letters' originals to their topic, under their keys, with the headers
    refdesk's producers give a CloudEvent; return once the broker acknowledged all of them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        partitioner=partition_of,
    )
    await producer.start()
    try:
        futures = []
        for item in once_each(letters):
            assert item.letter is not None  # only letters judged `redrive`
            value = item.letter.value.encode()
            event = json.loads(value)
            headers = [
                ("content-type", CONTENT_TYPE.encode()),
                ("ce_type", str(event["type"]).encode()),
                ("ce_id", str(event["id"]).encode()),
            ]
            key = item.letter.key.encode() if item.letter.key else None
            futures.append(await producer.send(topic, value, key=key, headers=headers))
        for future in futures:
            await future
    finally:
        await producer.stop()


async def redrive(
    bootstrap: str,
    dlq: str,
    *,
    at: Collection[str] = (),
    since: datetime | None = None,
    reason: str | None = None,
    execute: bool,
) -> list[Letter]:
    """The chosen letters, each with its verdict; with `execute`, those judged `redrive` are
    on their topic again when this returns."""
    try:
        places = parse_at(at)
    except ValueError as exc:
        raise RedriveRefused(str(exc)) from None
    try:
        found = await read_letters(bootstrap, dlq)
    except KafkaError as exc:
        raise RedriveRefused(
            f"cannot read {dlq} from Kafka at {bootstrap}: {type(exc).__name__}"
        ) from None
    letters = [item for item in found if chosen(item, places, since, reason)]
    try:
        if execute:
            await publish(bootstrap, origin_topic(dlq), [item for item in letters if item.redrives])
    except KafkaError as exc:
        raise RedriveRefused(f"Kafka at {bootstrap} failed: {type(exc).__name__}") from None
    return letters
