"""Events of an email conversation with mail a mail system sent: the patron's message, the desk's
answer as the notifier announced it, an out-of-office reply and bounces; and what a test reads
back (a line's delivery, the live feed). `status_fakes.given` applies them."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.models import DeskChange, TranscriptEntry
from shared.events import (
    Action,
    Automatic,
    Bounce,
    Channel,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
)

CID = "email-auto"
PATRON = "alex.rivera@my.tccd.edu"
PATRON_MID = "<CAF=alex.rivera.42@mail.example.edu>"
SUBJECT = "APA citation for a YouTube video"
TEXT = "How do I cite a YouTube video in APA 7? My paper is due Friday."
REPLY = "Use the format: Creator. (Year). Title [Video]. YouTube. URL"
KEY = "reply-email-auto-1"
MID = "reply-email-auto-1.20250304@refdesk.tccd.edu"
"""The desk's answer's Message-ID as a bounce names it: without angle brackets."""
OOF_TEXT = (
    "I am out of the office until Monday, March 10, with limited access to email. "
    "For urgent questions about my coursework, please contact my advisor."
)
DSN_TEXT = (
    "This is the mail system at host mx.my.tccd.edu.\n\n"
    "I'm sorry to have to inform you that your message could not be delivered to one or "
    "more recipients."
)

_ids = itertools.count(1)


def patron_email(
    cid: str = CID, *, minutes: float = 0, text: str = TEXT, mid: str = PATRON_MID
) -> InteractionReceived:
    """The patron's email, `minutes` after T0."""
    return InteractionReceived(
        interaction_id=f"i-{cid}-{minutes}",
        conversation_id=cid,
        channel=Channel.EMAIL,
        provider="mailgun",
        provider_message_id=mid,
        patron=Patron(contact=PATRON, name="Alex Rivera"),
        text=text,
        subject=SUBJECT,
        received_at=T0 + timedelta(minutes=minutes),
    )


def routed(cid: str = CID, *, crisis: bool = False, minutes: float = 0) -> RoutingDecided:
    """The router's decision (a crisis: the crisis net escalated it)."""
    return RoutingDecided(
        decision_id=f"d-{cid}-{minutes}",
        interaction_id=f"i-{cid}-{minutes}",
        conversation_id=cid,
        channel=Channel.EMAIL,
        action=Action.ESCALATE_CRISIS if crisis else Action.ANSWER,
        department="care-team" if crisis else "reference",
        priority=Priority.URGENT if crisis else Priority.NORMAL,
        overnight=False,
        policy_version="t",
        decided_at=T0 + timedelta(minutes=minutes, seconds=1),
    )


def auto_reply(cid: str = CID, *, minutes: float = 20, n: int = 1) -> InteractionReceived:
    """An out-of-office reply from the patron's mailbox."""
    return InteractionReceived(
        interaction_id=f"auto-{cid}-{n}",
        conversation_id=cid,
        channel=Channel.EMAIL,
        provider="mailgun",
        provider_message_id=f"<oof-{n}@mail.example.edu>",
        patron=Patron(contact=PATRON, name="Alex Rivera (away)"),
        text=OOF_TEXT,
        subject=f"Automatic reply: Re: {SUBJECT}",
        received_at=T0 + timedelta(minutes=minutes),
        automatic=Automatic.AUTO_REPLY,
    )


def bounce(
    action: Literal["failed", "delayed"] = "failed",
    status: str | None = "5.1.1",
    *,
    cid: str = CID,
    mid: str | None = MID,
    minutes: float = 12,
    n: int | None = None,
) -> InteractionReceived:
    """A mail system's report on the desk's answer `mid` (a bounce, failed or delayed)."""
    n = next(_ids) if n is None else n
    return InteractionReceived(
        interaction_id=f"bounce-{cid}-{n}",
        conversation_id=cid,
        channel=Channel.EMAIL,
        provider="mailgun",
        provider_message_id=f"<dsn-{n}@mx.my.tccd.edu>",
        patron=Patron(contact="MAILER-DAEMON@mx.my.tccd.edu", name="Mail Delivery System"),
        text=DSN_TEXT,
        subject="Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)",
        received_at=T0 + timedelta(minutes=minutes),
        automatic=Automatic.BOUNCE,
        bounce=Bounce(message_id=mid, status=status, action=action),
    )


def requested(key: str = KEY, cid: str = CID, *, minutes: float = 10) -> NotificationRequested:
    """The desk's email answer, as staff sent it."""
    return NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.EMAIL,
        recipient=PATRON,
        conversation_id=cid,
        requested_at=T0 + timedelta(minutes=minutes),
        context={"text": REPLY, "staff_id": "mgarcia"},
    )


def announced(
    state: DeliveryState = DeliveryState.SENT,
    *,
    key: str = KEY,
    cid: str = CID,
    mid: str = f"<{MID}>",
    minutes: float = 10,
) -> NotificationDelivered:
    """The notifier's outcome for it: sent (with its Message-ID, in angle brackets) or failed."""
    sent = state is DeliveryState.SENT
    return NotificationDelivered(
        idempotency_key=key,
        conversation_id=cid,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.EMAIL,
        state=state,
        reason=None if sent else "smtp 550",
        text=REPLY if sent else None,
        subject=f"Re: {SUBJECT}" if sent else None,
        message_id=mid if sent else None,
        at=T0 + timedelta(minutes=minutes, seconds=2),
    )


async def delivery(
    sessions: async_sessionmaker[AsyncSession], key: str = KEY
) -> tuple[str | None, str | None]:
    """A line's delivery state and reason."""
    async with sessions() as session:
        line = await session.get(TranscriptEntry, key)
    assert line is not None, key
    return line.delivery_state, line.delivery_reason


async def feed(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    """The live feed's rows so far: (conversation, what)."""
    async with sessions() as session:
        found = await session.execute(
            select(DeskChange.conversation_id, DeskChange.what).order_by(DeskChange.id)
        )
    return [(cid, what) for cid, what in found]
