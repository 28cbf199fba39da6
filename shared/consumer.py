"""How every refdesk consumer treats a message: decode, dispatch, dead-letter or retry.

A message that can never be processed (not JSON, not a CloudEvent, unknown type, invalid
data) goes to the topic's DLQ with the reason and is committed. Any other failure is
treated as transient: the handler raises, the subscriber's NACK_ON_ERROR policy seeks back
and the message is redelivered after a short pause. Offsets are committed only after the
handler returned, i.e. after its effect is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from shared.events import AnyEvent, parse_data
from shared.kafka import dead_letter
from shared.metrics import CONSUMED, DEAD_LETTERS

log = logging.getLogger(__name__)

Handler = Callable[[AnyEvent, BaseModel], Awaitable[None]]


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

    async def __call__(self, body: bytes, msg: KafkaMessage, dispatch: Handler) -> None:
        """Run one message through dispatch."""
        topic = _topic_of(msg)
        try:
            event, data = decode(body)
            await dispatch(event, data)
        except PoisonMessage as exc:
            await dead_letter(
                self.broker, msg, reason=str(exc), group=self.group, source=self.source
            )
            DEAD_LETTERS.labels(topic=topic).inc()
            CONSUMED.labels(topic=topic, outcome="dead_lettered").inc()
            return
        except Exception as exc:
            CONSUMED.labels(topic=topic, outcome="retried").inc()
            log.warning(
                "transient failure; will retry", extra={"topic": topic, "error": type(exc).__name__}
            )
            await asyncio.sleep(self.retry_pause_s)
            raise TransientFailure(type(exc).__name__) from None
        CONSUMED.labels(topic=topic, outcome="processed").inc()


def _topic_of(msg: KafkaMessage) -> str:
    raw: Any = msg.raw_message
    record = raw[0] if isinstance(raw, tuple) else raw
    return str(record.topic)
