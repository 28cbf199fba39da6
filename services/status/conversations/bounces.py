"""What a mail system reported about an email refdesk sent (a bounce: a delivery status report,
RFC 3464), on the email's transcript line: not delivered and why, or delayed.

Ingest threads a bounce into the conversation of the email it reports on, as automatic mail
naming that email by its Message-ID (`Bounce.message_id`, without angle brackets; the
notifier's announcement put it on the line with them). The bounce and the announcement may come
in either order: the most final report per conversation and Message-ID is kept
(`email_bounces`: failed over delayed, of two alike the later) and applied to the line when
both are known, whichever came first. Emails to the patron (lines `out`) and to staff (the
timeline's "CARE Team alerted", "Circulation managers emailed": lines `event`) are marked: a
bounced CARE Team alert must not read as if the team had it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.conversations import transcript
from services.status.conversations.transcript import DELAYED, UNDELIVERED
from services.status.models import ConversationRow, EmailBounceRow, TranscriptEntry
from shared.events import (
    Automatic,
    Channel,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    derived_id,
)

SENT_LINES = ("out", "event")
"""The lines of emails refdesk sent: to the patron (`out`), to staff (`event`)."""
RANK = {"delayed": 0, "failed": 1}
"""A report never replaces one of higher rank: a later `delayed` never undoes a `failed`."""
STATE = {"failed": UNDELIVERED, "delayed": DELAYED}

REASONS = {
    "5.1.1": "the address does not exist",
    "5.1.10": "the address does not exist",  # Exchange Online's RecipientNotFound
    "5.1.2": "the mail domain was not found",
    "5.4.4": "the mail domain was not found",
    "5.2.1": "the mailbox is disabled",
    "5.2.2": "the mailbox is full",
    "5.2.3": "the message was too large",
    "5.3.4": "the message was too large",
}
"""RFC 3463's common codes for an email that was not delivered, in the desk's words."""
REFUSED = "refused by the receiving mail system"
"""5.7.x: a security or policy refusal."""
TRYING = "the mail system is still trying"
"""4.x.x in a delay report (and a delay report that gives no code)."""
GAVE_UP = "the mail system gave up trying"
"""4.x.x in a failure report: a temporary problem that outlasted the retries."""
NO_REASON = "the mail system gave no reason"


def reason(status: str | None, action: str) -> str:
    """Why an email was not delivered (or is delayed), as the console says it."""
    if status is None:
        return TRYING if action == "delayed" else NO_REASON
    if status in REASONS:
        return REASONS[status]
    klass, subject, _detail = status.split(".")
    if klass == "4":
        return TRYING if action == "delayed" else GAVE_UP
    if klass == "5" and subject == "7":
        return REFUSED
    return f"error {status}"


_REJECTED = re.compile(r"rejected (?P<code>[45]\d\d)(?: (?P<status>[245]\.\d{1,3}\.\d{1,3}))?")
"""The notifier's short reason for an email the relay refused: its reply code, and the
enhanced status code when the relay gave one ("rejected 550 5.1.1")."""
REPLY_CODES = {
    550: "the receiving mail system refused it (the mailbox may not exist)",
    551: "the address is not valid there",
    552: "the message was too large",
    553: "the address is not valid",
    554: "refused by the receiving mail system",
}
"""RFC 5321's refusals, in the desk's words, when no enhanced status code says more."""
RELAY_GAVE_UP = "the mail relay kept failing and refdesk stopped trying"
RELAY_UNCONFIRMED = (
    "the mail relay took it several times without confirming it: it may have arrived, more "
    "than once"
)
"""An email the relay took whole and never confirmed, given up after a few copies."""
"""An email still failing (the relay down, or deferring it) when its retries ran out."""


def refusal(short: str | None) -> str | None:
    """Why the notifier could not send an email, as the console says it (the notifier's short
    reasons, "rejected 550 5.1.1" or "retries exhausted 421", read as "rejected 550" had
    been); any other reason as it is."""
    if not short:
        return short
    found = _REJECTED.fullmatch(short)
    if found is not None:
        if found["status"]:
            return reason(found["status"], "failed")
        code = int(found["code"])
        return REPLY_CODES.get(code, f"refused by the receiving mail system ({code})")
    if short.startswith("retries exhausted"):
        return RELAY_GAVE_UP
    if short == "unconfirmed":
        return RELAY_UNCONFIRMED
    return short


def bare(message_id: str) -> str:
    """A Message-ID without its angle brackets: how a report names an email."""
    return message_id.strip().removeprefix("<").removesuffix(">")


def key(conversation_id: str, message_id: str) -> str:
    """The `email_bounces` row of an email: its conversation and bare Message-ID."""
    return derived_id("bounce", conversation_id, message_id)


def _reported(data: InteractionReceived) -> str | None:
    """The bare Message-ID a bounce names, if it names one."""
    if data.automatic is not Automatic.BOUNCE or data.bounce is None:
        return None
    return bare(data.bounce.message_id or "") or None


async def _refused(session: AsyncSession, data: NotificationDelivered) -> None:
    entry = await transcript.line(session, data.idempotency_key)
    if entry is None or entry["delivery_state"] != DeliveryState.FAILED.value:
        return
    words = refusal(data.reason)
    if words != entry["delivery_reason"]:
        await transcript.rewrite(session, data.idempotency_key, delivery_reason=words)


def _announced(data: NotificationDelivered) -> str | None:
    """The bare Message-ID of an email the notifier announced, if it is one."""
    if data.channel is not Channel.EMAIL or not data.message_id:
        return None
    return bare(data.message_id) or None


async def preload(session: AsyncSession, events: list[BaseModel]) -> None:
    """The reports a batch's bounces touch, and those of its email announcements in a
    conversation where a bounce came first, in one query (none in a batch without either: the
    conversations are preloaded already)."""
    found = set()
    for data in events:
        if isinstance(data, InteractionReceived):
            named = _reported(data)
        elif isinstance(data, NotificationDelivered) and await _waiting(session, data):
            named = _announced(data)
        else:
            continue
        if named is not None:
            found.add(key(data.conversation_id, named))
    await rows.preload(session, EmailBounceRow, found)


async def _waiting(session: AsyncSession, data: NotificationDelivered) -> bool:
    """Whether a bounce came before an announcement in this conversation."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    return conv is not None and conv.bounce_waiting


