"""The statistics projection: what each consumed event changes in a conversation's row.

`observe` is called by the status handlers' `apply` after the queue's effect, in the same
transaction and once per event id, so a consumer group rewound over the topics rebuilds the
rows. Every change is a minimum, a maximum or a newer-wins assignment, so events of one
conversation that arrive across topics in another order give the same row. The observer
table is at the bottom.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import rows
from services.status.conversations import care_reports
from services.status.placement import ROUTER, answered_keyword, escalates, keeps_place
from services.status.stats.desktime import buckets
from services.status.stats.models import DeskStatRow, DeskStatTransfer
from shared.events import (
    CareReportFiled,
    CareReportWithdrawn,
    ConversationClaimed,
    ConversationClosed,
    ConversationTagged,
    ConversationTransferred,
    CrisisAcknowledged,
    InteractionReceived,
    NotificationKind,
    NotificationRequested,
    RoutingDecided,
    derived_id,
)

PLATFORM = "platform"
PATH_MAX = 300


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


async def _row(
    session: AsyncSession, conversation_id: str, at: datetime, channel: str | None = None
) -> DeskStatRow:
    """The conversation's row. Until its first patron message is seen (events of one
    conversation may arrive from several topics in any order), it dates from its earliest
    event and its channel from the first event that names one."""
    row = await rows.get(session, DeskStatRow, conversation_id)
    if row is None:
        return rows.add(
            session,
            DeskStatRow(
                conversation_id=conversation_id,
                channel=channel or "",
                received_at=at,
                **buckets(at),
            ),
        )
    if row.last_message_at is None:
        row.received_at = min(row.received_at, at)
    if not row.channel and channel:
        row.channel = channel
    return row


def derive(row: DeskStatRow) -> None:
    """Recompute what follows from the stored facts: desk-time buckets and durations."""
    for column, value in buckets(row.received_at).items():
        if getattr(row, column) != value:
            setattr(row, column, value)
    # closed unless a patron message came after what the latest close accounted for (its
    # `through`, else its own time): the queue's rule (`handlers.on_interaction`)
    cut = row.closed_through if row.closed_through is not None else row.last_closed_at
    closed = cut is not None and (row.last_message_at is None or cut >= row.last_message_at)
    row.closed_at = row.last_closed_at if closed else None
    row.first_response_s = _seconds(row.received_at, row.first_response_at)
    row.resolution_s = _seconds(row.received_at, row.closed_at)
    row.ack_s = _seconds(row.crisis_at, row.acknowledged_at)


def _move(
    session: AsyncSession, row: DeskStatRow, *, to: str, by: str, at: datetime, key: str
) -> None:
    """Record a move to another department (the first routing is not a move)."""
    if row.received_by is None:
        row.received_by = row.department = row.path = to
        return
    if to == row.department:
        return
    session.add(
        DeskStatTransfer(
            id=key,
            conversation_id=row.conversation_id,
            from_department=row.department,
            to_department=to,
            by=by,
            at=at,
        )
    )
    row.transfers += 1
    row.department = to
    path = f"{row.path} > {to}" if row.path else to
    row.path = path if len(path) <= PATH_MAX else path[: PATH_MAX - 1] + "…"


async def on_interaction(session: AsyncSession, data: InteractionReceived) -> None:
    """A patron's message: the first one dates the question; a later one may reopen it. Mail
    a mail system sent (an automatic reply, a bounce) is nobody's question: not counted."""
    if data.automatic is not None:
        return
    row = await _row(session, data.conversation_id, data.received_at)
    if row.last_message_at is None:
        row.channel = data.channel.value
        row.received_at = row.last_message_at = data.received_at
    else:
        row.received_at = min(row.received_at, data.received_at)
        row.last_message_at = max(row.last_message_at, data.received_at)


async def on_routing(session: AsyncSession, data: RoutingDecided) -> None:
    """The router's decision (department, action, flags) or a staff transfer."""
    row = await _row(session, data.conversation_id, data.decided_at, data.channel.value)
    by_router = data.decided_by == ROUTER
    crisis = escalates(data)
    keyword = answered_keyword(data)
    if keyword and by_router and row.received_by is None:
        # a text of one keyword (STOP, HELP, HOURS) is nobody's question: a conversation of
        # keywords only is not counted (they had been questions, reference transactions in the
        # annual report among them); the question after them is received where it is routed
        return
    if by_router and not keyword and row.action is None and row.transfers == 0:
        # the first question after keywords only (STOP, START, HOURS): it is received where
        # the router puts it, not transferred there from the keyword's department
        row.received_by = row.department = row.path = None
    if not keeps_place(data, crisis=row.crisis, department=row.department):
        _move(
            session,
            row,
            to=data.department,
            by=data.decided_by,
            at=data.decided_at,
            key=data.decision_id,
        )
    if by_router and row.action is None and not keyword:
        row.action, row.lang = data.action.value, data.lang
    if not by_router:  # a staff transfer is a response to the patron
        row.first_response_at = _earliest(row.first_response_at, data.decided_at)
    row.overnight = row.overnight or data.overnight
    row.safety_review = row.safety_review or data.safety_review
    if crisis:
        row.crisis = True
        row.crisis_at = _earliest(row.crisis_at, data.decided_at)


