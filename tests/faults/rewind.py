"""Rewind a stopped consumer group to the start of its topics (to rebuild a service's state).

    python -m tests.faults.rewind --bootstrap 127.0.0.1:9092 --group refdesk-status \\
        refdesk.interactions refdesk.routing

The same as Kafka's own `kafka-consumer-groups.sh --bootstrap-server ... --group refdesk-status
--topic refdesk.interactions --topic refdesk.routing --reset-offsets --to-earliest --execute`.
The group must have no running members (stop the service first).
"""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import topic_partitions


async def rewind(bootstrap: str, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Commit each partition's earliest retained offset for `group`; returns what was committed."""
    parts = await topic_partitions(bootstrap, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(parts)
        earliest = await consumer.beginning_offsets(parts)
        await consumer.commit(dict(earliest.items()))
    finally:
        await consumer.stop()
    return earliest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()
    done = asyncio.run(rewind(args.bootstrap, args.group, args.topics))
    for tp, offset in sorted(done.items()):
        print(f"{tp.topic} {tp.partition} -> {offset}")


if __name__ == "__main__":
    main()
