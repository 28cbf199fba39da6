"""How every refdesk consumer treats a poll batch: decode, dispatch, dead-letter or retry.

Every consumer is a batch subscriber (`batch_subscriber`, with `tolerant_batch_parser`) whose
handler runs `Guard.batch`. A record that can never be processed (not JSON, not a CloudEvent,
unknown type, invalid data) goes to its topic's DLQ by itself, with the reason; the batch's
other records are dispatched together. Any other failure is transient: the handler raises,
the subscriber's NACK_ON_ERROR policy seeks back and the whole batch is redelivered after a
short pause. A failure that retrying cannot mend (a programming error such as an
OverflowError, a ValueError or a KeyError, raised ISOLATE_AFTER times on the same records)
is narrowed down instead: the batch's records are dispatched one at a time, and the one that
still fails so goes to the DLQ with its error's type, so one bad record never holds its
partition (and every crisis behind it) for good. A driver, network or broker error is never
taken for one: a database that is down fails every record, and waits. A batch's offsets
are committed once, after its handler returned, i.e. after its effects are durable. An empty
poll is followed by the next at once (`poll_without_pause`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from shared.events import AnyEvent, parse_data
from shared.kafka import SESSION_TIMEOUT_MS, dead_letter_record
from shared.logs import REPEATING
from shared.metrics import BATCHES, CONSUMED, DEAD_LETTERS

log = logging.getLogger(__name__)

Decoded = tuple[AnyEvent, BaseModel]
Records = tuple[ConsumerRecord[Any, Any], ...]
Assignors = Sequence[type[AbstractPartitionAssignor]]


DETERMINISTIC: tuple[type[Exception], ...] = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    LookupError,
    NotImplementedError,
    TypeError,
    ValueError,
)
"""Errors a redelivery raises again: the code's, on this record (pydantic's ValidationError
and UnicodeError are ValueErrors). OSError, TimeoutError, and the database drivers' and
Kafka's errors are not among them."""
ISOLATE_AFTER = 3
"""Batches that fail with one of DETERMINISTIC before their records are tried one by one."""


class PoisonMessage(Exception):
    """The message can never be processed; it belongs in the DLQ."""


class TransientFailure(Exception):
    """Processing failed for now; the message will be redelivered.

    Raised in place of the original error so that what the framework logs is only the
    error's type: driver errors quote SQL parameters, which can hold student data.
    """


