"""Ingest's use cases: accept one verified provider message, exactly once, into Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker

from services.ingest.metrics import DUPLICATES, BLOCKED
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.twilio import SmsInbound
from services.ingest.store import IngestStore
from services.ingest.translate import Translated, email_interaction, sms_interaction
from shared.events import ConversationClosed, InteractionReceived, derived_id
from shared.kafka import publish
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS

log = logging.getLogger(__name__)
SOURCE = "refdesk/ingest"


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time: answer 503 so the provider retries."""


@dataclass
class Ingest:
    broker: KafkaBroker
    store: IngestStore
    publish_timeout_s: float
    sms_window: timedelta
    connected: bool = False

    async def emit(self, event: Translated, *, event_id: str) -> None:
        """Publish to refdesk.interactions and wait for the broker's ack (acks=all)."""
        if not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                publish(self.broker, INTERACTIONS.name, event, key=event.conversation_id,
                        source=SOURCE, event_id=event_id, subject=event.conversation_id),
                timeout=self.publish_timeout_s,
            )
        except Exception as exc:
            log.warning("publish failed", extra={"error": type(exc).__name__,
                                                 "conversation_id": event.conversation_id})
            raise BrokerUnavailable(type(exc).__name__) from exc
        PUBLISH_SECONDS.labels(topic=INTERACTIONS.name).observe(time.perf_counter() - started)
        PUBLISHED.labels(topic=INTERACTIONS.name).inc()
        log.info("accepted", extra={"conversation_id": event.conversation_id, "event_id": event_id,
                                    "event": type(event).__name__})

    async def accept_sms(self, sms: SmsInbound) -> str:
        """One inbound text: dedupe, blocklist, thread, publish. Returns the outcome."""
        if await self.store.is_seen("twilio", sms.message_sid):
            DUPLICATES.labels(channel="sms").inc()
            return "duplicate"
        if await self.store.is_blocked(sms.from_e164):
            BLOCKED.labels(channel="sms").inc()
            return "blocked"
        conversation_id = await self.store.open_sms_thread(sms.from_e164, window=self.sms_window)
        conversation_id = conversation_id or f"sms-{derived_id('sms-thread', sms.message_sid)[:18]}"
        event = sms_interaction(sms, conversation_id=conversation_id, now=datetime.now(UTC))
        await self.emit(event, event_id=event.interaction_id)
        await self.store.touch_sms_thread(sms.from_e164, conversation_id)
        await self.store.remember(("twilio", sms.message_sid, conversation_id, event.interaction_id))
        return "accepted"

    async def _email_conversation(self, mail: EmailInbound) -> str:
        if mail.ticket_tag:
            return mail.ticket_tag
        for parent in [p for p in (mail.in_reply_to, *reversed(mail.references)) if p]:
            found = await self.store.seen_conversation("email", parent)
            if found:
                return found
        return f"email-{derived_id('email-thread', mail.message_id)[:18]}"

    async def accept_email(self, mail: EmailInbound, *, provider: str) -> str:
        """One inbound email (Mailgun or raw MIME): dedupe by Message-Id, thread, publish."""
        if await self.store.is_seen("email", mail.message_id):
            DUPLICATES.labels(channel="email").inc()
            return "duplicate"
        if await self.store.is_blocked(mail.sender_email):
            BLOCKED.labels(channel="email").inc()
            return "blocked"
        conversation_id = await self._email_conversation(mail)
        event = email_interaction(mail, conversation_id=conversation_id, provider=provider,
                                  now=datetime.now(UTC))
        await self.emit(event, event_id=event.interaction_id)
        await self.store.remember(("email", mail.message_id, conversation_id, event.interaction_id))
        return "accepted"

    async def accept_platform(self, event: Translated | None, *, webhook_id: str) -> str:
        """One chat-platform event, deduplicated by its webhook-id."""
        if await self.store.is_seen("chat", webhook_id):
            DUPLICATES.labels(channel="chat").inc()
            return "duplicate"
        if event is not None:
            if isinstance(event, InteractionReceived) and event.patron.contact and \
                    await self.store.is_blocked(event.patron.contact):
                BLOCKED.labels(channel=event.channel.value).inc()
                return "blocked"
            event_id = event.interaction_id if isinstance(event, InteractionReceived) \
                else derived_id("chat-webhook", webhook_id)
            await self.emit(event, event_id=event_id)
            if isinstance(event, ConversationClosed):
                await self.store.close_conversation(event.conversation_id)
        await self.store.remember(("chat", webhook_id, event.conversation_id if event else None, None))
        return "accepted" if event is not None else "ignored"
