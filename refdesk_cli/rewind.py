"""`refdesk rewind`: move a consumer group's committed offsets back to a time, as Kafka's
`kafka-consumer-groups.sh --reset-offsets --to-datetime` does, for a restore of a service's
database (docs/operations.md) where Kafka's scripts are not at hand (`make run`, whose broker
is the jars alone).

Each partition of the named topics gets the offset of its first record at or after the time
(the end of the partition when none is that new), unless the group has not got that far: a
rewind never moves a group forward, past records it has not processed. The broker refuses the
commit while the group has members: every replica of the service must be stopped first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


class RewindRefused(Exception):
    """The rewind cannot be done as asked (said in words for the operator)."""


@dataclass(frozen=True)
class Move:
    """One partition's committed offset, before and after."""

    topic: str
    partition: int
    committed: int | None
    target: int


async def _layout(
    bootstrap: str, group: str, topics: list[str]
) -> tuple[int, list[TopicPartition]]:
    """How many members the group has, and the topics' partitions (RewindRefused naming an
    unknown topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
        members = sum(
            len(g["members"])
            for response in described
            for g in response.to_object()["groups"]
            if g["group"] == group
        )
        found = {t["topic"]: t for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()
    unknown = [t for t in topics if t not in found or found[t]["error_code"] != 0]
    if unknown:
        raise RewindRefused(f"no such topic: {', '.join(unknown)}")
    partitions = [
        TopicPartition(t, p["partition"])
        for t in topics
        for p in sorted(found[t]["partitions"], key=lambda p: p["partition"])
    ]
    return members, partitions


async def rewind(
    bootstrap: str, group: str, topics: list[str], to: datetime, *, execute: bool
) -> list[Move]:
    """Each partition's move to `to`; committed only with `execute`."""
    if to.tzinfo is None:
        raise RewindRefused("give the time with its zone, e.g. 2026-12-06T14:00:00Z")
    members, partitions = await _layout(bootstrap, group, topics)
    if execute and members:
        raise RewindRefused(
            f"the group {group} has members: stop every replica of its service first"
        )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        at_ms = int(to.timestamp() * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, at_ms))
        ends = await consumer.end_offsets(partitions)
        moves = []
        for tp in partitions:
            hit = found.get(tp)
            target = hit.offset if hit is not None else ends[tp]
            committed = await consumer.committed(tp)
            if committed is not None:
                target = min(target, committed)  # behind the time already: stays, skips nothing
            moves.append(Move(tp.topic, tp.partition, committed, target))
        if all(m.committed is None for m in moves):
            # a mistyped group would get offsets of its own while the real one stays put
            raise RewindRefused(
                f"the group {group} has committed no offset on these topics: check its name "
                "(refdesk's groups are refdesk-<service>, e.g. refdesk-status)"
            )
        if execute:
            try:
                await consumer.commit(
                    {TopicPartition(m.topic, m.partition): m.target for m in moves}
                )
            except KafkaError as exc:  # a member joined meanwhile, or the broker refused
                raise RewindRefused(f"the broker refused the new offsets: {exc}") from exc
        return moves
    finally:
        await consumer.stop()
