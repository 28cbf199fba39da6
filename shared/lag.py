"""Consumer lag per topic and group, exported as refdesk_consumer_lag_messages{topic,group}.

Each consuming service starts one LagExporter in its lifespan for the groups it owns. Every
`interval_s` it compares the topics' end offsets with the group's committed offsets; a
partition the group never committed counts from the partition's beginning (the subscribers
read from the earliest offset). Measuring is best-effort: a broker that does not answer
leaves the last values in place, and the next round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from shared.logs import REPEATING
from shared.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 15.0


async def measure(
    bootstrap: str, groups: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], int]:
    """Lag in messages per (topic, group) for the given group -> topics map.

    Both clients are closed on every path, a failed start included: a client made and never
    closed holds its connections and warns "Unclosed AIOKafkaConsumer" when collected, every
    round of a broker outage.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5_000
        )
        try:
            await admin.start()
            await consumer.start()
            return await _lags(admin, consumer, groups)
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def _lags(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, groups: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], int]:
    partitions: dict[str, list[TopicPartition]] = {}
    for topic in {t for topics in groups.values() for t in topics}:
        ids = await _partitions_of(consumer, topic)
        partitions[topic] = [TopicPartition(topic, p) for p in sorted(ids)]
    every = [tp for tps in partitions.values() for tp in tps]
    ends = await consumer.end_offsets(every) if every else {}
    starts = await consumer.beginning_offsets(every) if every else {}
    result: dict[tuple[str, str], int] = {}
    for group, topics in groups.items():
        committed = await admin.list_consumer_group_offsets(group)
        for topic in topics:
            total = 0
            for tp in partitions[topic]:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                total += max(0, ends[tp] - position)
            result[(topic, group)] = total
    return result


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """A topic's partition ids, asking the cluster for fresh metadata if it has none yet."""
    ids = consumer.partitions_for_topic(topic)
    if not ids:
        await consumer._client.force_metadata_update()  # no public call refreshes one topic
        ids = consumer.partitions_for_topic(topic)
    return set(ids or ())


class LagExporter:
    """A background task that keeps refdesk_consumer_lag_messages current for some groups."""

    def __init__(
        self,
        bootstrap: str,
        groups: Mapping[str, Sequence[str]],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        """Watch `groups` (group id -> topics it consumes) on the broker at `bootstrap`."""
        self.bootstrap = bootstrap
        self.groups = {group: tuple(topics) for group, topics in groups.items()}
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def update(self) -> None:
        """Measure once and set the gauge."""
        for (topic, group), lag in (await measure(self.bootstrap, self.groups)).items():
            CONSUMER_LAG.labels(topic=topic, group=group).set(lag)

    async def _run(self) -> None:
        while True:
            try:
                await self.update()
            except Exception as exc:  # the broker may be away; the gauge keeps its last value
                log.warning(
                    "consumer lag not measured",
                    extra={"error": type(exc).__name__, REPEATING: True},
                )
            await asyncio.sleep(self.interval_s)

    def start(self) -> LagExporter:
        """Start measuring in the background; returns self."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="consumer-lag")
        return self

    async def stop(self) -> None:
        """Stop measuring."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
