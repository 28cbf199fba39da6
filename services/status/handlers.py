"""What each consumed event does to the queue and the transcripts, in one transaction with its
processed id.

The event-to-handler map is the table at the bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.status import rows, stats
from services.status.assignment import auto_assign, is_offline
from services.status.conversations import (
    blocking,
    bounces,
    care_reports,
    erasure,
    sms_reports,
    transcript,
)
from services.status.models import PROCESSED, ConversationRow
from services.status.placement import (
    ROUTER,
    crisis_kinds,
    escalates,
    keeps_place,
    stays_with_patron,
)
from services.status.stats.models import DeskStatRow
from shared.db import claim_events
from shared.events import (
    CareReportFiled,
    CareReportWithdrawn,
    ContactBlocked,
    ContactUnblocked,
    ConversationClaimed,
    ConversationClosed,
    ConversationConverted,
    ConversationErased,
    ConversationReleased,
    ConversationTagged,
    ConversationTransferred,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Priority,
    RoutingDecided,
    SmsStatusReported,
    StaffNoteAdded,
)

CONSUMER = "status"
PRIORITY_RANK = {Priority.URGENT.value: 0, Priority.HIGH.value: 1, Priority.NORMAL.value: 2}


@dataclass(frozen=True)
class Assigning:
    """Auto-assignment settings the handlers need."""

    enabled: bool = False
    capacity: int = 3


async def _get_or_new(
    session: AsyncSession,
    conversation_id: str,
    channel: str,
    at: datetime,
    *,
    off_the_desk: bool = False,
) -> ConversationRow:
    """The conversation, or a new row for it (`off_the_desk`: kept off the desk until the
    patron's first message arrives, `_known_or_waiting`)."""
    conv = await rows.get(session, ConversationRow, conversation_id)
    if conv is None:
        conv = rows.add(
            session,
            ConversationRow(
                conversation_id=conversation_id,
                channel=channel,
                opened_at=at,
                last_message_at=at,
                automatic_only=off_the_desk,
            ),
        )
    return conv


async def _known_or_waiting(
    session: AsyncSession, conversation_id: str, at: datetime, channel: str = "chat"
) -> ConversationRow:
    """The conversation, or a row kept off the desk until the patron's first message arrives.
    A rebuild from the topics reads them in no common order, so a claim, a close, a reply or an
    acknowledgement can come before the message it follows: dropped, they had left a rebuilt
    queue with answered patrons waiting, closed conversations open and librarians unassigned
    (an outside review). The first message makes it the patron's (`on_interaction`)."""
    return await _get_or_new(session, conversation_id, channel, at, off_the_desk=True)


def _unassign(conv: ConversationRow, at: datetime) -> None:
    conv.assignee, conv.assignee_since = None, at


def _newer(conv: ConversationRow, at: datetime) -> bool:
    return conv.assignee_since is None or at >= conv.assignee_since


async def on_interaction(
    session: AsyncSession, data: InteractionReceived, assigning: Assigning
) -> None:
    """A patron's message opens a conversation, or updates (and maybe reopens) it (mail a mail
    system sent: `on_automatic`)."""
    if data.automatic is not None:
        await on_automatic(session, data)
        return
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.received_at)
    if data.blocked and conv.routed and not conv.automatic_only:
        await _from_blocked(session, conv, data)
        return
    if conv.automatic_only:  # the first person to write: the conversation starts with them
        conv.automatic_only = False
        conv.opened_at = conv.last_message_at = data.received_at
        if conv.converted_from is None:  # a row a staff action's event made first
            conv.channel = data.channel.value
    else:
        conv.opened_at = min(conv.opened_at, data.received_at)
        conv.last_message_at = max(conv.last_message_at, data.received_at)
    # the one message waiting so far was a keyword refdesk answered (HOURS, HELP): a message
    # after it waits from its own time
    after_keyword = conv.keyword_answered is not None
    after_keyword = after_keyword and conv.keyword_answered == conv.last_interaction_id
    conv.last_interaction_id = data.interaction_id
    # the first sender is the patron: a later message into the same thread from another
    # address (a forwarded copy, a crafted ticket tag) never redirects the desk's replies
    if data.patron.contact and conv.patron_contact is None and conv.converted_from is None:
        conv.patron_contact = data.patron.contact
    if data.bulk:  # mailed to many: staff transfers and closes answer it with nothing
        conv.bulk = True
    if data.patron.unverified:  # its From may be forged: the conversation says so
        conv.sender_unverified = True
    if conv.department is None and data.department_hint:
        conv.department = data.department_hint
    # reopened by a message the close did not account for: received after the latest one it
    # did (`closed_through`), even if it was on its way when the close was made
    cut = conv.closed_through if conv.closed_through is not None else conv.closed_at
    if conv.state == "closed" and data.received_at > (cut or data.received_at):
        conv.state, conv.closed_at, conv.closed_through = "open", None, None
        _unassign(conv, data.received_at)
    # written after the claim (a rebuild may read the claim before an earlier message)
    replied_since = conv.assignee_since is None or data.received_at > conv.assignee_since
    if (
        conv.assignee
        and replied_since
        and await is_offline(session=session, staff_id=conv.assignee)
    ):
        held_by = conv.assignee
        _unassign(conv, data.received_at)  # the patron replied, nobody is there: back to the queue
        again = ""
        if conv.crisis and conv.acknowledged_at is not None:
            # who acknowledged the crisis has gone: it waits for someone to acknowledge it
            # again, on top of every queue, and supervisors hear of it if nobody does
            conv.acknowledged_at = conv.acknowledged_by = conv.reescalated_at = None
            conv.reescalations = 0
            conv.crisis_at = data.received_at
            again = "; the crisis needs acknowledging again"
        await transcript.timeline(
            session,
            conv,
            key=f"unassigned:{data.interaction_id}",
            at=data.received_at,
            author=held_by,
            kind="unassigned",
            text="Back in the queue (its librarian was Offline when the patron wrote"
            f"{again}): claimed until then by {held_by}",
        )
    await transcript.on_interaction(session, conv, data, after_keyword=after_keyword)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def _from_blocked(
    session: AsyncSession, conv: ConversationRow, data: InteractionReceived
) -> None:
    """A blocked sender's message in a conversation the desk already has (blocked from it): a
    line of its transcript, but it neither reopens the conversation nor makes it wait, so the
    harasser cannot pull it back to the top of the queue. If the router escalates or flags it
    (`on_routing`), the decision does both."""
    conv.last_message_at = max(conv.last_message_at, data.received_at)
    conv.blocked = True
    await transcript.on_interaction_line(session, conv, data)


