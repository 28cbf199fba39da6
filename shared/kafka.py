"""Kafka plumbing every service shares: the broker, topic creation, publishing, dead letters.

Delivery rules (docs/reliability.md): producers use acks=all with idempotence; every
subscriber sets its ack policy explicitly; a poison message goes to its topic's DLQ.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import BaseModel

from shared.events import CloudEvent, DeadLetter, new_event
from shared.logs import REPEATING
from shared.settings import CommonSettings
from shared.topics import DAY_MS, SEGMENT_MS, TOPICS, topic_configs

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"

SLOW_PUBLISH_S = 1.0
"""Publishes the broker took this long to acknowledge are logged at WARNING (a few
milliseconds is usual): a stalled broker or a partition without its leader is named when it
happens, not only in the latency histograms."""

SESSION_TIMEOUT_MS = 10_000
"""A consumer that sends its group no heartbeat for this long is dropped from the group. It is
also each member's rebalance timeout: how long the broker waits, in a rebalance, for every
member to join again before it goes on without the late ones (aiokafka's default for both,
stated by `shared.consumer.batch_subscriber`)."""

REQUEST_TIMEOUT_MS = SESSION_TIMEOUT_MS + 5_000
"""How long a request to the broker may take, producers' and consumers' alike. The broker
answers a member's JoinGroup only once every member has joined again or the rebalance timeout
has passed, so with a request timeout no longer than the rebalance timeout a member gave up on
its join just as the answer came: `RequestTimedOutError` on JoinGroup, the connection closed,
and the member's next join started one more rebalance of the group. The Java client gives
JoinGroup the rebalance timeout plus 5 s for this reason; aiokafka has one timeout for every
request, so every request gets that."""


_KEYLESS = DefaultPartitioner()


@functools.lru_cache(maxsize=4096)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
    """aiokafka's default partitioner (the Java client's murmur2), with each key's hash
    remembered: a conversation's events share its key, and the pure-Python hash of a key costs
    12-34 µs (22-64 bytes) per record. A record without a key goes where aiokafka sends it."""
    if key is None:
        return int(_KEYLESS(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


METADATA_MAX_AGE_MS = 30_000
"""How old the client's view of the topics may grow before it asks again (aiokafka's default is
5 minutes). A broker that lost its data and came back empty: the consumers rejoined before the
topics were made again and read no refdesk.routing for 5 minutes, a new crisis shown in no
department meanwhile (an outside review); a subscription now finds a topic made again within
30 s, for one metadata request per client per 30 s."""


def build_broker(settings: CommonSettings, *, client_id: str) -> KafkaBroker:
    """A FastStream Kafka broker whose producer waits for every in-sync replica."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        # Handlers take the message itself (`msg: KafkaMessage`) and decode it in the Guard.
        # Without dependency injection FastStream calls them directly: with it, resolving that
        # one parameter cost a task group and a worker-thread hop per message (~0.5 ms of CPU).
        apply_types=False,
        decoder=undecoded,
        acks="all",
        enable_idempotence=True,
        partitioner=partition_of,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        graceful_timeout=settings.shutdown_timeout_s,
        logger=logging.getLogger(f"refdesk.{client_id}.kafka"),
        log_level=logging.DEBUG,
    )


async def undecoded(msg: StreamMessage[Any]) -> StreamMessage[Any]:
    """Every subscriber's decoder: the message as it came, for the Guard to decode record by
    record (FastStream's own decoder would parse bodies by their content-type header, and one
    record whose header promises JSON it does not hold would fail outside the Guard)."""
    return msg


async def topic_partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of the topics, in order, as the broker describes them (none for a topic
    it does not have)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t.get("error_code", 0) == 0
        for p in sorted(t["partitions"], key=lambda p: p["partition"])
    ]


DLQ_RETENTION_DAYS = 30
"""A dead-letter topic keeps its letters this long at least (its topic's retention if longer)."""


async def ensure_topics(settings: CommonSettings) -> None:
    """Create refdesk's topics (and their DLQs), or bring existing ones to the configured
    cleanup and retention (a changed REFDESK_RAW_RETENTION_DAYS reaches the broker); idempotent.
    """
    wanted: list[NewTopic] = []
    for topic in TOPICS:
        configs = topic_configs(topic, raw_retention_days=settings.raw_retention_days)
        wanted.append(NewTopic(topic.name, settings.topic_partitions, 1, topic_configs=configs))
        if topic.dlq:
            dlq_configs = topic_configs(topic, raw_retention_days=settings.raw_retention_days)
            dlq_configs["cleanup.policy"] = "delete"
            # long enough to be seen and replayed after a break (a week's raw retention had
            # set it for every DLQ but presence's, against the documented 30 days)
            kept = max(int(dlq_configs.get("retention.ms", 0)), DLQ_RETENTION_DAYS * DAY_MS)
            dlq_configs["retention.ms"] = str(kept)
            dlq_configs["segment.ms"] = str(SEGMENT_MS)
            wanted.append(NewTopic(topic.dlq_name, 1, 1, topic_configs=dlq_configs))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another service created it between our list and create
        present = [t for t in wanted if t.name in existing]
        if present:
            current = await _dynamic_configs(admin, [t.name for t in present])
            # AlterConfigs replaces a topic's whole dynamic configuration: what an operator set
            # that refdesk does not (a size cap on a DLQ) is sent back with refdesk's own, or a
            # restart wiped it (an outside review); a topic already as wanted is left alone
            changed = [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    t.name,
                    {**current.get(t.name, {}), **t.topic_configs},
                )
                for t in present
                if any(current.get(t.name, {}).get(k) != v for k, v in t.topic_configs.items())
            ]
            if changed:
                await admin.alter_configs(changed)
    finally:
        await admin.close()


