"""A morning at the desk, as events applied to the status projection: the console's browser
tests and screenshots start from it. T0 is Tuesday 9:00 AM desk time."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.handlers import Assigning, apply
from services.status.sweep import reopen_unsent
from shared.events import (
    Action,
    Attachment,
    Automatic,
    Bounce,
    Channel,
    ConversationClosed,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
    RuleHit,
    SmsStatusReported,
    StaffNoteAdded,
    StaffReplyContext,
)

EMAIL = "email-overnight"
EMAIL_SUBJECT = "Renewing a laptop loan over spring break"
EMAIL_TEXT = (
    "Hello,\n\nI checked out a laptop from the South Campus library last week and it is due "
    "on Friday, but I will be away for spring break. Can I renew it online, or do I have to "
    "bring it in first? I attached my loan receipt.\n\nThanks,\nAlex Rivera"
)
EMAIL_MESSAGE_ID = "<CAF=alex.rivera.123@mail.example.edu>"
SMS = "sms-hours"
SMS_TEXT = "Is the NE campus library open til 9 tonight? I need to print a paper"
REVIEW = "sms-review"
CRISIS = "chat-crisis"
CHAT = "chat-renew"
CHAT_TEXT = "Can I renew my graphing calculator? It's due today and I still need it for my exam"
CITE = "chat-cite"
LINK = "sms-link"
TEXTS = "sms-texts"
BOUNCED = "email-bounced"
BOUNCED_TEXT = (
    'Hi, I need the full text of "Nurse staffing and patient outcomes" (JAMA, 2002) for my '
    "capstone. Can the library get it for me?\n\nThanks,\nJordan Ellis"
)
ORPHAN = "email-orphan-bounce"

_ids = itertools.count(1)


async def _apply(sessions: async_sessionmaker[AsyncSession], *events: BaseModel) -> None:
    async with sessions() as session:
        for data in events:
            await apply(session, event_id=f"scene-{next(_ids)}", data=data, assigning=Assigning())
        await session.commit()


def message(
    cid: str,
    channel: Channel,
    text: str,
    *,
    minutes_ago: float,
    contact: str,
    name: str | None = None,
    subject: str | None = None,
    message_id: str | None = None,
    attachments: list[Attachment] | None = None,
    blocked: bool = False,
) -> InteractionReceived:
    """A patron's message (`blocked`: from a sender on the blocklist)."""
    return InteractionReceived(
        interaction_id=f"i-{cid}-{minutes_ago}",
        conversation_id=cid,
        channel=channel,
        provider={"sms": "twilio", "email": "mailgun", "chat": "chat"}[channel.value],
        provider_message_id=message_id or f"pm-{cid}-{minutes_ago}",
        patron=Patron(contact=contact, name=name),
        text=text,
        subject=subject,
        received_at=T0 - timedelta(minutes=minutes_ago),
        attachments=attachments or [],
        blocked=blocked,
    )


def routed(
    cid: str,
    channel: Channel,
    *,
    minutes_ago: float,
    department: str = "reference",
    overnight: bool = False,
    crisis: bool = False,
    safety_review: bool = False,
    rule: str = "research-help",
) -> RoutingDecided:
    """The router's decision for it."""
    return RoutingDecided(
        decision_id=f"r-{cid}-{minutes_ago}",
        interaction_id=f"i-{cid}-{minutes_ago}",
        conversation_id=cid,
        channel=channel,
        department="care-team" if crisis else department,
        action=Action.ESCALATE_CRISIS if crisis else Action.ANSWER,
        priority=Priority.URGENT if crisis else Priority.HIGH if overnight else Priority.NORMAL,
        overnight=overnight,
        safety_review=safety_review,
        rules=[RuleHit(rule_id="crisis-self-harm" if crisis else rule)],
        policy_version="2025.03",
        decided_at=T0 - timedelta(minutes=minutes_ago) + timedelta(seconds=1),
    )


def automated(
    cid: str,
    channel: Channel,
    kind: NotificationKind,
    text: str,
    *,
    minutes_ago: float,
    recipient: str,
    state: DeliveryState = DeliveryState.SENT,
    reason: str | None = None,
    segments: int | None = None,
) -> list[BaseModel]:
    """An automated message refdesk sent the patron, and its delivery outcome."""
    key = f"n-{cid}-{kind.value}"
    at = T0 - timedelta(minutes=minutes_ago)
    return [
        NotificationRequested(
            idempotency_key=key,
            kind=kind,
            channel=channel,
            recipient=recipient,
            conversation_id=cid,
            requested_at=at,
        ),
        NotificationDelivered(
            idempotency_key=key,
            conversation_id=cid,
            kind=kind,
            channel=channel,
            state=state,
            reason=reason,
            text=text if state is DeliveryState.SENT else None,
            segments=segments,
            at=at + timedelta(seconds=2),
        ),
    ]