async def on_automatic(session: AsyncSession, data: InteractionReceived) -> None:
    """Mail a mail system sent (an automatic reply, a bounce): a line of its conversation, but
    nobody's message. It never reopens, assigns or unassigns the conversation, nor changes what
    the queue says of the patron (contact, name, subject, preview, when they last wrote); a
    conversation it opens stays off the desk until a person writes or the router routes it (a
    crisis). A bounce marks the email it reports on (`bounces`)."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is None:
        conv = rows.add(
            session,
            ConversationRow(
                conversation_id=data.conversation_id,
                channel=data.channel.value,
                opened_at=data.received_at,
                last_message_at=data.received_at,
                automatic_only=True,
            ),
        )
    elif conv.automatic_only:  # nobody sees it: retention counts from its newest line
        conv.last_message_at = max(conv.last_message_at, data.received_at)
    await transcript.on_automatic(session, conv, data)
    await bounces.on_bounce(session, data)


async def on_routing(session: AsyncSession, data: RoutingDecided, assigning: Assigning) -> None:
    """The router's (or a staff transfer's) decision sets department, priority and flags. A
    follow-up (a later message of a conversation the router had routed) moves it only to
    escalate a crisis: otherwise it stays with its department and librarian. The router's
    escalation keeps the librarian who has the patron (`stays_with_patron`). A crisis
    conversation is never moved by the router (only by staff)."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.decided_at)
    crisis = escalates(data)
    kept = keeps_place(data, crisis=conv.crisis, department=conv.department)
    newer = _newer(conv, data.decided_at)
    # a conversation with no department yet takes it from any decision: in a rebuild a claim
    # (later than the decision) can be read first, and had left it in no department at all
    if not kept and (newer or conv.department is None):
        # a ticket the router made because nobody there was Online reaches the desk too
        conv.unstaffed = data.fallback is not None and data.decided_by == ROUTER and not crisis
        if conv.department != data.department:
            conv.department = data.department
            if newer and not stays_with_patron(data):
                _unassign(conv, data.decided_at)
    # an overnight ticket stays overnight, and a later message never lowers the priority
    conv.overnight = conv.overnight or data.overnight
    if PRIORITY_RANK[data.priority.value] < PRIORITY_RANK.get(conv.priority, 2):
        conv.priority = data.priority.value
    if crisis and not conv.crisis:
        conv.crisis, conv.crisis_at = True, data.decided_at
    if crisis:
        conv.crisis_kinds = crisis_kinds(data, conv.crisis_kinds)
        if not conv.care_alert_failed:  # its outcome may have come before the conversation
            conv.care_alert_failed = await transcript.care_alert_refused(
                session, conv.conversation_id
            )
    # a blocked sender's message the router escalated or flagged: the desk must read it now
    # (its line may come after the decision: the desk's own blocklist says it is theirs)
    flagged_blocked = (crisis or data.safety_review) and (
        conv.blocked or await blocking.in_force(session, blocking.contacts_of(conv)) is not None
    )
    reopen = crisis or flagged_blocked
    if reopen and conv.state == "closed" and data.decided_at > (conv.closed_at or data.decided_at):
        # a crisis decided after the close (a crisis statement in a patron's automatic reply,
        # which reopens nothing itself) is never left in a closed conversation
        conv.state, conv.closed_at = "open", None
        _unassign(conv, data.decided_at)
    if flagged_blocked and conv.waiting_since is None:
        conv.waiting_since = data.decided_at
    await transcript.on_routing(session, conv, data, kept=kept)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