async def on_transferred(session: AsyncSession, data: ConversationTransferred) -> None:
    """The chat platform moved the conversation."""
    row = await _row(session, data.conversation_id, data.transferred_at, data.channel.value)
    key = derived_id(
        data.conversation_id, "transferred", data.department, data.transferred_at.isoformat()
    )
    _move(session, row, to=data.department, by=data.by or PLATFORM, at=data.transferred_at, key=key)


async def on_closed(session: AsyncSession, data: ConversationClosed) -> None:
    """A close: the latest one counts; its tags unless a newer edit set them."""
    row = await _row(session, data.conversation_id, data.closed_at, data.channel.value)
    if row.last_closed_at is None or data.closed_at >= row.last_closed_at:
        row.last_closed_at, row.closed_by = data.closed_at, data.closed_by
        row.closed_through = data.through
    tagged = data.read_scale is not None or data.topic is not None
    if tagged and (row.tagged_at is None or data.closed_at >= row.tagged_at):
        row.read_scale = data.read_scale if data.read_scale is not None else row.read_scale
        row.topic = data.topic if data.topic is not None else row.topic
        row.tagged_at = data.closed_at


async def on_tagged(session: AsyncSession, data: ConversationTagged) -> None:
    """Tags edited after the close: the newest edit wins."""
    row = await _row(session, data.conversation_id, data.at)
    if row.tagged_at is None or data.at >= row.tagged_at:
        row.read_scale, row.topic, row.tagged_at = data.read_scale, data.topic, data.at


async def _first_response(session: AsyncSession, conversation_id: str, at: datetime) -> None:
    row = await _row(session, conversation_id, at)
    row.first_response_at = _earliest(row.first_response_at, at)


async def on_claimed(session: AsyncSession, data: ConversationClaimed) -> None:
    """A claim is staff's first response if nothing came before it."""
    await _first_response(session, data.conversation_id, data.at)


async def on_notification(session: AsyncSession, data: NotificationRequested) -> None:
    """A staff reply is a first response; automated messages are not."""
    if data.kind == NotificationKind.STAFF_REPLY:
        await _first_response(session, data.conversation_id, data.requested_at)


async def on_acknowledged(session: AsyncSession, data: CrisisAcknowledged) -> None:
    """A crisis acknowledged: the first acknowledgement counts."""
    row = await _row(session, data.conversation_id, data.at)
    row.acknowledged_at = _earliest(row.acknowledged_at, data.at)


async def on_care_report(session: AsyncSession, data: CareReportFiled) -> None:
    """Staff recorded filing the CARE Team's incident report on the conversation's patron."""
    row = await _row(session, data.conversation_id, data.at)
    row.care_report = True


async def on_care_report_withdrawn(session: AsyncSession, data: CareReportWithdrawn) -> None:
    """A record of the CARE Team's report taken back: counted while a colleague's record (or
    one made again) stands."""
    row = await _row(session, data.conversation_id, data.at)
    row.care_report = bool(await care_reports.standing(session, data.conversation_id))


Observer = Callable[[AsyncSession, Any], Awaitable[None]]

OBSERVERS: dict[type[BaseModel], Observer] = {
    InteractionReceived: on_interaction,
    RoutingDecided: on_routing,
    ConversationTransferred: on_transferred,
    ConversationClosed: on_closed,
    ConversationTagged: on_tagged,
    ConversationClaimed: on_claimed,
    NotificationRequested: on_notification,
    CrisisAcknowledged: on_acknowledged,
    CareReportFiled: on_care_report,
    CareReportWithdrawn: on_care_report_withdrawn,
}


async def observe(session: AsyncSession, data: BaseModel) -> None:
    """Apply one event to the statistics (the caller claims the event id and commits)."""
    observer = OBSERVERS.get(type(data))
    if observer is None:
        return
    await observer(session, data)
    row = await rows.get(session, DeskStatRow, getattr(data, "conversation_id", None))
    if row is not None:
        derive(row)
