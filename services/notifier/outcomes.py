"""Announcing delivery outcomes on refdesk.deliveries, and the publishing port.

An announcement says what became of one command: sent (with the text the patron reads,
the subject, the Message-ID or provider id, the SMS segments) or failed for good, with a
short reason class. The class never holds a remote server's reply, a secret or patron data:
it is one of a few fixed words, with at most the SMTP or HTTP status code.
"""

from __future__ import annotations

from typing import Protocol

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from services.notifier import outbox
from services.notifier.errors import (
    InvalidContext,
    PermanentSendError,
    TemplateInvalid,
    TemplateMissing,
    TransientSendError,
)
from services.notifier.tables import SENT
from shared.events import DeliveryState, NotificationDelivered, derived_id
from shared.kafka import publish

SOURCE = "refdesk/notifier"


class Publisher(Protocol):
    """Publish one event and return once the broker acknowledged it (acks=all)."""

    async def __call__(self, topic: str, data: BaseModel, *, key: str, event_id: str) -> None: ...


class BrokerPublisher:
    """The publishing port on the service's Kafka broker, as a CloudEvent from the notifier."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def __call__(self, topic: str, data: BaseModel, *, key: str, event_id: str) -> None:
        """Publish ``data`` keyed (and subject-ed) by ``key``; awaits the broker's ack."""
        await publish(
            self.broker, topic, data, key=key, source=SOURCE, event_id=event_id, subject=key
        )


def reason_class(exc: BaseException, *, exhausted: bool = False) -> str:
    """The short, fixed reason a notification failed for good."""
    code = getattr(exc, "code", None)
    suffix = f" {code}" if isinstance(code, int) else ""
    if exhausted or isinstance(exc, TransientSendError):
        return f"retries exhausted{suffix}"
    if isinstance(exc, InvalidContext):
        return "invalid context"
    if isinstance(exc, TemplateMissing):
        return "no template for this channel"
    if isinstance(exc, TemplateInvalid):
        return "template invalid"
    if isinstance(exc, PermanentSendError):
        return f"rejected{suffix}"
    return "permanent failure"


def announcement_id(idempotency_key: str) -> str:
    """The event id of a command's outcome: the same however often it is announced."""
    return derived_id("notifier", "delivered", idempotency_key)


def announcement(done: outbox.Finished) -> NotificationDelivered:
    """The refdesk.deliveries event of a final outcome."""
    cmd, delivered = done.command, done.delivered
    return NotificationDelivered(
        idempotency_key=cmd.idempotency_key,
        conversation_id=cmd.conversation_id,
        kind=cmd.kind,
        channel=cmd.channel,
        state=DeliveryState.SENT if done.state == SENT else DeliveryState.FAILED,
        reason=None if done.state == SENT else done.reason or "failed",
        text=delivered.text,
        subject=delivered.subject,
        message_id=delivered.provider_id or delivered.message_id,
        segments=delivered.segments,
        attempts=max(1, done.attempts),
        at=done.finished_at,
    )