def crisis_waits(conv: ConversationRow) -> bool:
    """A crisis nobody has acknowledged: it stays open, in the CARE Team's department, and is
    re-escalated until someone who may acknowledge it does. Staff actions cannot close or move
    it (the crisis gate); neither can the chat platform's events (a platform that closes stale
    tickets, or a compromised platform account, closed one four seconds after the escalation
    and it left every queue and the re-escalation sweep: an outside review)."""
    return bool(conv.crisis) and conv.acknowledged_at is None


async def on_closed(session: AsyncSession, data: ConversationClosed, _assigning: Assigning) -> None:
    """A chat ended or a ticket was closed; an unacknowledged crisis stays open (the close is
    on its timeline)."""
    conv = await _known_or_waiting(
        session, data.conversation_id, data.closed_at, data.channel.value
    )
    # a patron message applied since, that the close did not account for (on its way when a
    # librarian closed it), keeps it open
    unseen = (
        data.through is not None
        and conv.last_patron_at is not None
        and conv.last_patron_at > data.through
    )
    kept = conv.state == "open" and crisis_waits(conv)
    if conv.state == "open" and not unseen and not kept:
        conv.state, conv.closed_at, conv.closed_by = "closed", data.closed_at, data.closed_by
        conv.closed_through = data.through
    # the close's tags reach the queue's row through the statistics row (`_mirror_tags`)
    await transcript.on_closed(session, conv, data, kept_open=kept)


async def on_transferred(
    session: AsyncSession, data: ConversationTransferred, assigning: Assigning
) -> None:
    """The platform moved a conversation to another department; an unacknowledged crisis
    stays where it is (the transfer is on its timeline)."""
    conv = await _get_or_new(session, data.conversation_id, data.channel.value, data.transferred_at)
    if crisis_waits(conv):
        await transcript.on_transferred(session, conv, data, kept=True)
        return
    conv.department, conv.note = data.department, data.note
    conv.unstaffed = False
    _unassign(conv, data.transferred_at)
    await transcript.on_transferred(session, conv, data)
    if assigning.enabled:
        await auto_assign(session=session, conv=conv, capacity=assigning.capacity)


async def on_notification(
    session: AsyncSession, data: NotificationRequested, _assigning: Assigning
) -> None:
    """A message refdesk will send: a queued transcript line."""
    # the line is kept even if the conversation's first event has not arrived yet; a staff
    # reply read first (a rebuild) still answers the patron's earlier messages
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is None and data.kind is NotificationKind.STAFF_REPLY:
        conv = await _known_or_waiting(
            session, data.conversation_id, data.requested_at, data.channel.value
        )
    await transcript.on_notification(session, conv, data)


async def on_delivered(
    session: AsyncSession, data: NotificationDelivered, _assigning: Assigning
) -> None:
    """The notifier's outcome for a message (and what the carrier reported first about a text,
    or a mail system about an email)."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    await transcript.on_delivered(session, conv, data)
    await sms_reports.on_delivered(session, data)
    await bounces.on_delivered(session, data)


async def on_sms_report(
    session: AsyncSession, data: SmsStatusReported, _assigning: Assigning
) -> None:
    """What the SMS provider reported about a text: delivered, or not and why."""
    await sms_reports.on_reported(session, data)


async def on_note(session: AsyncSession, data: StaffNoteAdded, _assigning: Assigning) -> None:
    """A staff note."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    await transcript.on_note(session, conv, data)


