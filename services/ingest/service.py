"""Ingest's use cases: accept one verified provider message, exactly once, into Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from services.ingest.errors import StoreUnavailable, store_failure
from services.ingest.metrics import (
    AUTOMATIC,
    BLOCKED,
    BOUNCES,
    DUPLICATES,
    SENDER_FAILED,
    SMS_REPORT_STATUSES,
    SMS_REPORTS_BY_STATUS,
)
from services.ingest.providers.authenticity import SenderCheck
from services.ingest.providers.automatic import DeliveryReport
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.errors import ReplayedToken
from services.ingest.providers.twilio import SmsInbound
from services.ingest.replies import (
    BOUNCED_TO,
    PARTY_NAMESPACE,
    SENT_NAMESPACE,
    bounce_lookups,
    local_part,
    party_binding,
    party_key,
    sent_key,
)
from services.ingest.store import IngestStore
from services.ingest.translate import Translated, email_interaction, sms_interaction
from shared.events import (
    Channel,
    ConversationClosed,
    InteractionReceived,
    SmsStatusReported,
    derived_id,
)
from shared.kafka import publish
from shared.metrics import PUBLISH_SECONDS, PUBLISHED
from shared.topics import INTERACTIONS, SMS_REPORTS

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
    _inflight: dict[str, asyncio.Task[None]] = field(default_factory=dict, repr=False)

    async def emit(
        self, event: Translated, *, event_id: str, then: Callable[[], Awaitable[None]]
    ) -> None:
        """Publish to refdesk.interactions, await the broker's ack (acks=all), then run `then`.

        A publish that outlives publish_timeout_s is not abandoned by aiokafka: its idempotent
        producer keeps the record and delivers it once the broker is back. So the publish runs
        as a task that still records the message (`then`) when acked after the request was
        answered 503, and a retry of the same message awaits that task instead of publishing
        a second copy.
        """
        if not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        task = self._inflight.get(event_id)
        if task is None:
            task = asyncio.create_task(self._deliver(event, event_id=event_id, then=then))
            self._inflight[event_id] = task
            task.add_done_callback(lambda done: self._finished(event_id, done))
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.publish_timeout_s)
        except Exception as exc:
            if store_failure(exc):  # published, perhaps, but not recorded: the store's failure
                raise StoreUnavailable(type(exc).__name__) from exc
            log.warning(
                "publish failed",
                extra={"error": type(exc).__name__, "conversation_id": event.conversation_id},
            )
            raise BrokerUnavailable(type(exc).__name__) from exc

    async def _deliver(
        self, event: Translated, *, event_id: str, then: Callable[[], Awaitable[None]]
    ) -> None:
        await self._publish(
            INTERACTIONS.name,
            event,
            key=event.conversation_id,
            event_id=event_id,
            subject=event.conversation_id,
        )
        await then()
        log.info(
            "accepted",
            extra={
                "conversation_id": event.conversation_id,
                "event_id": event_id,
                "event": type(event).__name__,
            },
        )

    async def _publish(
        self,
        topic: str,
        data: BaseModel,
        *,
        key: str,
        event_id: str,
        subject: str | None = None,
    ) -> None:
        """Publish one event and await the broker's ack (acks=all), timed and counted."""
        started = time.perf_counter()
        await publish(
            self.broker, topic, data, key=key, source=SOURCE, event_id=event_id, subject=subject
        )
        PUBLISH_SECONDS.labels(topic=topic).observe(time.perf_counter() - started)
        PUBLISHED.labels(topic=topic).inc()

    def _finished(self, event_id: str, task: asyncio.Task[None]) -> None:
        self._inflight.pop(event_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("late publish failed", extra={"error": type(task.exception()).__name__})

    async def close(self) -> None:
        """Stop waiting for publishes still in flight (shutdown)."""
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def accept_sms(self, sms: SmsInbound) -> str:
        """One inbound text: dedupe, blocklist, thread, publish. Returns the outcome."""
        seen, blocked, open_id = await self.store.sms_state(
            sms.message_sid, sms.from_e164, window=self.sms_window
        )
        if seen:
            DUPLICATES.labels(channel="sms").inc()
            return "duplicate"
        conversation_id = open_id or f"sms-{derived_id('sms-thread', sms.message_sid)[:18]}"
        event = sms_interaction(
            sms, conversation_id=conversation_id, now=datetime.now(UTC), blocked=blocked
        )

        async def record() -> None:
            await self.store.record_sms(
                sms.from_e164, conversation_id, sms.message_sid, event.interaction_id
            )

        await self.emit(event, event_id=event.interaction_id, then=record)
        return _outcome(event)

    async def accept_sms_status(self, report: SmsStatusReported) -> str:
        """A Twilio status callback for a text refdesk sent, published on refdesk.sms-reports
        keyed by the text's SID. A repeated callback carries the same event id (the SID and the
        status), which the status service drops; nothing is stored here."""
        if not self.connected:
            raise BrokerUnavailable("not connected to the broker")
        event_id = derived_id("sms-status", report.provider_id, report.status)
        published = self._publish(
            SMS_REPORTS.name, report, key=report.provider_id, event_id=event_id
        )
        try:
            await asyncio.wait_for(published, timeout=self.publish_timeout_s)
        except Exception as exc:
            log.warning("publish failed", extra={"error": type(exc).__name__})
            raise BrokerUnavailable(type(exc).__name__) from exc
        word = report.status if report.status in SMS_REPORT_STATUSES else "other"
        SMS_REPORTS_BY_STATUS.labels(status=word).inc()
        return "accepted"

    async def _email_conversation(self, mail: EmailInbound) -> tuple[str, str | None]:
        """The conversation an email joins, and for a bounce whom the email it reports on was
        for. An email whose sender failed the receiving system's checks
        (`providers.authenticity`) starts a new one: its From may be forged. A bounce joins the
        conversation of the email it reports on, when found; any other email, or a bounce not
        matched, is threaded by `_threaded_conversation`."""
        if mail.sender_check is SenderCheck.FAILED:
            SENDER_FAILED.inc()
            log.info("email whose sender failed the receiving system's checks: not threaded")
            return _new_email_conversation(mail), "unknown" if mail.report else None
        bounced_to = None
        if mail.report is not None:
            conversation, bounced_to = await self._bounced_conversation(mail.report)
            if conversation:
                return conversation, bounced_to
        return await self._threaded_conversation(mail), bounced_to

    async def _threaded_conversation(self, mail: EmailInbound) -> str:
        """The conversation an email threads into: its ticket tag's, when the sender is an
        address of that conversation (see `replies`); else, for the first message it answers
        (In-Reply-To, then References newest first) that ingest knows, that message's (a
        patron's email ingest accepted, or an email refdesk sent to this very sender); else a
        new one. The lookups go to the store together."""
        sender, tag = mail.sender_email, mail.ticket_tag
        parents = list(
            dict.fromkeys(p for p in (mail.in_reply_to, *reversed(mail.references)) if p)
        )
        lookups = [("email", parent) for parent in parents]
        if sender:
            lookups += [(SENT_NAMESPACE, sent_key(local_part(p), sender)) for p in parents]
            if tag:  # last, so it is popped before the parents' answers are read
                lookups.append((PARTY_NAMESPACE, party_key(tag, sender)))
        found = await asyncio.gather(
            *(self.store.seen_conversation(namespace, key) for namespace, key in lookups)
        )
        if tag and sender and found.pop() == tag:
            return tag
        if tag:  # the conversation id only: the sender is student data
            log.info(
                "ticket tag from an address not in its conversation: not followed",
                extra={"tagged_conversation_id": tag},
            )
        count = len(parents)  # found: each parent's own lookup, then each one's sent lookup
        for own, sent in zip(found[:count], found[count:] or [None] * count, strict=True):
            if conversation := own or sent:
                return conversation
        return _new_email_conversation(mail)

    async def _bounced_conversation(self, report: DeliveryReport) -> tuple[str | None, str]:
        """For a bounce: the conversation of the email refdesk sent that its report names, by
        that email's Message-ID and the address that failed (`replies.bounce_lookups`), and whom
        that email was for (`patron`, `staff`, `care_team`; `unknown` when none is found)."""
        lookups = bounce_lookups(report.message_id, report.recipients) if report.message_id else []
        found = await asyncio.gather(
            *(self.store.seen_conversation(namespace, key) for namespace, key in lookups)
        )
        for (namespace, _key), conversation in zip(lookups, found, strict=True):
            if conversation:
                return conversation, BOUNCED_TO[namespace]
        return None, "unknown"

    async def accept_mailgun(self, mail: EmailInbound, *, token: str) -> str:
        """A Mailgun email, its signed token bound to it before anything is accepted.

        Mailgun's signature covers only timestamp and token, so the token is claimed for this
        message by a unique insert that wins or loses: the same token with another message is a
        replay (even sent at the same moment), ReplayedToken; with the same message it is
        Mailgun retrying, accepted as any redelivery is.
        """
        message_key = derived_id("email", mail.message_id)
        if await self.store.claim("mailgun-token", token, message_key) != message_key:
            raise ReplayedToken("token", "already used")
        return await self.accept_email(mail, provider="mailgun")

    async def accept_email(self, mail: EmailInbound, *, provider: str) -> str:
        """One inbound email (Mailgun or raw MIME): dedupe by Message-Id, thread, publish."""
        if await self.store.is_seen("email", mail.message_id):
            DUPLICATES.labels(channel="email").inc()
            return "duplicate"
        conversation_id, bounced_to = await self._email_conversation(mail)
        # a sender that failed its checks, or a mail system, is not an address of the
        # conversation
        party = mail.sender_check is not SenderCheck.FAILED and mail.automatic is None
        sender = mail.sender_email if party else None
        event = email_interaction(
            mail,
            conversation_id=conversation_id,
            provider=provider,
            now=datetime.now(UTC),
            blocked=mail.sender_email is not None and self.store.is_blocked(mail.sender_email),
        )

        async def record() -> None:
            await self.store.remember(
                ("email", mail.message_id, conversation_id, event.interaction_id),
                bindings=[party_binding(conversation_id, sender)] if sender else [],
            )

        await self.emit(event, event_id=event.interaction_id, then=record)
        if mail.automatic is not None:
            AUTOMATIC.labels(kind=mail.automatic.value).inc()
        if mail.report is not None:
            action = mail.report.action or "failed"
            BOUNCES.labels(to=bounced_to or "unknown", action=action).inc()
        return _outcome(event)

    async def accept_platform(self, event: Translated | None, *, webhook_id: str) -> str:
        """One chat-platform event, deduplicated by its webhook-id."""
        if await self.store.is_seen("chat", webhook_id):
            DUPLICATES.labels(channel="chat").inc()
            return "duplicate"
        if event is not None:
            if (
                isinstance(event, InteractionReceived)
                and event.patron.contact
                and self.store.is_blocked(event.patron.contact)
            ):
                event = event.model_copy(update={"blocked": True})
            event_id = (
                event.interaction_id
                if isinstance(event, InteractionReceived)
                else derived_id("chat-webhook", webhook_id)
            )
            if (
                isinstance(event, ConversationClosed)
                and event.channel is Channel.SMS
                and not event.patron_contact
            ):
                # the platform closed a text thread without naming the patron: its survey
                # goes to the thread's number, as a close made at the desk sends it
                contact = await self.store.sms_contact_of(event.conversation_id)
                event = event.model_copy(update={"patron_contact": contact})
            if (
                isinstance(event, ConversationClosed)
                and event.patron_contact
                and self.store.is_blocked(event.patron_contact)
            ):
                # a blocked sender is sent nothing automatic: the platform's close neither
                event = event.model_copy(update={"survey": False})
            published = event

            async def record() -> None:
                if isinstance(published, ConversationClosed):
                    await self.store.close_conversation(published.conversation_id)
                await self.store.remember(("chat", webhook_id, published.conversation_id, None))

            await self.emit(event, event_id=event_id, then=record)
            return _outcome(event)
        await self.store.remember(("chat", webhook_id, None, None))
        return "ignored"


def _outcome(event: Translated) -> str:
    """What a published event is answered with: `blocked` for a blocked contact's message
    (published flagged, so the router can still act on a crisis, counted here), else accepted."""
    if isinstance(event, InteractionReceived) and event.blocked:
        BLOCKED.labels(channel=event.channel.value).inc()
        return "blocked"
    return "accepted"


def _new_email_conversation(mail: EmailInbound) -> str:
    """The conversation an email starts: derived from its Message-ID, so a redelivery agrees."""
    return f"email-{derived_id('email-thread', mail.message_id)[:18]}"
