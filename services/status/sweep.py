"""Background sweeps: lapsed heartbeats, unacknowledged crises and replies that have not gone
out (clock passed in)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor, has_role
from services.status.conversations.transcript import (
    REPLY_OVERDUE,
    UNDELIVERED,
    WENT_OUT,
    changed,
)
from services.status.models import (
    CARE_ALERT_LATE,
    CARE_ALERT_UNSENT,
    CRISIS_UNANSWERED,
    IS_OPEN,
    REOPENED,
    REPLY_UNSENT,
    Conversation,
    Presence,
    Staff,
    TranscriptEntry,
)
from services.status.presence import HEARTBEAT_LAPSE, set_status
from shared.db import broad
from shared.events import (
    Channel,
    CrisisReescalationContext,
    DeliveryState,
    NotificationKind,
    NotificationRequested,
    PresenceChanged,
    Priority,
    StaffStatus,
    derived_id,
)


def lapsed_status(
    *,
    status: StaffStatus,
    last_heartbeat_at: datetime | None,
    since: datetime,
    now: datetime,
    away_after_s: float,
    offline_after_s: float,
) -> StaffStatus | None:
    """What a silent dashboard turns a status into, or None if it stays."""
    if status == StaffStatus.OFFLINE:
        return None
    silent_s = (now - (last_heartbeat_at or since)).total_seconds()
    if silent_s >= offline_after_s:
        return StaffStatus.OFFLINE
    if status == StaffStatus.ONLINE and silent_s >= away_after_s:
        return StaffStatus.AWAY
    return None


async def sweep_heartbeats(
    *, session: AsyncSession, now: datetime, away_after_s: float, offline_after_s: float
) -> list[PresenceChanged]:
    """Apply lapsed-heartbeat transitions; the presence events to publish after commit."""
    rows = (await session.execute(select(Presence))).scalars().all()
    events: list[PresenceChanged] = []
    for presence in rows:
        target = lapsed_status(
            status=StaffStatus(presence.status),
            last_heartbeat_at=presence.last_heartbeat_at,
            since=presence.since,
            now=now,
            away_after_s=away_after_s,
            offline_after_s=offline_after_s,
        )
        if target is None:
            continue
        event = await set_status(
            session=session,
            staff_id=presence.staff_id,
            status=target,
            actor_id=HEARTBEAT_LAPSE,
            now=now,
            note="heartbeat lapsed",
            shift="end" if target == StaffStatus.OFFLINE else None,
        )
        if event is not None:
            events.append(event)
    return events


async def supervisors_on_shift(*, session: AsyncSession) -> list[Staff]:
    """Active supervisors (and admins) who are Online: available now. Away is "not currently
    available" in the desk's procedures, so it does not count (a re-escalation had gone to
    an Away supervisor alone: an outside patron-safety review)."""
    rows = await session.execute(
        select(Staff)
        .join(Presence, Presence.staff_id == Staff.id)
        .where(Staff.active.is_(True), Presence.status == StaffStatus.ONLINE.value)
        .order_by(Staff.id)
    )
    return [s for s in rows.scalars() if has_role(Actor(id=s.id, role=s.role), "supervisor")]


async def supervisors_to_alert(*, session: AsyncSession) -> list[Staff]:
    """Who a re-escalation goes to: the supervisors Online, or with none Online (nights,
    weekends, everyone Away) every active supervisor, so a crisis nobody acknowledged reaches
    someone in minutes and not when the first supervisor signs in the next morning."""
    on_shift = await supervisors_on_shift(session=session)
    if on_shift:
        return on_shift
    rows = await session.execute(select(Staff).where(Staff.active.is_(True)).order_by(Staff.id))
    return [s for s in rows.scalars() if has_role(Actor(id=s.id, role=s.role), "supervisor")]


DUE_CRISES = (
    select(Conversation)
    # `state = 'open'` is broad: without table statistics SQLite's planner would otherwise read
    # every open conversation through the `state` index rather than the crisis index
    .where(broad(IS_OPEN), *CRISIS_UNANSWERED, Conversation.crisis_at <= bindparam("cutoff"))
    .order_by(Conversation.crisis_at)
)
"""Crises awaiting acknowledgement since before `cutoff`, oldest first: read off their partial
index, so the sweep costs the few crises, not every open conversation. Which of them a round is
due for is `reminder_due`."""

REMINDER_STEPS = 6
"""Reminders grow apart: the n-th round comes n acknowledgement timeouts after the one before,
up to this many (5, 10, 15, ... 30 minutes apart with the default 5-minute timeout)."""


def reminder_due(conv: Conversation, now: datetime, ack_timeout_s: float) -> bool:
    """Whether a crisis past its first timeout is due a re-escalation round now: the first at
    once, each later one `min(rounds, REMINDER_STEPS)` timeouts after the last."""
    if not conv.reescalations or conv.reescalated_at is None:
        return True
    wait = ack_timeout_s * min(conv.reescalations, REMINDER_STEPS)
    return now - conv.reescalated_at >= timedelta(seconds=wait)


async def due_reescalations(
    *, session: AsyncSession, now: datetime, ack_timeout_s: float, care_report_url: str
) -> tuple[list[Conversation], list[NotificationRequested]]:
    """Crises nobody acknowledged in time, and one alert per supervisor for each: those on
    shift, or every active supervisor when nobody is (`supervisors_to_alert`).

    The caller publishes the alerts, then stamps `reescalated_at` and commits; the keys make
    a repeat after a crash harmless. With no active supervisor at all nothing is due yet. Each
    alert's context is built by its model, as the notifier reads it.
    """
    cutoff = now - timedelta(seconds=ack_timeout_s)
    waiting = (await session.execute(DUE_CRISES, {"cutoff": cutoff})).scalars().all()
    rows = [conv for conv in waiting if reminder_due(conv, now, ack_timeout_s)]
    supervisors = await supervisors_to_alert(session=session) if rows else []
    if not supervisors:
        return [], []
    staff = {c.assignee for c in rows if c.assignee} | {c.care_report_by for c in rows}
    names = await _names(session, {s for s in staff if s})
    alerts = [
        NotificationRequested(
            idempotency_key=_reescalation_key(conv, sup.id),
            kind=NotificationKind.CRISIS_REESCALATION,
            channel=Channel.EMAIL,
            recipient=sup.email,
            conversation_id=conv.conversation_id,
            interaction_id=conv.last_interaction_id,
            priority=Priority.URGENT,
            requested_at=now,
            context=_reescalation(conv, now, care_report_url, names).model_dump(mode="json"),
        )
        for conv in rows
        for sup in supervisors
    ]
    return list(rows), alerts


def _reescalation_key(conv: Conversation, supervisor: str) -> str:
    """One round's alert to one supervisor: the same key if the round is asked for again (a
    crash before it was stamped), another for the next round, and for the rounds of a crisis
    flagged anew (`crisis_at` moves)."""
    flagged = conv.crisis_at.isoformat() if conv.crisis_at else ""
    return derived_id(
        conv.conversation_id, "reescalate", supervisor, flagged, str(conv.reescalations + 1)
    )


def _reescalation(
    conv: Conversation, now: datetime, care_report_url: str, names: dict[str, str]
) -> CrisisReescalationContext:
    alerted = conv.crisis_at or now
    return CrisisReescalationContext(
        conversation_ref=conv.conversation_id,
        channel=Channel(conv.channel),
        care_report_url=care_report_url,
        minutes_unacknowledged=max(1, int((now - alerted).total_seconds() // 60)),
        alerted_at=alerted.isoformat(),
        librarian=names.get(conv.assignee) if conv.assignee else None,
        patron_lang=conv.lang,
        attempt=conv.reescalations + 1,
        crisis_kinds=conv.crisis_kinds.split(",") if conv.crisis_kinds else [],
        care_report_filed_by=names.get(conv.care_report_by, conv.care_report_by)
        if conv.care_report_by
        else None,
        care_report_filed_at=conv.care_report_at.isoformat() if conv.care_report_at else None,
    )


async def _names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    """Staff display names by id (a re-escalation names who has the patron)."""
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(ids)))
    return {staff_id: name for staff_id, name in rows}


UNSENT_ANSWERS = (
    select(Conversation, TranscriptEntry.id, TranscriptEntry.at)
    .join(TranscriptEntry, TranscriptEntry.conversation_id == Conversation.conversation_id)
    .where(
        REPLY_UNSENT,
        TranscriptEntry.at <= bindparam("cutoff"),
        broad(IS_OPEN),  # as DUE_CRISES: the unsent replies are fewer than the open rows
        Conversation.waiting_since.is_(None),
        Conversation.unsent_reply.is_(None),
        Conversation.answered_at == TranscriptEntry.at,
    )
)
"""Open conversations answered last by a reply still unsent at `cutoff` (read off the partial
index of unsent replies)."""

WAITING_AGAIN = (
    select(
        Conversation,
        TranscriptEntry.at,
        TranscriptEntry.delivery_state,
    )
    .outerjoin(TranscriptEntry, TranscriptEntry.id == Conversation.unsent_reply)
    .where(REOPENED)
)
"""Conversations waiting again for their unsent reply, with where that reply stands."""


async def reopen_unsent(*, session: AsyncSession, now: datetime) -> int:
    """Put back to waiting the patrons whose latest answer has not gone out `REPLY_OVERDUE`
    after it was written (the mail relay or Twilio down: the notifier retries for days), and
    answer again those whose reply has since gone out; the number of conversations changed.

    The consumer answers them again itself when it applies the reply's outcome; this catches
    an outcome applied while the sweep was marking. Each change is a conditional UPDATE on what
    was read (another replica's sweep, a patron's new message or the outcome between the read
    and the write leave it undone), the reply's line held first so that an outcome being
    written waits for it.
    """
    count = 0
    cutoff = now - REPLY_OVERDUE
    for conv, line_id, at in (await session.execute(UNSENT_ANSWERS, {"cutoff": cutoff})).all():
        if conv.last_patron_at is None or conv.last_patron_at > at:
            continue
        held: Any = await session.execute(
            update(TranscriptEntry)
            .where(TranscriptEntry.id == line_id, REPLY_UNSENT)
            .values(delivery_state=TranscriptEntry.delivery_state)
            .execution_options(synchronize_session=False)
        )
        if held.rowcount != 1:
            continue
        count += await _set(
            session,
            conv,
            expected=(None, None),
            waiting_since=conv.last_patron_at,
            unsent_reply=line_id,
            now=now,
        )
    for conv, at, state in (await session.execute(WAITING_AGAIN)).all():
        if state == DeliveryState.QUEUED.value and conv.state == "open":
            continue
        waiting = conv.waiting_since
        out = state in WENT_OUT and state != UNDELIVERED and at is not None  # reached them
        patron = conv.last_patron_at
        if out and waiting is not None and waiting <= at and (patron is None or patron <= at):
            waiting = None
        count += await _set(
            session,
            conv,
            expected=(conv.waiting_since, conv.unsent_reply),
            waiting_since=waiting,
            unsent_reply=None,
            now=now,
        )
    return count


CARE_ALERTS_UNSENT = (
    select(Conversation, TranscriptEntry.id)
    .join(TranscriptEntry, TranscriptEntry.conversation_id == Conversation.conversation_id)
    .where(
        CARE_ALERT_UNSENT,
        TranscriptEntry.at <= bindparam("cutoff"),
        Conversation.care_alert_unsent.is_(None),
    )
)
"""Conversations with a CARE Team alert still not reported on at `cutoff`, not yet flagged
(read off the partial index of unsent alerts)."""

CARE_ALERTS_FLAGGED = (
    select(Conversation)
    .outerjoin(TranscriptEntry, TranscriptEntry.id == Conversation.care_alert_unsent)
    .where(CARE_ALERT_LATE, TranscriptEntry.delivery_state.is_not(None))
)
"""Flagged conversations whose alert has since been reported on (sent or failed)."""


async def flag_unsent_care_alerts(*, session: AsyncSession, now: datetime) -> int:
    """Flag the conversations whose CARE Team alert has not gone out `REPLY_OVERDUE` after it
    was asked for (the relay down: the notifier keeps trying for hours and says nothing until
    it gives up), so the queue says so on the crisis's row; and clear the flag of those whose
    alert has since been reported on. The number of conversations changed.

    The consumer clears the flag itself when it applies the alert's outcome; the second read
    catches an outcome applied while the sweep was flagging. As in `reopen_unsent`, the alert's
    line is held first (an outcome being written waits for it) and each write is conditional
    on what was read.
    """
    count = 0
    cutoff = now - REPLY_OVERDUE
    for conv, line_id in (await session.execute(CARE_ALERTS_UNSENT, {"cutoff": cutoff})).all():
        held: Any = await session.execute(
            update(TranscriptEntry)
            .where(TranscriptEntry.id == line_id, CARE_ALERT_UNSENT)
            .values(delivery_state=TranscriptEntry.delivery_state)
            .execution_options(synchronize_session=False)
        )
        if held.rowcount == 1:
            count += await _flag_care_alert(session, conv, expected=None, value=line_id, now=now)
    for conv in (await session.execute(CARE_ALERTS_FLAGGED)).scalars().all():
        expected = conv.care_alert_unsent
        count += await _flag_care_alert(session, conv, expected=expected, value=None, now=now)
    return count


async def _flag_care_alert(
    session: AsyncSession,
    conv: Conversation,
    *,
    expected: str | None,
    value: str | None,
    now: datetime,
) -> int:
    """Write `care_alert_unsent` if it still reads `expected`; 1 if it did."""
    still = [Conversation.care_alert_unsent.is_not_distinct_from(expected)]
    return await _write_if(session, conv, still, now, care_alert_unsent=value)


async def _set(
    session: AsyncSession,
    conv: Conversation,
    *,
    expected: tuple[datetime | None, str | None],
    waiting_since: datetime | None,
    unsent_reply: str | None,
    now: datetime,
) -> int:
    """Write the two columns if the conversation still reads as it was read; 1 if it did."""
    c = Conversation
    still = [
        c.waiting_since.is_not_distinct_from(expected[0]),
        c.unsent_reply.is_not_distinct_from(expected[1]),
        c.last_patron_at.is_not_distinct_from(conv.last_patron_at),
        c.answered_at.is_not_distinct_from(conv.answered_at),
    ]
    return await _write_if(
        session, conv, still, now, waiting_since=waiting_since, unsent_reply=unsent_reply
    )


async def _write_if(
    session: AsyncSession,
    conv: Conversation,
    still: list[ColumnElement[bool]],
    now: datetime,
    **values: Any,
) -> int:
    """Write these columns of the conversation if it `still` reads as the sweep read it (a
    conditional UPDATE: another replica's sweep, the consumer or a patron in between leave it
    undone), and tell the consoles; 1 if it was written."""
    done: Any = await session.execute(
        update(Conversation)
        .where(Conversation.conversation_id == conv.conversation_id, *still)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        return 0
    changed(session, conv, "delivery", now)
    return 1
