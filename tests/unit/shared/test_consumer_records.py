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

from shared.consumer import Guard, PoisonMessage, batch_subscriber, decode
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