async def on_claimed(
    session: AsyncSession, data: ConversationClaimed, _assigning: Assigning
) -> None:
    """A claim, unless a later transfer or claim already changed the assignee."""
    conv = await _known_or_waiting(session, data.conversation_id, data.at)
    if _newer(conv, data.at):
        conv.assignee, conv.assignee_since = data.staff_id, data.at
    if conv.first_response_at is None:
        conv.first_response_at = data.at
    await transcript.on_claimed(session, conv, data)


async def on_released(
    session: AsyncSession, data: ConversationReleased, _assigning: Assigning
) -> None:
    """A release, if the conversation is still with whom it was taken from (a later claim or
    transfer wins)."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is None:
        return
    if conv.assignee == data.assignee and _newer(conv, data.at):
        _unassign(conv, data.at)
    await transcript.on_released(session, conv, data)


async def on_acknowledged(
    session: AsyncSession, data: CrisisAcknowledged, _assigning: Assigning
) -> None:
    """A crisis acknowledged (its re-escalation stops)."""
    conv = await _known_or_waiting(session, data.conversation_id, data.at)
    if conv.acknowledged_at is None:
        conv.acknowledged_at, conv.acknowledged_by = data.at, data.staff_id
    await transcript.on_acknowledged(session, conv, data)


async def on_care_report(
    session: AsyncSession, data: CareReportFiled, _assigning: Assigning
) -> None:
    """A staff member's record of the CARE Team's incident report: kept once, whoever wrote it
    first (the action or this consumer); the conversation shows the earliest standing."""
    conv = await _known_or_waiting(session, data.conversation_id, data.at)
    if await care_reports.record(session, data.conversation_id, data.staff_id, data.at):
        await transcript.on_care_report(session, conv, data)
    await care_reports.settle(session, conv)


async def on_care_report_withdrawn(
    session: AsyncSession, data: CareReportWithdrawn, _assigning: Assigning
) -> None:
    """A record of the CARE Team's report taken back: that record alone (a colleague's, or one
    made again since, stands)."""
    conv = await _known_or_waiting(session, data.conversation_id, data.at)
    await care_reports.withdraw(
        session,
        data.conversation_id,
        filed_by=data.filed_by,
        filed_at=data.filed_at,
        by=data.staff_id,
        at=data.at,
    )
    await transcript.on_care_report_withdrawn(session, conv, data)
    await care_reports.settle(session, conv)


async def on_contact_blocked(
    session: AsyncSession, data: ContactBlocked, _assigning: Assigning
) -> None:
    """A contact blocked (another replica's block, or a rebuild): in the list once, and on the
    conversation's timeline as the action wrote it."""
    await blocking.record_block(session, data)
    conv = await _blocked_from(session, data.conversation_id)
    if conv is not None:
        await transcript.on_contact_blocked(session, conv, data)


async def on_contact_unblocked(
    session: AsyncSession, data: ContactUnblocked, _assigning: Assigning
) -> None:
    """A contact unblocked: its blocks made before it are lifted, and the timeline says so."""
    await blocking.record_unblock(session, data)
    conv = await _blocked_from(session, data.conversation_id)
    if conv is not None:
        await transcript.on_contact_unblocked(session, conv, data)


async def _blocked_from(
    session: AsyncSession, conversation_id: str | None
) -> ConversationRow | None:
    """The conversation a block names, unless gone or purged (nothing more is added to it)."""
    if conversation_id is None:
        return None
    conv = await rows.get(session, ConversationRow, conversation_id)
    return conv if conv is not None and conv.purged_at is None else None


async def on_converted(
    session: AsyncSession, data: ConversationConverted, _assigning: Assigning
) -> None:
    """An SMS thread became an email ticket."""
    conv = await rows.get(session, ConversationRow, data.conversation_id)
    if conv is None:
        return
    if conv.channel == "sms":  # not again on a replay: the number is gone by then
        conv.texted_from = conv.patron_contact
    conv.channel, conv.converted_from, conv.patron_contact = "email", "sms", data.email
    await transcript.on_converted(session, conv, data)


async def _mirror_tags(session: AsyncSession, conversation_id: str | None) -> None:
    """The queue's row shows the tags the statistics row settled on: the newest of the close's
    and the edits', whichever topic's event was applied first (the conversation's own row may
    not exist yet when a tag arrives)."""
    stat = await rows.get(session, DeskStatRow, conversation_id)
    if stat is None or stat.tagged_at is None:
        return
    conv = await rows.get(session, ConversationRow, conversation_id)
    if conv is not None and (conv.read_scale, conv.topic) != (stat.read_scale, stat.topic):
        conv.read_scale, conv.topic = stat.read_scale, stat.topic


async def _purged(session: AsyncSession, data: BaseModel) -> bool:
    """Whether the event belongs to a closed conversation whose transcript retention removed:
    a replay from a rewound group must not bring the student data back. A new message from
    the patron after the close is not such an event: it reopens the conversation (mail a mail
    system sent reopens nothing, so it is dropped)."""
    conversation_id = getattr(data, "conversation_id", None)
    if conversation_id is None:
        return False
    conv = await rows.get(session, ConversationRow, conversation_id)
    if conv is None or conv.purged_at is None or conv.state != "closed":
        return False
    if isinstance(data, InteractionReceived) and data.automatic is None:
        if conv.closed_at is not None and data.received_at > conv.closed_at:
            conv.purged_at = None
            return False
    return True


Effect = Callable[[AsyncSession, Any, Assigning], Awaitable[None]]

HANDLERS: dict[type[BaseModel], Effect] = {
    InteractionReceived: on_interaction,
    ConversationClosed: on_closed,
    ConversationTransferred: on_transferred,
    RoutingDecided: on_routing,
    NotificationRequested: on_notification,
    NotificationDelivered: on_delivered,
    SmsStatusReported: on_sms_report,
    StaffNoteAdded: on_note,
    ConversationClaimed: on_claimed,
    ConversationReleased: on_released,
    CrisisAcknowledged: on_acknowledged,
    CareReportFiled: on_care_report,
    CareReportWithdrawn: on_care_report_withdrawn,
    ContactBlocked: on_contact_blocked,
    ContactUnblocked: on_contact_unblocked,
    ConversationConverted: on_converted,
    ConversationTagged: stats.on_tagged,
    ConversationErased: erasure.on_erased,
}


def _entry_key(data: BaseModel) -> str | None:
    """The transcript line an event writes, when it is one of the frequent kinds."""
    if isinstance(data, InteractionReceived):
        return data.interaction_id
    if isinstance(data, RoutingDecided):
        return f"decision:{data.decision_id}"
    if isinstance(data, NotificationRequested | NotificationDelivered):
        return data.idempotency_key
    return None


async def _preload(session: AsyncSession, events: list[BaseModel]) -> None:
    """The rows a batch's events touch, in one query per table."""
    conversations = {getattr(data, "conversation_id", None) for data in events}
    await rows.preload(session, ConversationRow, conversations)
    await rows.preload(session, DeskStatRow, conversations)
    await transcript.preload(session, (_entry_key(data) for data in events))
    await sms_reports.preload(session, events)
    await bounces.preload(session, events)


def _write(session: Session) -> None:
    rows.write(session)
    transcript.write(session)


async def apply_batch(
    session: AsyncSession, items: Sequence[tuple[str, BaseModel]], *, assigning: Assigning
) -> list[bool]:
    """Apply a poll batch's events in order, each once (the ids are claimed in one statement,
    the rows they touch loaded in one query per table, everything flushed once; the caller
    commits). Per event: whether it was applied (False if seen before, ignored, or purged)."""
    known = [(event_id, data) for event_id, data in items if type(data) in HANDLERS]
    claimed = await claim_events(session, PROCESSED, CONSUMER, [eid for eid, _ in known])
    fresh = [data for event_id, data in known if event_id in claimed]
    applied: dict[str, bool] = {}
    try:
        await _preload(session, fresh)
        for event_id, data in known:
            if event_id not in claimed or event_id in applied:
                continue
            applied[event_id] = not await _purged(session, data)
            if applied[event_id]:
                await HANDLERS[type(data)](session, data, assigning)
                await stats.observe(session, data)
                await _mirror_tags(session, getattr(data, "conversation_id", None))
        await session.run_sync(_write)
        await session.flush()
    finally:
        rows.forget(session)
    # each id answers once, at its first place in the batch: a repeat within it is not applied
    first = {event_id: index for index, (event_id, _) in reversed(list(enumerate(items)))}
    return [
        first[event_id] == i and applied.get(event_id, False)
        for i, (event_id, _) in enumerate(items)
    ]


async def apply(
    session: AsyncSession, *, event_id: str, data: BaseModel, assigning: Assigning
) -> bool:
    """Apply one event once (claim + effect, same transaction; caller commits); False if seen
    before or of a type this service ignores."""
    return (await apply_batch(session, [(event_id, data)], assigning=assigning))[0]
