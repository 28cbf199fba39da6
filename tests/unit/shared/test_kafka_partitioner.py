"""The producers' partitioner: aiokafka's default (the Java client's murmur2), with each key's
hash remembered. A record must land where every other Kafka client would put its key."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from shared.kafka import build_broker, partition_of
from shared.settings import CommonSettings


def test_every_key_lands_where_the_default_partitioner_puts_it() -> None:
    rng = random.Random(7)
    default = DefaultPartitioner()
    for _ in range(3000):
        key = rng.randbytes(rng.randint(0, 70))
        partitions = list(range(rng.randint(1, 12)))
        expected = default(key, partitions, partitions)
        assert partition_of(key, partitions, partitions) == expected
        assert partition_of(key, partitions, partitions) == expected  # the remembered hash


def test_a_conversation_keeps_its_partition_and_ids_spread() -> None:
    partitions = [0, 1, 2]
    keys = [f"sms-{i:018x}".encode() for i in range(300)]
    first = [partition_of(k, partitions, partitions) for k in keys]
    assert [partition_of(k, partitions, partitions) for k in keys] == first
    assert set(first) == {0, 1, 2}


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert {partition_of(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
    assert partition_of(None, [0, 1, 2], []) in {0, 1, 2}


def test_the_services_producers_use_it() -> None:
    broker = build_broker(CommonSettings(), client_id="test")
    # FastStream hands these to AIOKafkaProducer when the broker connects
    assert broker._connection_kwargs["partitioner"] is partition_of
