"""Announcing delivery outcomes on refdesk.deliveries, and the publishing port.

An announcement says what became of one command: sent (with the text the patron reads,
the subject, the Message-ID or provider id, the SMS segments) or failed for good, with a
short reason class. The class never holds a remote server's reply, a secret or patron data:
it is one of a few fixed words, with at most the SMTP or HTTP status code. A message the
provider refused also carries the provider's own code for why (`error_code`: Twilio's 21610,
21211, 21614, ...), which the status service puts in the desk's words.

Each final outcome, once written, is announced (`Announcer.announce`); the flag that says the
broker took it rides on the next unit of ledger work (ledger_work.py). Every poll interval a
lane also announces the outcomes whose announcement was lost (`Announcer.announce_lost`,
outbox.py): one whose flag a crash lost is made again after its lease, with the same event id,
and consumers drop the repeat.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
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
from services.notifier.ledger_work import LedgerWork
from services.notifier.tables import SENT
from shared.events import Channel, DeliveryState, NotificationDelivered, derived_id
from shared.kafka import publish
from shared.topics import DELIVERIES

log = logging.getLogger(__name__)

SOURCE = "refdesk/notifier"
ANNOUNCE_BATCH = 100
"""Most lost announcements one lane takes up at a time."""


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
        status = f" {exc.status}" if exc.status else ""
        return f"rejected{suffix}{status}"
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
        error_code=None if done.state == SENT else done.error_code,
        text=delivered.text,
        subject=delivered.subject,
        message_id=delivered.provider_id or delivered.message_id,
        segments=delivered.segments,
        attempts=max(1, done.attempts),
        at=done.finished_at,
    )


@dataclass
class Announcer:
    """Publishes final outcomes on refdesk.deliveries, and takes up those whose announcement
    was lost."""

    publisher: Publisher
    work: LedgerWork

    async def announce(self, finished: list[outbox.Finished]) -> None:
        """Publish the outcomes on refdesk.deliveries; the next unit of ledger work records
        which the broker took.

        One that is not taken stays unannounced in the ledger, leased: the lane announces it
        again after the lease (`announce_lost`). Never raises for a failed publish.
        """

        async def one(done: outbox.Finished) -> str | None:
            cmd = done.command
            try:
                await self.publisher(
                    DELIVERIES.name,
                    announcement(done),
                    key=cmd.conversation_id,
                    event_id=announcement_id(cmd.idempotency_key),
                )
            except Exception as exc:  # the broker: the ledger keeps it for a later attempt
                log.warning(
                    "outcome not announced; announced again later",
                    extra={"notification": cmd.idempotency_key, "error": type(exc).__name__},
                )
                return None
            return cmd.idempotency_key

        taken = await asyncio.gather(*map(one, finished))
        self.work.announced(key for key in taken if key is not None)

    async def announce_lost(self, channel: Channel) -> int:
        """Announce the channel's final outcomes that no worker announced (after their lease);
        how many were taken up."""
        now, lease_s = self.work.now(), self.work.lease_s
        finished = await self.work.run(
            functools.partial(
                outbox.claim_unannounced,
                channel=channel.value,
                limit=ANNOUNCE_BATCH,
                lease_s=lease_s,
                now=now,
            )
        )
        if finished:
            await self.announce(finished)
        return len(finished)