def describe(exc: ValidationError) -> str:
    """A validation error's fields and messages, without the offending values."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)


def decode(body: bytes) -> tuple[AnyEvent, BaseModel]:
    """Parse a structured CloudEvent and its data; PoisonMessage if either is invalid."""
    try:
        event = AnyEvent.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a CloudEvent: {describe(exc)}") from None
    try:
        return event, parse_data(event)
    except KeyError:
        raise PoisonMessage(f"unknown event type {event.type!r}") from None
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {event.type} data: {describe(exc)}") from None


class Guard:
    """Wraps a consumer's dispatch with the DLQ and retry rules above."""

    def __init__(self, broker: KafkaBroker, *, group: str, source: str, retry_pause_s: float = 1.0):
        self.broker = broker
        self.group = group
        self.source = source
        self.retry_pause_s = retry_pause_s
        self._failed: dict[tuple[str, int, int], int] = {}
        """(topic, partition, offset) -> batches that failed DETERMINISTICally holding it"""

    async def batch(
        self,
        msg: KafkaMessage,
        dispatch: Callable[[list[Any]], Awaitable[None]],
        *,
        types: frozenset[str] | None = None,
        also: Callable[[ConsumerRecord[Any, Any]], bool] | None = None,
        decoder: Callable[[bytes], Any] = decode,
        record_decoder: Callable[[ConsumerRecord[Any, Any]], Any] | None = None,
    ) -> None:
        """Run one poll batch: the records that decode go to dispatch together, in poll order
        (per partition, i.e. per key, the order they were written in); then each poison record
        goes to the DLQ with its own reason. Any failure fails the whole batch, which is
        redelivered after the pause: nothing of it is committed, and its poison records are
        dead-lettered when the redelivered batch succeeds.

        With `types`, a record whose `ce_type` header names another type is passed over
        without being decoded (a consumer that wants a few types of a busy topic), unless
        `also` says it is wanted too (by its key, say); records without the header are decoded
        as usual. `decoder` turns a record's bytes into what
        dispatch receives (default: `decode`, an (event, data) pair), raising PoisonMessage;
        `record_decoder`, given instead, is handed the whole record (its topic, partition and
        offset too).
        """
        read = record_decoder or (lambda record: decoder(record.value or b""))
        raw: Any = msg.raw_message
        records: Records = raw if isinstance(raw, tuple) else (raw,)
        good: list[Any] = []
        held: list[ConsumerRecord[Any, Any]] = []
        poison: list[tuple[ConsumerRecord[Any, Any], str]] = []
        skipped = 0
        for record in records:
            if types is not None and stated_type(record) not in (None, *types):
                if also is None or not also(record):
                    skipped += 1
                    continue
            try:
                good.append(read(record))
                held.append(record)
            except PoisonMessage as exc:
                poison.append((record, str(exc)))
        topic = str(records[0].topic) if records else "?"
        try:
            # the failure counts are read only while a failure is remembered: the healthy path
            # pays nothing for them
            if self._failed and any(self._failed.get(_key(r), 0) >= ISOLATE_AFTER for r in held):
                poison += await self._one_by_one(good, held, dispatch)
            elif good:
                await dispatch(good)
            await asyncio.gather(
                *(
                    dead_letter_record(
                        self.broker, record, reason=reason, group=self.group, source=self.source
                    )
                    for record, reason in poison
                )
            )
        except Exception as exc:
            if isinstance(exc, DETERMINISTIC):
                if len(self._failed) > 10_000:  # a bound; counting starts again
                    self._failed.clear()
                for record in held:
                    self._failed[_key(record)] = self._failed.get(_key(record), 0) + 1
            BATCHES.labels(topic=topic, outcome="retried").inc()
            for name, n in _by_topic(records).items():
                CONSUMED.labels(topic=name, outcome="retried").inc(n)
            log.warning(
                "transient failure; will retry the batch",
                extra={
                    "topic": topic,
                    "error": type(exc).__name__,
                    "records": len(records),
                    REPEATING: topic,
                },
            )
            await asyncio.sleep(self.retry_pause_s)
            raise TransientFailure(type(exc).__name__) from None
        if self._failed:
            for record in held:
                self._failed.pop(_key(record), None)
        # a subscriber of several topics gets them in one batch: each record counts under its own
        for name, n in _by_topic(record for record, _ in poison).items():
            DEAD_LETTERS.labels(topic=name).inc(n)
            CONSUMED.labels(topic=name, outcome="dead_lettered").inc(n)
        dead = {id(record) for record, _ in poison}
        for name, n in _by_topic(r for r in held if id(r) not in dead).items():
            CONSUMED.labels(topic=name, outcome="processed").inc(n)
        if skipped:
            CONSUMED.labels(topic=topic, outcome="skipped").inc(skipped)
        BATCHES.labels(topic=topic, outcome="processed").inc()

    async def _one_by_one(
        self,
        good: list[Any],
        held: list[ConsumerRecord[Any, Any]],
        dispatch: Callable[[list[Any]], Awaitable[None]],
    ) -> list[tuple[ConsumerRecord[Any, Any], str]]:
        """Dispatch a repeatedly failing batch's records alone, in order; those that still fail
        DETERMINISTICally are returned for the DLQ. Any other error fails the batch as before
        (the records dispatched so far are redelivered: handlers are idempotent)."""
        failed: list[tuple[ConsumerRecord[Any, Any], str]] = []
        for item, record in zip(good, held, strict=True):
            try:
                await dispatch([item])
            except DETERMINISTIC as exc:
                log.error(
                    "a record failed its handler on every try; dead-lettering it",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": type(exc).__name__,
                    },
                )
                failed.append(
                    (
                        record,
                        f"the handler failed on it {ISOLATE_AFTER + 1} times: {type(exc).__name__}",
                    )
                )
        return failed


