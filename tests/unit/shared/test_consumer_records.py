"""The Guard can hand a decoder the whole record (where it was read from), and a batch
subscriber shares partitions the way it is told (round robin unless told otherwise)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from faststream.kafka import KafkaBroker

from shared.consumer import (
    ISOLATE_AFTER,
    Guard,
    PoisonMessage,
    TransientFailure,
    batch_subscriber,
    decode,
)
from shared.events import (
    TYPE_OF,
    Channel,
    ConversationClosed,
    InteractionReceived,
    Patron,
    PresenceChanged,
    StaffStatus,
    new_event,
)

AT = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def record(offset: int, body: bytes, *, ce_type: str | None = None) -> ConsumerRecord[Any, Any]:
    headers = [("ce_type", ce_type.encode())] if ce_type else []
    return ConsumerRecord("refdesk.test", 2, offset, 0, 0, b"k", body, None, 1, len(body), headers)


def presence(staff: str) -> bytes:
    data = PresenceChanged(staff_id=staff, status=StaffStatus.ONLINE, departments=[], changed_at=AT)
    return new_event(data, source="test").model_dump_json().encode()


def where(rec: ConsumerRecord[Any, Any]) -> tuple[int, str]:
    """What a record decoder returns here: its offset and the staff id it carries."""
    _event, data = decode(rec.value or b"")
    assert isinstance(data, PresenceChanged)
    return rec.offset, data.staff_id


async def test_a_record_decoder_reads_each_records_own_offset_past_skipped_ones() -> None:
    """Records passed over by type are never decoded, so counting calls would misplace the
    rest; the record decoder reads the offset from the record itself."""
    closed = TYPE_OF[ConversationClosed]
    batch = (
        record(10, b"not read", ce_type=closed),
        record(11, presence("ana"), ce_type=TYPE_OF[PresenceChanged]),
        record(12, b"also not read", ce_type=closed),
        record(13, presence("bo")),
    )
    dispatched: list[Any] = []

    async def dispatch(items: list[Any]) -> None:
        dispatched.extend(items)

    guard = Guard(KafkaBroker("127.0.0.1:1"), group="g", source="test", retry_pause_s=0)
    msg: Any = SimpleNamespace(raw_message=batch)
    await guard.batch(
        msg, dispatch, types=frozenset({TYPE_OF[PresenceChanged]}), record_decoder=where
    )
    assert dispatched == [(11, "ana"), (13, "bo")]


async def test_a_poison_record_stays_poison_with_a_record_decoder(monkeypatch: Any) -> None:
    letters: list[tuple[int, str]] = []

    async def dead_letter(_broker: Any, rec: Any, *, reason: str, **_kw: Any) -> None:
        letters.append((rec.offset, reason))

    monkeypatch.setattr("shared.consumer.dead_letter_record", dead_letter)

    def strict(rec: ConsumerRecord[Any, Any]) -> int:
        if rec.offset == 21:
            raise PoisonMessage("bad")
        return int(rec.offset)

    dispatched: list[Any] = []

    async def dispatch(items: list[Any]) -> None:
        dispatched.extend(items)

    guard = Guard(KafkaBroker("127.0.0.1:1"), group="g", source="test", retry_pause_s=0)
    msg: Any = SimpleNamespace(raw_message=(record(20, b"a"), record(21, b"b"), record(22, b"c")))
    await guard.batch(msg, dispatch, record_decoder=strict)
    assert dispatched == [20, 22]
    assert letters == [(21, "bad")]


def strategy(broker: KafkaBroker) -> Any:
    (registered,) = broker.subscribers
    subscriber: Any = registered
    # FastStream keeps the consumer's arguments here until it builds the aiokafka consumer
    return subscriber._connection_args["partition_assignment_strategy"]


def test_a_batch_subscriber_assigns_round_robin_unless_told() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    batch_subscriber(broker, "refdesk.test", group_id="g", max_records=7, wait_ms=30)(_handler)
    assert tuple(strategy(broker)) == (RoundRobinPartitionAssignor,)


def test_a_batch_subscriber_takes_the_strategy_it_is_given() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    wanted = (RangePartitionAssignor, RoundRobinPartitionAssignor)
    batch_subscriber(
        broker,
        "refdesk.test",
        group_id="g",
        max_records=7,
        wait_ms=30,
        partition_assignment_strategy=wanted,
    )(_handler)
    assert tuple(strategy(broker)) == wanted


async def _handler(_msg: Any) -> None:
    return None


def test_a_field_this_version_does_not_know_is_read_past_not_dead_lettered() -> None:
    """A newer service may publish an additive change (a new optional field, nested ones
    included): an older consumer reads the event and ignores the field, as docs/subscribing.md
    asks of every consumer, instead of sending it to the DLQ during a rolling upgrade."""
    received = InteractionReceived(
        interaction_id="i-1",
        conversation_id="sms-1",
        channel=Channel.SMS,
        provider="twilio",
        patron=Patron(contact="+18175550123"),
        text="can i renew my book",
        received_at=AT,
        provider_message_id="SM" + "0" * 32,
    )
    body = json.loads(new_event(received, source="test").model_dump_json())
    body["data"]["automated"] = True  # a field a later version might add
    body["data"]["patron"]["pronouns"] = "she/her"
    _event, data = decode(json.dumps(body).encode())
    assert isinstance(data, InteractionReceived)
    assert data == received
    # what is not an additive change is still poison: a field of the wrong type
    body["data"]["received_at"] = "not a time"
    with pytest.raises(PoisonMessage, match="invalid"):
        decode(json.dumps(body).encode())


class Handler:
    """A dispatch that fails on the items it is told to, with the error it is told to."""

    def __init__(self, bad: set[int], error: type[Exception]) -> None:
        self.bad, self.error, self.done, self.calls = bad, error, [], 0

    async def __call__(self, items: list[Any]) -> None:
        self.calls += 1
        if self.bad & set(items):
            raise self.error("no")
        self.done.extend(items)


async def run_until_settled(guard: Guard, batch: tuple[Any, ...], handler: Handler) -> int:
    """Redeliver the batch as the subscriber would until it returns; the tries it took."""
    msg: Any = SimpleNamespace(raw_message=batch)
    for tries in range(1, 20):
        try:
            await guard.batch(msg, handler, record_decoder=lambda rec: int(rec.offset))
            return tries
        except TransientFailure:
            continue
    raise AssertionError("the batch never settled")


async def test_a_record_its_handler_cannot_process_goes_to_the_dlq_and_the_rest_go_on(
    monkeypatch: Any,
) -> None:
    """An OverflowError on one record (a year-9999 date did this) used to be retried forever,
    holding its partition; after ISOLATE_AFTER tries the records go one by one."""
    letters: list[tuple[int, str]] = []

    async def dead_letter(_broker: Any, rec: Any, *, reason: str, **_kw: Any) -> None:
        letters.append((rec.offset, reason))

    monkeypatch.setattr("shared.consumer.dead_letter_record", dead_letter)
    guard = Guard(KafkaBroker("127.0.0.1:1"), group="g", source="test", retry_pause_s=0)
    handler = Handler({31}, OverflowError)
    batch = (record(30, b"a"), record(31, b"b"), record(32, b"c"))
    tries = await run_until_settled(guard, batch, handler)
    assert tries == ISOLATE_AFTER + 1
    assert handler.done == [30, 32]
    assert letters == [(31, f"the handler failed on it {ISOLATE_AFTER + 1} times: OverflowError")]
    # settled: the next batch with those offsets starts counting again
    assert await run_until_settled(guard, (record(30, b"a"),), Handler(set(), ValueError)) == 1


@pytest.mark.parametrize("error", [ConnectionError, TimeoutError, RuntimeError])
async def test_a_failure_that_may_pass_is_retried_and_never_dead_lettered(
    monkeypatch: Any, error: type[Exception]
) -> None:
    """A database or broker that is down fails every record: nothing is given up on."""
    letters: list[int] = []

    async def dead_letter(_broker: Any, rec: Any, **_kw: Any) -> None:
        letters.append(rec.offset)

    monkeypatch.setattr("shared.consumer.dead_letter_record", dead_letter)
    guard = Guard(KafkaBroker("127.0.0.1:1"), group="g", source="test", retry_pause_s=0)
    msg: Any = SimpleNamespace(raw_message=(record(40, b"a"),))
    handler = Handler({40}, error)
    for _ in range(3 * ISOLATE_AFTER):
        with pytest.raises(TransientFailure):
            await guard.batch(msg, handler, record_decoder=lambda rec: int(rec.offset))
    assert letters == []
    assert handler.calls == 3 * ISOLATE_AFTER


async def test_a_dead_letter_counts_under_its_own_topic_in_a_batch_of_several(
    monkeypatch: Any,
) -> None:
    """Ingest subscribes to two topics: every dead letter of a batch counted under the topic of
    its first record."""
    from prometheus_client import REGISTRY

    async def dead_letter(_broker: Any, _rec: Any, **_kw: Any) -> None:
        return None

    monkeypatch.setattr("shared.consumer.dead_letter_record", dead_letter)

    def strict(rec: ConsumerRecord[Any, Any]) -> int:
        if rec.topic == "refdesk.test-b":
            raise PoisonMessage("bad")
        return int(rec.offset)

    def count(topic: str) -> float:
        return REGISTRY.get_sample_value("refdesk_dead_letters_total", {"topic": topic}) or 0.0

    other = ConsumerRecord("refdesk.test-b", 0, 7, 0, 0, b"k", b"x", None, 1, 1, [])
    before = count("refdesk.test"), count("refdesk.test-b")
    guard = Guard(KafkaBroker("127.0.0.1:1"), group="g", source="test", retry_pause_s=0)
    msg: Any = SimpleNamespace(raw_message=(record(40, b"a"), other))
    await guard.batch(msg, Handler(set(), ValueError), record_decoder=strict)
    assert (count("refdesk.test") - before[0], count("refdesk.test-b") - before[1]) == (0, 1)
