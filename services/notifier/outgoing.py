"""A command made ready to send on its channel, and the adapters that send it.

Building is pure (templates and settings only) and happens before any network I/O, so a
command that cannot be built fails for good before anything is sent, and what a delivery
puts in front of the patron (text, subject, SMS segments) is known whatever the send does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from services.notifier import ledger_outcomes
from services.notifier.chat import ChatSender
from services.notifier.email_sender import EmailSender
from services.notifier.errors import InvalidContext
from services.notifier.messages import compose_email, make_message_id, render_chat, render_sms
from services.notifier.mime import Email
from services.notifier.segments import sms_segments
from services.notifier.settings import NotifierSettings
from services.notifier.sms import SmsSender
from shared.clock import DESK_TZ
from shared.events import STAFF_FACING, Channel, NotificationKind, NotificationRequested, Priority


@dataclass
class Adapters:
    """The senders of the three lanes."""

    email: EmailSender
    sms: SmsSender
    chat: ChatSender


@dataclass(frozen=True)
class Outgoing:
    """One command, rendered: what goes out and what the patron reads."""

    command: NotificationRequested
    text: str
    """The plain text the patron reads (an email's text/plain part)."""
    subject: str | None = None
    segments: int | None = None
    email: Email | None = None
    message_id: str | None = None

    def delivered(self, provider_id: str | None = None) -> ledger_outcomes.Delivered:
        """What the ledger keeps of it (and the outcome announces)."""
        return ledger_outcomes.Delivered(
            text=self.text,
            subject=self.subject,
            segments=self.segments,
            message_id=self.message_id,
            provider_id=provider_id,
        )


LOCAL_TIME_KEYS = ("detected_at", "alerted_at", "care_report_filed_at")
"""Context keys that are times staff read: given as ISO timestamps, shown in desk time."""


def desk_time(value: object) -> object:
    """An ISO timestamp as staff read it, in desk time ("Saturday, December 5, 3:55 PM CST");
    anything else (a time the producer already wrote out) as it is."""
    if not isinstance(value, str):
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    if when.tzinfo is None:
        return value  # a naive time names no zone: converting it would guess
    when = when.astimezone(DESK_TZ)
    clock = when.strftime("%I:%M %p").lstrip("0")
    return f"{when:%A}, {when:%B} {when.day}, {clock} {when.tzname()}"


LINKED_ALERTS = frozenset(
    {
        NotificationKind.CRISIS_ALERT,
        NotificationKind.CRISIS_REESCALATION,
        NotificationKind.SAFETY_REVIEW_ALERT,
    }
)
"""Alerts to staff that link the conversation in the desk console (REFDESK_CONSOLE_URL)."""


def context_of(cmd: NotificationRequested, settings: NotifierSettings) -> dict[str, Any]:
    """The command's template values, with what the notifier fills in itself and times in
    desk time."""
    ctx = dict(cmd.context)
    for key in LOCAL_TIME_KEYS:
        if ctx.get(key):
            ctx[key] = desk_time(ctx[key])
    if cmd.kind is NotificationKind.SURVEY and not ctx.get("survey_url"):
        ctx["survey_url"] = settings.survey_url
    if cmd.kind in LINKED_ALERTS and settings.console_url and not ctx.get("console_url"):
        page = quote(cmd.conversation_id, safe="")
        ctx["console_url"] = f"{settings.console_url.rstrip('/')}/dashboard/c/{page}"
    return ctx


def build(cmd: NotificationRequested, settings: NotifierSettings) -> Outgoing:
    """Render a command for its channel; InvalidContext, TemplateMissing or TemplateInvalid
    (all permanent) when it cannot be.

    A command's priority orders the notifier's own work; as `Importance`/`X-Priority` headers
    it marks only staff-facing alerts (a crisis): mail to a patron is never "high importance"."""
    ctx = context_of(cmd, settings)
    if cmd.channel is Channel.EMAIL:
        mail = compose_email(
            cmd.kind,
            ctx,
            to=cmd.recipient,
            mail_from=settings.mail_from,
            reply_to=settings.mail_reply_to,
            idempotency_key=cmd.idempotency_key,
            conversation_id=cmd.conversation_id,
            message_id_domain=settings.message_id_domain,
            priority=cmd.priority if cmd.kind in STAFF_FACING else Priority.NORMAL,
            # when it was asked for (RFC 5322: when it was ready to go): a resend after a crash
            # or a lost answer is the same email, byte for byte, Date included
            date=cmd.requested_at,
        )
        out = Outgoing(cmd, mail.text, subject=mail.subject, email=mail, message_id=mail.message_id)
    elif cmd.channel is Channel.SMS:
        body = render_sms(cmd.kind, ctx)
        out = Outgoing(cmd, body, segments=sms_segments(body)[1])
    else:
        body = render_chat(cmd.kind, ctx)
        message_id = make_message_id(cmd.idempotency_key, settings.message_id_domain)
        out = Outgoing(cmd, body, message_id=message_id)
    if not out.text:
        raise InvalidContext(cmd.kind.value, ["the message renders empty"])
    return out


async def transmit(adapters: Adapters, out: Outgoing) -> str | None:
    """Hand a built email or chat message to its channel's adapter; the provider's message id,
    if any. An SMS goes out through `sms_delivery.SmsAttempt` (in parts, looked up first when
    an earlier attempt is in doubt)."""
    cmd = out.command
    if out.email is not None:
        await adapters.email.send(out.email)
        return None
    if cmd.channel is Channel.SMS:
        raise ValueError("an SMS is sent by sms_delivery.SmsAttempt, which records its parts")
    return await adapters.chat.send(
        conversation_id=cmd.recipient,
        body=out.text,
        idempotency_key=cmd.idempotency_key,
        kind=cmd.kind.value,
        requested_at=cmd.requested_at,
        staff_id=cmd.context.get("staff_id"),
    )
