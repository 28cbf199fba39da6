"""The projector's subscriber: one refdesk batch subscriber over its three topics, with Range
assignment first (a conversation's partitions of each topic on one replica), and each decoded
record placed by its own topic, partition and offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber

from services.publisher import projector
from services.publisher.settings import PublisherSettings
from shared.consumer import PoisonMessage
from shared.events import PresenceChanged, StaffStatus, new_event
from shared.topics import INTERACTIONS, PRESENCE, ROUTING
from tests.fakes import secret_like


def test_the_projector_reads_its_topics_as_one_batch_subscriber_range_first() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    settings = PublisherSettings(
        env="production", public_hash_key=secret_like("hash"), admin_token=secret_like("admin")
    )
    projector.register(broker, settings, sessions=None)  # type: ignore[arg-type]
    (subscriber,) = broker.subscribers
    assert isinstance(subscriber, BatchSubscriber)
    assert {t.name for t in subscriber.topics} == {INTERACTIONS.name, ROUTING.name, PRESENCE.name}
    # FastStream keeps the consumer's arguments here until it builds the aiokafka consumer
    args: dict[str, Any] = subscriber._connection_args
    assert tuple(args["partition_assignment_strategy"]) == (
        RangePartitionAssignor,
        RoundRobinPartitionAssignor,
    )
    assert (args["fetch_min_bytes"], args["fetch_max_wait_ms"]) == (64 * 1024, 250)
    assert (subscriber.max_records, subscriber.batch_timeout_ms) == (500, 200)


def record(offset: int, body: bytes) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(PRESENCE.name, 3, offset, 0, 0, b"ana", body, None, 3, len(body), [])


def test_an_item_says_where_its_own_record_was_read() -> None:
    data = PresenceChanged(
        staff_id="ana",
        status=StaffStatus.ONLINE,
        departments=["reference"],
        changed_at=datetime(2026, 1, 5, 15, tzinfo=UTC),
    )
    body = new_event(data, source="test").model_dump_json().encode()
    item = projector.decode_item(record(41, body))
    assert (item.topic, item.partition, item.offset) == (PRESENCE.name, 3, 41)
    assert item.data == data


def test_a_record_that_is_no_event_is_poison() -> None:
    with pytest.raises(PoisonMessage):
        projector.decode_item(record(42, b"{not json"))