def _by_topic(records: Iterable[ConsumerRecord[Any, Any]]) -> Counter[str]:
    """How many of the records came from each topic."""
    return Counter(str(record.topic) for record in records)


def _key(record: ConsumerRecord[Any, Any]) -> tuple[str, int, int]:
    """Where a record was read: the Guard's key for counting its failures."""
    return (str(record.topic), record.partition, record.offset)


def stated_type(record: ConsumerRecord[Any, Any]) -> str | None:
    """The record's `ce_type` header, if it has one that reads as text."""
    for key, value in record.headers or ():
        if key == "ce_type":
            try:
                return bytes(value or b"").decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


BatchHandler = Callable[[KafkaMessage], Awaitable[None]]


def batch_subscriber(
    broker: KafkaBroker,
    *topics: str,
    group_id: str,
    max_records: int,
    wait_ms: int,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = 500,
    partition_assignment_strategy: Assignors = (RoundRobinPartitionAssignor,),
) -> Callable[[BatchHandler], BatchHandler]:
    """Register a batch subscriber run through `Guard.batch`: offsets committed once per
    batch, after its handler returned (NACK_ON_ERROR), and the tolerant parser. `wait_ms`
    bounds how long an idle poll waits; `fetch_min_bytes` and `fetch_max_wait_ms` (aiokafka's
    defaults unless given) let the broker gather larger batches for consumers no patron
    waits on. `partition_assignment_strategy` is how the group shares partitions (round robin,
    FastStream's default, unless given; a group settles on one that every member lists). The
    session and rebalance timeouts are stated: the broker's request timeout is chosen to
    outlast them (`shared.kafka.REQUEST_TIMEOUT_MS`)."""
    for topic in topics:
        DEAD_LETTERS.labels(topic=topic)  # exists at 0 from the start: increase() sees the first
    subscriber: Any = broker.subscriber(
        *topics,
        group_id=group_id,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        auto_offset_reset="earliest",
        batch=True,
        max_records=max_records,
        batch_timeout_ms=wait_ms,
        parser=tolerant_batch_parser,
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        partition_assignment_strategy=partition_assignment_strategy,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        rebalance_timeout_ms=SESSION_TIMEOUT_MS,
    )

    poll_without_pause(subscriber)

    def register(handler: BatchHandler) -> BatchHandler:
        subscriber(handler)
        return handler

    return register


def poll_without_pause(subscriber: Any) -> None:
    """Make a FastStream batch subscriber poll again as soon as a poll comes back empty.

    FastStream's batch subscriber sleeps `batch_timeout_ms` after an empty `getmany`, which
    has itself just waited that long: an idle consumer spends half its time asleep, and a
    record that arrives then waits for the rest of the sleep (in the router, up to 20 ms a
    hop). `getmany` returns as soon as a fetch brings records, so polling again at once adds
    no busy loop: an idle consumer still wakes once per `batch_timeout_ms`.
    """
    if not isinstance(subscriber, BatchSubscriber):
        raise TypeError(f"not a FastStream batch subscriber: {type(subscriber).__name__}")

    async def get_msg(consumer: AIOKafkaConsumer) -> Records:
        polled = await consumer.getmany(
            timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
        )
        return tuple(chain.from_iterable(polled.values()))

    subscriber.get_msg = get_msg  # type: ignore[method-assign]  # this instance only


async def tolerant_batch_parser(
    records: Records, original: Callable[[Records], Awaitable[StreamMessage[Records]]]
) -> StreamMessage[Records]:
    """FastStream's batch parser, with header values that are not UTF-8 text made so.

    The parser decodes every record's headers as UTF-8; one record with a binary header would
    fail its whole batch before the Guard sees it, and FastStream would pass the batch over
    without seeking back (its offsets then commit with the next batch's). None of refdesk's
    decisions depend on such a header.
    """
    try:
        return await original(records)
    except (UnicodeDecodeError, AttributeError):
        return await original(tuple(_text_headers(record) for record in records))


def _text_headers(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    headers = [(k, (v or b"").decode("utf-8", "replace").encode()) for k, v in record.headers]
    return dataclasses.replace(record, headers=headers)