def _order(action: str, reported_at: datetime, status: str | None) -> tuple[object, ...]:
    """Reports in the order the most final wins: failed over delayed, then the later, then by
    code, so that any arrival order ends with the same report kept."""
    return (RANK[action], reported_at, status or "")


async def _sent_emails(session: AsyncSession, conversation_id: str, message_id: str) -> list[str]:
    """The lines of the emails refdesk sent in this conversation under this Message-ID, to the
    patron or to staff: those stored, and those this unit of work wrote itself."""
    names = {f"<{message_id}>", message_id}
    found = await session.execute(
        select(TranscriptEntry.id).where(
            TranscriptEntry.conversation_id == conversation_id,
            TranscriptEntry.message_id.in_(sorted(names)),
            TranscriptEntry.direction.in_(SENT_LINES),
            TranscriptEntry.channel == Channel.EMAIL.value,
        )
    )
    ids = {line_id for (line_id,) in found}
    await transcript.preload(session, ids)
    ids.update(
        entry["id"]
        for entry in transcript.known(session)
        if entry["conversation_id"] == conversation_id and entry["message_id"] in names
    )
    matching = []
    for line_id in sorted(ids):
        entry = await transcript.line(session, line_id)
        if entry is not None and _is_sent_email(entry, names):
            matching.append(line_id)
    return matching


def _is_sent_email(entry: Mapping[str, Any], names: set[str]) -> bool:
    return (
        entry["direction"] in SENT_LINES
        and entry["channel"] == Channel.EMAIL.value
        and entry["message_id"] in names
    )


async def _apply(session: AsyncSession, line_id: str, report: EmailBounceRow) -> None:
    """Put a report on its line and tell the consoles."""
    why = reason(report.status, report.action)
    await transcript.report_delivery(
        session, line_id, STATE[report.action], why, report.reported_at
    )


async def on_bounce(session: AsyncSession, data: InteractionReceived) -> None:
    """A bounce: kept if it is the most final report on its email yet, and applied to the
    email's line if that is known. A bounce that names no email marks nothing."""
    message_id = _reported(data)
    if message_id is None:
        return
    assert data.bounce is not None
    action, status = data.bounce.action, data.bounce.status
    row_key = key(data.conversation_id, message_id)
    report = await rows.get(session, EmailBounceRow, row_key)
    if report is None:
        report = rows.add(
            session,
            EmailBounceRow(
                id=row_key,
                conversation_id=data.conversation_id,
                message_id=message_id,
                action=action,
                status=status,
                reported_at=data.received_at,
            ),
        )
    elif _order(action, data.received_at, status) > _order(
        report.action, report.reported_at, report.status
    ):
        report.action, report.status, report.reported_at = action, status, data.received_at
    else:
        return
    lines = await _sent_emails(session, data.conversation_id, message_id)
    for line_id in lines:
        await _apply(session, line_id, report)
    if not lines:  # the announcement of the email comes later, and looks for this report
        conv = await rows.get(session, ConversationRow, data.conversation_id)
        if conv is not None:
            conv.bounce_waiting = True


async def on_delivered(session: AsyncSession, data: NotificationDelivered) -> None:
    """After the notifier's announcement wrote an email's line: why the relay refused it, in
    words, or the bounce that came first."""
    if data.channel is Channel.EMAIL and data.state is DeliveryState.FAILED:
        await _refused(session, data)
        return
    message_id = _announced(data)
    if message_id is None or data.message_id is None or not await _waiting(session, data):
        return
    entry = await transcript.line(session, data.idempotency_key)
    if entry is None or not _is_sent_email(entry, {data.message_id}):
        return
    row_key = key(data.conversation_id, message_id)
    report = await rows.get(session, EmailBounceRow, row_key)
    if report is not None:
        await _apply(session, data.idempotency_key, report)
