"""Provider payloads become refdesk events. Ids are derived from provider ids, so a retried
webhook that slips past the seen-keys check yields the very same event id (consumers dedupe)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ingest.providers.authenticity import SenderCheck
from services.ingest.providers.chat import (
    ChatEnded,
    ChatEvent,
    ChatMessage,
    ChatPatron,
    ChatStarted,
    ChatTransferred,
    TicketClosed,
)
from services.ingest.providers.contacts import is_machine_sender
from services.ingest.providers.emails import EmailInbound
from services.ingest.providers.files import AttachedFile, media_type, unnamed
from services.ingest.providers.twilio import MAX_SMS_BODY, SmsInbound
from shared.events import (
    Attachment,
    Automatic,
    Channel,
    ConversationClosed,
    ConversationTransferred,
    InteractionReceived,
    Patron,
    derived_id,
)

Translated = InteractionReceived | ConversationClosed | ConversationTransferred


OVERFLOW_NOTE = "sms-body-beyond-1600-characters.txt"
"""The attachment note naming what an over-long SMS body carried past Twilio's limit."""
MAX_EMAIL_TEXT = 100_000
"""Most characters of an email's new text carried in the event (about 40 pages; an event must
stay under the broker's 1 MB message limit); the rest is named by EMAIL_OVERFLOW_NOTE."""
EMAIL_OVERFLOW_NOTE = f"email-text-beyond-{MAX_EMAIL_TEXT}-characters.txt"
MAX_CHAT_TEXT = MAX_EMAIL_TEXT
"""Most characters of a chat message (or pre-chat question) carried, as of an email: cut at
10,000, an essay-like message lost the crisis written at its end (an outside review)."""
CHAT_OVERFLOW_NOTE = f"chat-text-beyond-{MAX_CHAT_TEXT}-characters.txt"
"""The note naming what a chat message (or pre-chat question) carried past MAX_CHAT_TEXT."""
MAX_SUBJECT = 1_000
"""Most characters of a subject (and of a sender's display name) carried in the event."""


def _described(files: tuple[AttachedFile, ...]) -> list[Attachment]:
    return [Attachment(name=f.name, size=f.size, content_type=f.content_type) for f in files]


def _overflow(rest: str, note: str) -> list[Attachment]:
    """The note naming how much text (in bytes) was cut, when any was."""
    return (
        [Attachment(name=note, size=len(rest.encode()), content_type="text/plain")] if rest else []
    )


def _media(sms: SmsInbound) -> list[Attachment]:
    """An MMS's media described: Twilio gives no name or size, so each is named by its kind and
    position ("photo 1.jpg") and its size left unknown; the media URL is not passed on."""
    return [
        Attachment(name=unnamed(number, kind), size=None, content_type=media_type(kind))
        for number, kind in enumerate(sms.media_types, start=1)
    ]


def sms_interaction(
    sms: SmsInbound, *, conversation_id: str, now: datetime, blocked: bool = False
) -> InteractionReceived:
    """An inbound text as an interaction; a body over Twilio's 1,600 characters keeps its first
    1,600, and an attachment note says how much more came (its size in bytes), not silently cut.
    MMS media are described as attachments (a photo with no text is still a message to staff).
    """
    text, rest = sms.body[:MAX_SMS_BODY], sms.body[MAX_SMS_BODY:]
    attachments = _media(sms) + _overflow(rest, OVERFLOW_NOTE)
    return InteractionReceived(
        interaction_id=derived_id("sms", sms.message_sid),
        conversation_id=conversation_id,
        channel=Channel.SMS,
        provider="twilio",
        provider_message_id=sms.message_sid,
        patron=Patron(contact=sms.from_e164),
        text=text,
        received_at=now,
        attachments=attachments,
        blocked=blocked,
        # a short code or sender ID: a service's broadcast, shown to staff and answered by
        # nobody (the after-hours acknowledgement had gone to "TCCALERT": an outside review)
        bulk=is_machine_sender(sms.from_e164),
    )


ARRIVAL_WINDOW = timedelta(days=7)
"""How far back the time an email states for its arrival is believed (a relay's retries)."""


def arrival(stated: datetime | None, now: datetime) -> datetime:
    """When an email reached the desk: the time its receiving system states (Mailgun's post,
    the topmost `Received` line) if that lies within ARRIVAL_WINDOW before `now`, else `now`.
    A wrong clock upstream never puts an email years back or ahead in the queue."""
    if stated is None:
        return now
    try:
        utc = stated.astimezone(UTC)
    except OverflowError:
        return now
    return utc if now - ARRIVAL_WINDOW <= utc <= now else now