DYNAMIC_TOPIC_CONFIG = 1
"""DescribeConfigs' config source of a value set on the topic itself (KIP-226)."""


async def _dynamic_configs(
    admin: AIOKafkaAdminClient, names: list[str]
) -> dict[str, dict[str, str]]:
    """Each topic's configuration set on the topic itself (not a default), by topic; a
    sensitive value (the broker withholds it) is left out."""
    found: dict[str, dict[str, str]] = {}
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    for response in responses:
        for error, _message, _type, name, entries in response.resources:
            if error:
                continue
            mine = found.setdefault(name, {})
            for entry in entries:
                key, value, _read_only, source, sensitive = entry[:5]
                # v0 says whether the value is a default; later versions name its source
                dynamic = (
                    (not source) if isinstance(source, bool) else source == DYNAMIC_TOPIC_CONFIG
                )
                if dynamic and not sensitive and value is not None:
                    mine[key] = value
    return found


START_WAIT_S = 120.0
"""How long a service starting waits for an unreachable broker before it gives up."""


class BrokerUnreachable(RuntimeError):
    """The broker could not be reached while the service started (one line naming where)."""


async def ensure_topics_when_reachable(
    settings: CommonSettings, *, wait_s: float = START_WAIT_S, exit_if_not: bool = False
) -> None:
    """`ensure_topics`, waiting for a broker that cannot be reached yet (started after the
    service, restarting, a network hiccup) up to `wait_s`, then BrokerUnreachable naming the
    bootstrap: four services exited a second after start with a screen of traceback ending in
    KafkaConnectionError, where ingest waited and said so. `exit_if_not` (a service's start):
    log that one line and end the process with status 3 instead, as uvicorn would have after
    logging the whole traceback of a failed start."""
    try:
        await _ensure_topics_waiting(settings, wait_s=wait_s)
    except BrokerUnreachable as exc:
        if not exit_if_not:
            raise
        log.error(str(exc))
        logging.shutdown()
        os._exit(3)


async def _ensure_topics_waiting(settings: CommonSettings, *, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            await ensure_topics(settings)
            return
        except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
            if time.monotonic() + delay > deadline:
                raise BrokerUnreachable(
                    f"the Kafka broker at {settings.kafka_bootstrap} (REFDESK_KAFKA_BOOTSTRAP) "
                    f"could not be reached for {wait_s:.0f} s"
                ) from None
            log.warning(
                "broker not reachable yet; waiting for it",
                extra={
                    "bootstrap": settings.kafka_bootstrap,
                    "error": type(exc).__name__,
                    REPEATING: "start",
                },
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def publish(
    broker: KafkaBroker,
    topic: str,
    data: BaseModel,
    *,
    key: str,
    source: str,
    event_id: str | None = None,
    subject: str | None = None,
) -> CloudEvent[Any]:
    """Wrap data in a CloudEvent and publish it, returning once the broker acknowledged it."""
    event = new_event(data, source=source, subject=subject, event_id=event_id)
    await publish_in_order(broker, [(topic, event, key)])
    return event


async def publish_in_order(
    broker: KafkaBroker, records: Iterable[tuple[str, CloudEvent[Any], str]]
) -> None:
    """Publish (topic, event, key) records in this order; return once the broker acknowledged
    every one of them.

    Each record is handed to the producer before the next, so records of one key keep this
    order in their partition (the producer is idempotent), and the acks are awaited together:
    one round trip to the in-sync replicas for the lot instead of one per record. The first
    failure is raised once every record handed over has settled.
    """
    futures: list[asyncio.Future[Any]] = []
    topics: set[str] = set()
    started = time.perf_counter()
    try:
        for topic, event, key in records:
            topics.add(topic)
            futures.append(
                await broker.publish(
                    event.model_dump_json().encode(),
                    topic=topic,
                    key=key.encode(),
                    headers=_headers(event),
                    no_confirm=True,
                )
            )
    finally:
        results = await asyncio.gather(*futures, return_exceptions=True)
        took = time.perf_counter() - started
        if took >= SLOW_PUBLISH_S:
            log.warning(
                "the broker was slow to acknowledge",
                extra={
                    "topics": sorted(topics),
                    "records": len(futures),
                    "took_ms": round(took * 1e3, 1),
                },
            )
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _headers(event: CloudEvent[Any]) -> dict[str, str]:
    return {"content-type": CONTENT_TYPE, "ce_type": event.type, "ce_id": event.id}


async def dead_letter_record(
    broker: KafkaBroker, record: ConsumerRecord[Any, Any], *, reason: str, group: str, source: str
) -> None:
    """Send one consumed record to `<topic>.dlq` with the reason (a batch's records one by one)."""
    key = record.key.decode("utf-8", "replace") if record.key else None
    letter = DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        value=(record.value or b"").decode("utf-8", "replace"),
        reason=reason[:1000],
        consumer_group=group,
        failed_at=datetime.now(UTC),
    )
    await publish(broker, f"{record.topic}.dlq", letter, key=key or "", source=source)
    log.warning(
        "dead-lettered a message",
        extra={
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason[:200],
        },
    )