async def reply_not_sent(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given a reply to the overnight email asked for 12 minutes ago that the notifier has not
    sent yet (the mail relay refusing: the notifier keeps trying and announces nothing), and
    the sweep that found it unsent."""
    requested, _announced = staff_reply(
        EMAIL,
        1,
        "You can renew the laptop once online from My Account; it is due Friday.",
        Channel.EMAIL,
        minutes_ago=12,
        recipient="alex.rivera@my.tccd.edu",
        subject=f"Re: {EMAIL_SUBJECT}",
    )
    await _apply(sessions, requested)
    async with sessions() as session:  # the sweep: the patron waits again
        await reopen_unsent(session=session, now=T0)
        await session.commit()


async def overnight_email(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given an email ticket that came in overnight, acknowledged automatically, with a note."""
    email_from = "alex.rivera@my.tccd.edu"
    await _apply(
        sessions,
        message(
            EMAIL,
            Channel.EMAIL,
            EMAIL_TEXT,
            minutes_ago=10 * 60 + 14,
            contact=email_from,
            name="Alex Rivera",
            subject=EMAIL_SUBJECT,
            message_id=EMAIL_MESSAGE_ID,
            attachments=[Attachment(name="loan-receipt.pdf", size=48213)],
        ),
        routed(EMAIL, Channel.EMAIL, minutes_ago=10 * 60 + 14, overnight=True, rule="renewals"),
        *automated(
            EMAIL,
            Channel.EMAIL,
            NotificationKind.AFTER_HOURS_ACK,
            "Thanks for writing to the TCC Library. The desk is closed now; we open Tuesday at "
            "8:00 AM and will answer you then.",
            minutes_ago=10 * 60 + 13,
            recipient=email_from,
        ),
        StaffNoteAdded(
            note_id="note-1",
            conversation_id=EMAIL,
            staff_id="jnguyen",
            text="Laptop loans renew once online; South's circulation desk confirmed.",
            at=T0 - timedelta(minutes=30),
        ),
    )


async def chats(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given two chats waiting: a renewal and a citation question."""
    await _apply(
        sessions,
        message(CHAT, Channel.CHAT, CHAT_TEXT, minutes_ago=4, contact="chat-visitor-81"),
        routed(CHAT, Channel.CHAT, minutes_ago=4, rule="renewals"),
        message(
            CITE,
            Channel.CHAT,
            "how do I cite a YouTube video in APA 7?",
            minutes_ago=2,
            contact="chat-visitor-85",
            name="Jordan Lee",
        ),
        routed(CITE, Channel.CHAT, minutes_ago=2, rule="citations"),
    )


async def sms(sessions: async_sessionmaker[AsyncSession], *, minutes_ago: float = 12) -> None:
    """Given a text message from a patron who texted the desk last week too."""
    phone = "+18175550142"
    await _apply(
        sessions,
        message(
            "sms-rooms",
            Channel.SMS,
            "do you have study rooms at SE?",
            minutes_ago=8640,
            contact=phone,
        ),
        routed("sms-rooms", Channel.SMS, minutes_ago=8640),
        *automated(
            "sms-rooms",
            Channel.SMS,
            NotificationKind.SURVEY,
            "",
            minutes_ago=8630,
            recipient=phone,
            state=DeliveryState.FAILED,
            reason="twilio 21610: the patron replied STOP",
        ),
        ConversationClosed(
            conversation_id="sms-rooms",
            channel=Channel.SMS,
            closed_at=T0 - timedelta(days=6) + timedelta(minutes=9),
            closed_by="mgarcia",
        ),
        message(SMS, Channel.SMS, SMS_TEXT, minutes_ago=minutes_ago, contact=phone),
        routed(SMS, Channel.SMS, minutes_ago=minutes_ago, rule="hours"),
    )


async def crisis(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given a crisis chat, with the crisis resources already sent."""
    await _apply(
        sessions,
        message(
            CRISIS,
            Channel.CHAT,
            "i dont want to be here anymore. i have been saving up pills",
            minutes_ago=6,
            contact="chat-visitor-77",
        ),
        routed(CRISIS, Channel.CHAT, minutes_ago=6, crisis=True),
        *automated(
            CRISIS,
            Channel.CHAT,
            NotificationKind.CRISIS_RESOURCES,
            "Your safety matters. If you are in danger right now, call 911, or call or text 988 "
            "any time. TCC Counseling is here for you too.",
            minutes_ago=5.9,
            recipient=CRISIS,
        ),
    )


async def possible_crisis(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given a text the router's safety net flagged for review."""
    await _apply(
        sessions,
        message(
            REVIEW,
            Channel.SMS,
            "honestly i cant keep doing this, everything is too much this semester",
            minutes_ago=25,
            contact="+18175550188",
        ),
        routed(REVIEW, Channel.SMS, minutes_ago=25, safety_review=True, rule="stress"),
    )


async def morning(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the desk at 9:00 AM: a crisis chat, a possible crisis by SMS, an overnight email
    ticket, an SMS and two chats."""
    await overnight_email(sessions)
    await sms(sessions)
    await possible_crisis(sessions)
    await crisis(sessions)
    await chats(sessions)


async def pasted_link(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given a text that is one long pasted link, with no space to break at."""
    link = "https://tccd.primo.exlibrisgroup.com/permalink/01TCCD_INST/" + "x7Qk2Pb9ZsLm" * 120
    await _apply(
        sessions,
        message(LINK, Channel.SMS, link, minutes_ago=2, contact="+18175550161"),
        routed(LINK, Channel.SMS, minutes_ago=2),
    )


def staff_reply(
    cid: str,
    n: int,
    text: str,
    channel: Channel,
    *,
    minutes_ago: float,
    recipient: str,
    subject: str | None = None,
    **delivered: Any,
) -> list[BaseModel]:
    """A reply a librarian sent the patron, and the notifier's announcement of it (`delivered`:
    what the announcement carries besides, a Twilio SID or an email's Message-ID)."""
    key = f"reply-{cid}-{n}"
    at = T0 - timedelta(minutes=minutes_ago)
    context = StaffReplyContext(reply_id=key, text=text, staff_id="mgarcia", subject=subject)
    return [
        NotificationRequested(
            idempotency_key=key,
            kind=NotificationKind.STAFF_REPLY,
            channel=channel,
            recipient=recipient,
            conversation_id=cid,
            requested_at=at,
            context=context.model_dump(),
        ),
        NotificationDelivered(
            idempotency_key=key,
            conversation_id=cid,
            kind=NotificationKind.STAFF_REPLY,
            channel=channel,
            state=DeliveryState.SENT,
            text=text,
            subject=subject,
            at=at + timedelta(seconds=2),
            **delivered,
        ),
    ]


def staff_text(
    cid: str, n: int, text: str, *, minutes_ago: float, recipient: str, sid: str
) -> list[BaseModel]:
    """A text a librarian sent the patron, as the notifier announced it (Twilio's SID on it)."""
    return staff_reply(
        cid,
        n,
        text,
        Channel.SMS,
        minutes_ago=minutes_ago,
        recipient=recipient,
        message_id=sid,
        segments=1,
    )


FILTERED = SmsStatusReported(
    provider_id="SM99990000aaaabbbbccccddddeeeeffff",
    status="undelivered",
    error_code=30007,
    reported_at=T0 - timedelta(minutes=4.9),
)
"""The carrier's report on the desk's second answer in TEXTS: filtered."""


async def texts_reported(
    sessions: async_sessionmaker[AsyncSession], *, filtered: bool = True
) -> None:
    """Given a text thread where the carrier delivered one of the desk's answers and (unless
    `filtered` is False: not reported yet) filtered the next."""
    phone = "+18175550166"
    await _apply(
        sessions,
        message(TEXTS, Channel.SMS, "where do I pick up my hold?", minutes_ago=9, contact=phone),
        routed(TEXTS, Channel.SMS, minutes_ago=9, rule="holds"),
        *staff_text(
            TEXTS,
            1,
            "Holds are at the circulation desk on the 1st floor. Bring your TCC ID.",
            minutes_ago=7,
            recipient=phone,
            sid="SM11112222333344445555666677778888",
        ),
        SmsStatusReported(
            provider_id="SM11112222333344445555666677778888",
            status="delivered",
            reported_at=T0 - timedelta(minutes=6.9),
        ),
        *staff_text(
            TEXTS,
            2,
            "Your hold is ready until Friday: https://bit.ly/tcc-holds",
            minutes_ago=5,
            recipient=phone,
            sid=FILTERED.provider_id,
        ),
        *([FILTERED] if filtered else []),
    )


async def opted_out(
    sessions: async_sessionmaker[AsyncSession], cid: str, *, keyword: str = "STOP"
) -> None:
    """Given the patron of `cid` texted STOP a minute ago (the router's opt-out command), or
    START (`keyword`) just now."""
    ago = 1 if keyword == "STOP" else 0
    kind = NotificationKind.SMS_OPT_OUT if keyword == "STOP" else NotificationKind.SMS_OPT_IN
    await _apply(
        sessions,
        message(cid, Channel.SMS, keyword, minutes_ago=ago, contact="+18175550166"),
        NotificationRequested(
            idempotency_key=f"{kind.value}-{cid}",
            kind=kind,
            channel=Channel.SMS,
            recipient="+18175550166",
            conversation_id=cid,
            context={"keyword": keyword},
            requested_at=T0 - timedelta(minutes=ago),
        ),
    )


async def carrier_reports(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the carrier's report on the second answer in TEXTS, arriving now."""
    await _apply(sessions, FILTERED)


def staff_email(
    cid: str, n: int, text: str, *, minutes_ago: float, recipient: str, subject: str
) -> list[BaseModel]:
    """An email a librarian sent the patron, as the notifier announced it (its Message-ID)."""
    return staff_reply(
        cid,
        n,
        text,
        Channel.EMAIL,
        minutes_ago=minutes_ago,
        recipient=recipient,
        subject=subject,
        message_id=f"<reply-{cid}-{n}.20250304@refdesk.tccd.edu>",
    )


def mail_system(
    cid: str,
    n: int,
    text: str,
    *,
    minutes_ago: float,
    subject: str,
    bounce: Bounce | None = None,
    contact: str | None = None,
) -> InteractionReceived:
    """Mail a mail system sent into the conversation: an automatic reply, or (`bounce`) a
    report on one of the desk's emails."""
    return InteractionReceived(
        interaction_id=f"auto-{cid}-{n}",
        conversation_id=cid,
        channel=Channel.EMAIL,
        provider="mailgun",
        provider_message_id=f"<auto-{cid}-{n}@mail.example.edu>",
        patron=Patron() if bounce else Patron(contact=contact, name="Jordan Ellis"),
        text=text,
        subject=subject,
        received_at=T0 - timedelta(minutes=minutes_ago),
        automatic=Automatic.BOUNCE if bounce else Automatic.AUTO_REPLY,
        bounce=bounce,
    )


BOUNCED_SUBJECT = "Interlibrary loan for a nursing article"
FAILURE = mail_system(
    BOUNCED,
    3,
    "This is the mail system at host mx.my.tccd.edu.\n\nI'm sorry to have to inform you that "
    "your message could not be delivered to one or more recipients. It's attached below.",
    minutes_ago=1,
    subject="Undelivered Mail Returned to Sender",
    bounce=Bounce(
        message_id=f"reply-{BOUNCED}-2.20250304@refdesk.tccd.edu", status="5.1.1", action="failed"
    ),
)
"""The report that the desk's second answer in BOUNCED could not be delivered."""


async def bounced_email(sessions: async_sessionmaker[AsyncSession], *, failed: bool = True) -> None:
    """Given an email ticket where the desk's first answer drew an out-of-office reply and its
    second a report that delivery is delayed, then (unless `failed` is False: not yet) one that
    it failed; and a bounce nobody's email matched, in a conversation of its own."""
    email_from = "jordan.ellis@my.tccd.edu"
    re_subject = f"Re: {BOUNCED_SUBJECT}"
    await _apply(
        sessions,
        message(
            BOUNCED,
            Channel.EMAIL,
            BOUNCED_TEXT,
            minutes_ago=50,
            contact=email_from,
            name="Jordan Ellis",
            subject=BOUNCED_SUBJECT,
        ),
        routed(BOUNCED, Channel.EMAIL, minutes_ago=50, rule="interlibrary-loan"),
        *staff_email(
            BOUNCED,
            1,
            "Hi Jordan, I placed an interlibrary loan request for the article. It usually "
            "arrives in 2-3 days, and I will email you the PDF.",
            minutes_ago=45,
            recipient=email_from,
            subject=re_subject,
        ),
        mail_system(
            BOUNCED,
            1,
            "Thank you for your email. I am away at clinicals until Friday, March 7, and will "
            "reply when I am back.",
            minutes_ago=44.5,
            subject=f"Automatic reply: {re_subject}",
            contact=email_from,
        ),
        *staff_email(
            BOUNCED,
            2,
            "Hi Jordan, the article arrived: the PDF is attached. It is yours to keep for your "
            "capstone.",
            minutes_ago=10,
            recipient=email_from,
            subject=re_subject,
        ),
        mail_system(
            BOUNCED,
            2,
            "This is the mail system at host mx.my.tccd.edu.\n\nYour message could not be "
            "delivered for 5 minutes. It will be retried until it is 5 days old.",
            minutes_ago=4,
            subject="Delayed Mail (still being retried)",
            bounce=Bounce(
                message_id=f"reply-{BOUNCED}-2.20250304@refdesk.tccd.edu",
                status="4.4.1",
                action="delayed",
            ),
        ),
        mail_system(
            ORPHAN,
            1,
            "Delivery has failed to these recipients or groups.",
            minutes_ago=30,
            subject="Undeliverable: your library notice",
            bounce=Bounce(message_id="not-one-of-ours@elsewhere.example", status="5.1.1"),
        ),
        *([FAILURE] if failed else []),
    )


async def bounce_arrives(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the report that the second answer in BOUNCED failed, arriving now."""
    await _apply(sessions, FAILURE)


CARE_ALERT_ID = f"care-alert-{CRISIS}@refdesk.tccd.edu"


def care_alert_asked(at: Any) -> NotificationRequested:
    """The router's ask for the crisis chat's CARE Team alert, by email."""
    return NotificationRequested(
        idempotency_key=f"n-{CRISIS}-crisis-alert",
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        recipient="care.team@tccd.edu",
        conversation_id=CRISIS,
        priority=Priority.URGENT,
        requested_at=at,
    )


def care_alert_outcome(state: DeliveryState, reason: str | None = None) -> NotificationDelivered:
    """The notifier's outcome for the crisis chat's CARE Team alert, at T0."""
    return NotificationDelivered(
        idempotency_key=CARE_ALERT_KEY,
        conversation_id=CRISIS,
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        state=state,
        reason=reason,
        at=T0,
    )


async def care_alert_bounced(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the crisis chat, whose CARE Team alert went out by email and bounced: the team's
    address no longer exists."""
    await crisis(sessions)
    key = f"n-{CRISIS}-crisis-alert"
    at = T0 - timedelta(minutes=5.9)
    await _apply(
        sessions,
        care_alert_asked(at),
        NotificationDelivered(
            idempotency_key=key,
            conversation_id=CRISIS,
            kind=NotificationKind.CRISIS_ALERT,
            channel=Channel.EMAIL,
            state=DeliveryState.SENT,
            message_id=f"<{CARE_ALERT_ID}>",
            at=at + timedelta(seconds=2),
        ),
        mail_system(
            CRISIS,
            1,
            "This is the mail system at host mx.tccd.edu.\n\nYour message to care.team@tccd.edu "
            "could not be delivered: no such mailbox.",
            minutes_ago=5,
            subject="Undelivered Mail Returned to Sender",
            bounce=Bounce(message_id=CARE_ALERT_ID, status="5.1.1", action="failed"),
        ),
    )


CARE_ALERT_KEY = f"n-{CRISIS}-crisis-alert"


async def care_alert_not_out(
    sessions: async_sessionmaker[AsyncSession], *, reason: str | None = None
) -> None:
    """Given the crisis chat, whose CARE Team alert was asked for 5.9 minutes ago and has not
    gone out: the relay refused it for good (`reason`, the notifier's short reason) or, with no
    reason, the notifier is still trying (it has announced nothing)."""
    await crisis(sessions)
    at = T0 - timedelta(minutes=5.9)
    events: list[BaseModel] = [care_alert_asked(at)]
    if reason is not None:
        events.append(
            NotificationDelivered(
                idempotency_key=CARE_ALERT_KEY,
                conversation_id=CRISIS,
                kind=NotificationKind.CRISIS_ALERT,
                channel=Channel.EMAIL,
                state=DeliveryState.FAILED,
                reason=reason,
                at=at + timedelta(seconds=2),
            )
        )
    await _apply(sessions, *events)


async def reply_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Given the SMS about the NE campus's hours, answered 10 minutes ago by a reply Twilio
    refused (the number cannot receive texts)."""
    await sms(sessions)
    requested, _sent = staff_reply(
        SMS,
        1,
        "Yes, NE is open until 9 PM tonight.",
        Channel.SMS,
        minutes_ago=10,
        recipient="+18175550142",
    )
    await _apply(
        sessions,
        requested,
        NotificationDelivered(
            idempotency_key=f"reply-{SMS}-1",
            conversation_id=SMS,
            kind=NotificationKind.STAFF_REPLY,
            channel=Channel.SMS,
            state=DeliveryState.FAILED,
            reason="the number is not a mobile number",
            error_code=21614,
            at=T0 - timedelta(minutes=10) + timedelta(seconds=1),
        ),
    )