def email_interaction(
    mail: EmailInbound,
    *,
    conversation_id: str,
    provider: str,
    now: datetime,
    blocked: bool = False,
) -> InteractionReceived:
    """An inbound email as an interaction: its files described as attachments; a text over
    MAX_EMAIL_TEXT characters keeps its beginning and a note names the size of the rest. A
    bounce names no patron: its sender is a mail system, not someone a reply could reach."""
    text, rest = mail.text[:MAX_EMAIL_TEXT], mail.text[MAX_EMAIL_TEXT:]
    bounce = mail.automatic is Automatic.BOUNCE
    return InteractionReceived(
        interaction_id=derived_id("email", mail.message_id),
        conversation_id=conversation_id,
        channel=Channel.EMAIL,
        provider=provider,
        provider_message_id=mail.message_id,
        patron=Patron()
        if bounce
        else Patron(
            contact=mail.sender_email,
            name=mail.sender_name[:MAX_SUBJECT] if mail.sender_name else None,
            unverified=mail.sender_check is SenderCheck.FAILED,
        ),
        text=text,
        subject=mail.subject[:MAX_SUBJECT] or None,
        received_at=arrival(mail.received_at, now),
        attachments=_described(mail.attachments) + _overflow(rest, EMAIL_OVERFLOW_NOTE),
        blocked=blocked,
        automatic=mail.automatic,
        bounce=mail.report.bounce() if bounce and mail.report else None,
        bulk=mail.bulk,
    )


def _contact_for(channel: Channel, patron: ChatPatron | None) -> str | None:
    """Where a survey for this channel would go: the phone for SMS, the email otherwise."""
    if patron is None:
        return None
    return patron.phone if channel is Channel.SMS else patron.email


def chat_event(
    event: ChatEvent, *, webhook_id: str, now: datetime | None = None
) -> Translated | None:
    """A chat platform lifecycle event as a refdesk event; None for what refdesk does not keep.
    A patron's message is stamped with the platform's time when it lies within ARRIVAL_WINDOW
    before `now`, else `now`, as an email is: a wrong clock on the platform had put a chat a
    year back ("Waiting 380 d") or months ahead in the queue."""
    d = event.data
    stamped = event.timestamp if now is None else arrival(event.timestamp, now)
    if isinstance(event, ChatMessage):
        if event.data.author != "patron":
            return None
        return InteractionReceived(
            interaction_id=derived_id("chat", event.data.conversation_id, event.data.message_id),
            conversation_id=d.conversation_id,
            channel=event.data.channel,
            provider="chat",
            provider_message_id=event.data.message_id,
            patron=event.data.patron.as_patron() if event.data.patron else Patron(),
            text=event.data.text[:MAX_CHAT_TEXT],
            attachments=_overflow(event.data.text[MAX_CHAT_TEXT:], CHAT_OVERFLOW_NOTE),
            received_at=stamped,
            campus_hint=event.data.campus,
            department_hint=event.data.department,
            sequence=event.data.sequence,
        )
    if isinstance(event, ChatStarted):
        if not event.data.question:
            return None
        return InteractionReceived(
            interaction_id=derived_id("chat", event.data.conversation_id, "started", webhook_id),
            conversation_id=d.conversation_id,
            channel=event.data.channel,
            provider="chat",
            provider_message_id=webhook_id,
            patron=event.data.patron.as_patron(),
            text=event.data.question[:MAX_CHAT_TEXT],
            attachments=_overflow(event.data.question[MAX_CHAT_TEXT:], CHAT_OVERFLOW_NOTE),
            received_at=stamped,
            campus_hint=event.data.campus,
            department_hint=event.data.department,
        )
    if isinstance(event, ChatTransferred):
        return ConversationTransferred(
            conversation_id=d.conversation_id,
            channel=event.data.channel,
            department=event.data.department,
            transferred_at=event.timestamp,
            by=event.data.by,
            note=event.data.note,
        )
    if isinstance(event, ChatEnded | TicketClosed):
        patron = event.data.patron
        return ConversationClosed(
            conversation_id=d.conversation_id,
            channel=event.data.channel,
            closed_at=event.timestamp.astimezone(UTC),
            closed_by=event.data.closed_by,
            patron_contact=_contact_for(event.data.channel, patron),
            reason=event.data.reason,
        )
    return None
