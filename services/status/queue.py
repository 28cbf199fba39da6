"""The desk queue: who sees which conversations, in what order, and how a row reads.

Order (written once, here): crises first, then conversations flagged for safety review, then
overnight tickets oldest first, then the rest oldest first.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor, has_role
from services.status.conversations.policy import CRISIS_DEPARTMENTS, DESK
from services.status.models import Conversation
from shared.events import Channel

CHANNEL_LABELS = {"chat": "Chat", "sms": "SMS", "email": "Email"}
DEFAULT_LIMIT = 200


def band(
    *, crisis: bool, acknowledged: bool, safety_review: bool, overnight: bool, answered: bool
) -> int:
    """0 a crisis nobody has acknowledged, 1 an acknowledged crisis, then those whose patron
    waits: 2 safety review, 3 overnight, 4 the rest; last 5, every one answered (staff replied
    after the patron's last message; it moves up again when the patron writes). `BAND`, the
    same in SQL. A crisis keeps its place answered or not."""
    if crisis:
        return 1 if acknowledged else 0
    if answered:
        return 5
    if safety_review:
        return 2
    return 3 if overnight else 4


def queue_band(conv: Conversation) -> int:
    """The conversation's `band`."""
    return band(
        crisis=conv.crisis,
        acknowledged=conv.acknowledged_at is not None,
        safety_review=conv.safety_review,
        overnight=conv.overnight,
        answered=conv.waiting_since is None,
    )


def queue_sort_key(conv: Conversation) -> tuple[int, datetime, str]:
    """Unacknowledged crises, acknowledged ones, then those waiting (safety review, overnight,
    the rest), then the answered; oldest first within each band."""
    return queue_band(conv), conv.opened_at, conv.conversation_id


# The expression of the index ix_conversations_queue (migration 0019), written with plain
# constants so that SQLite and PostgreSQL match the two and read the queue off the index.
BAND = case(
    (
        Conversation.crisis,
        case(
            (Conversation.acknowledged_at.is_(None), literal_column("0")),
            else_=literal_column("1"),
        ),
    ),
    (Conversation.waiting_since.is_(None), literal_column("5")),
    (Conversation.safety_review, literal_column("2")),
    (Conversation.overnight, literal_column("3")),
    else_=literal_column("4"),
)


ANSWERED = "Answered"
"""What the queue's Waiting column says once staff replied after the patron's last message."""


def waiting_words(seconds: float) -> str:
    """How long someone has waited, as people say it: "12 h 14 min", "3 min", "2 d 4 h"."""
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


AnyRow = Row[*tuple[Any, ...]]
QueueRow = Conversation | AnyRow
"""A conversation, or a row of the ROW_COLUMNS a queue row shows."""

ROW_COLUMNS = (
    Conversation.conversation_id,
    Conversation.channel,
    Conversation.department,
    Conversation.priority,
    Conversation.overnight,
    Conversation.crisis,
    Conversation.safety_review,
    Conversation.blocked,
    Conversation.acknowledged_at,
    Conversation.answered_at,
    Conversation.assignee,
    Conversation.opened_at,
    Conversation.last_message_at,
    Conversation.waiting_since,
    Conversation.last_patron_at,
    Conversation.last_interaction_id,
    Conversation.keyword_answered,
    Conversation.converted_from,
    Conversation.unstaffed,
    Conversation.unsent_reply,
    Conversation.failed_reply,
    Conversation.care_alert_failed,
    Conversation.care_alert_unsent,
    Conversation.state,
    Conversation.subject,
    Conversation.preview,
    Conversation.lang,
)
"""What `row_view` reads: a listing loads these as plain rows, not whole conversations."""


ROW_NAMES = tuple(column.key for column in ROW_COLUMNS)


def _fields(conv: QueueRow) -> Mapping[Any, Any]:
    """The row's columns by name (a Row's mapping reads far faster than its attributes)."""
    if isinstance(conv, Row):
        return conv._mapping
    return {name: getattr(conv, name) for name in ROW_NAMES}


def row_view(conv: QueueRow, now: datetime) -> dict[str, Any]:
    """A queue row: what staff need to pick a conversation (the preview is student data,
    shown only to staff who may see the conversation)."""
    c = _fields(conv)
    age = max(0.0, (now - c["opened_at"]).total_seconds())
    since = c["waiting_since"]
    if since is not None and since == c["last_patron_at"] and c["keyword_answered"] is not None:
        if c["keyword_answered"] == c["last_interaction_id"]:
            since = None  # the one message waiting is a keyword refdesk answered (STOP, HELP)
    waited = None if since is None else max(0.0, (now - since).total_seconds())
    channel = c["channel"]
    return {
        "conversation_id": c["conversation_id"],
        "channel": channel,
        "channel_label": CHANNEL_LABELS.get(channel, channel),
        "department": c["department"],
        "priority": c["priority"],
        "overnight": c["overnight"],
        "crisis": c["crisis"],
        "safety_review": c["safety_review"],
        "blocked": c["blocked"],
        "acknowledged": c["acknowledged_at"] is not None,
        "age_s": int(age),
        # how long the patron has waited for an answer; "Answered" once staff replied after
        # their last message (the conversation stays open until someone closes it)
        "waiting_s": None if waited is None else int(waited),
        "waiting": ANSWERED if waited is None else waiting_words(waited),
        "assignee": c["assignee"],
        "opened_at": c["opened_at"].isoformat(),
        "last_message_at": c["last_message_at"].isoformat(),
        "converted_from": c["converted_from"],
        "answered": c["waiting_since"] is None,  # the queue's last band (`band`)
        # a ticket nobody Online in its department could take, unclaimed: the desk sees it too
        "unstaffed": bool(c["unstaffed"]) and c["assignee"] is None,
        # the latest reply has not gone out minutes after it was written: the patron waits
        "unsent": c["unsent_reply"] is not None and c["state"] == "open",
        # the latest reply never reached the patron (refused, undelivered, bounced)
        "reply_failed": c["failed_reply"] is not None and c["state"] == "open",
        # a crisis whose CARE Team alert email was refused for good: file the report by hand
        "care_alert_failed": bool(c["care_alert_failed"]) and c["crisis"],
        # a crisis whose CARE Team alert is still not out minutes after it was asked for
        "care_alert_unsent": c["care_alert_unsent"] is not None
        and c["crisis"]
        and not c["care_alert_failed"],
        "state": c["state"],
        "subject": c["subject"],
        "preview": c["preview"],
        "lang": c["lang"],
        "pinned": not c.get("matched", True),
        # NEEDS_ATTENTION, of this row: a search shows it whatever it matched
        "attention": c["state"] == "open"
        and (
            (c["crisis"] and c["acknowledged_at"] is None)
            or (c["safety_review"] and c["answered_at"] is None)
        ),
    }


SHOWN = or_(
    Conversation.routed.is_(True),
    and_(Conversation.blocked.is_(False), Conversation.automatic_only.is_(False)),
)
"""A blocked sender's conversation, and one that only mail systems have written to (automatic
replies, bounces), is shown once the router has decided it (a crisis)."""


def shown(conv: Conversation) -> bool:
    """`SHOWN`, of a conversation at hand."""
    return conv.routed or not (conv.blocked or conv.automatic_only)


def visible_to(actor: Actor) -> ColumnElement[bool]:
    """The conversations the actor may see (the policy table's `visible`, as SQL)."""
    shown = SHOWN
    if has_role(actor, "supervisor"):
        return shown
    # the desk's queue is everyone's, but a crisis or a possible one there only its crisis
    # staff's (`relation`)
    desk = and_(Conversation.department == DESK, ~FLAGGED)
    seen: ColumnElement[bool] = or_(Conversation.department.in_(sorted(actor.departments)), desk)
    if set(actor.departments) & CRISIS_DEPARTMENTS:
        # crises wherever routed, and what is not routed yet (it may be one)
        flagged = or_(Conversation.crisis.is_(True), Conversation.safety_review.is_(True))
        seen = or_(seen, flagged, Conversation.department.is_(None))
    if DESK in actor.departments:  # tickets nobody Online could take (`policy.desk_sees`)
        unclaimed = and_(Conversation.unstaffed.is_(True), Conversation.assignee.is_(None))
        seen = or_(seen, unclaimed)
    # the librarian the router's crisis escalation left with the patron (the policy table)
    return and_(shown, or_(seen, Conversation.assignee == actor.id))


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page and GET /conversations narrow by."""

    state: str = "open"
    department: str | None = None
    channel: Channel | None = None
    mine: bool = False
    unassigned: bool = False
    overnight: bool | None = None
    crisis: bool | None = None
    matches: ColumnElement[bool] | None = field(default=None, compare=False)
    """Only the conversations this condition holds for (a search's:
    `conversations.search.matching`); ordered by the band, then the newest first."""
    limit: int | None = DEFAULT_LIMIT
    """At most this many rows (None: every one, as the original /queue answers)."""
    pin_crises: bool = False
    """Open crises nobody acknowledged and possible crises nobody answered, of those the actor
    may see, are listed whatever the filters above say (the console's queue: a filter or a
    search never hides a patron in crisis waiting for someone)."""
    only: str | None = None
    """This one conversation, if the rest of the filter lists it (a live row's refresh)."""


FLAGGED = or_(Conversation.crisis.is_(True), Conversation.safety_review.is_(True))
"""A crisis or a possible one."""
NEEDS_ATTENTION = or_(
    and_(Conversation.crisis.is_(True), Conversation.acknowledged_at.is_(None)),
    and_(Conversation.safety_review.is_(True), Conversation.answered_at.is_(None)),
)
"""A crisis nobody has acknowledged, or a possible one nobody has answered: pinned above a
filtered or searched listing (one being handled no longer buries what was searched for)."""


def _narrowing(actor: Actor, flt: QueueFilter) -> list[ColumnElement[bool]]:
    """The filter's conditions besides who may see what."""
    found: list[ColumnElement[bool]] = []
    if flt.state in ("open", "closed"):
        found.append(Conversation.state == flt.state)
    if flt.department:
        found.append(Conversation.department == flt.department)
    if flt.channel:
        found.append(Conversation.channel == flt.channel.value)
    if flt.mine:
        found.append(Conversation.assignee == actor.id)
    if flt.unassigned:
        found.append(Conversation.assignee.is_(None))
    if flt.overnight is not None:
        found.append(Conversation.overnight.is_(flt.overnight))
    if flt.crisis is not None:
        found.append(FLAGGED if flt.crisis else ~FLAGGED)
    if flt.matches is not None:
        found.append(flt.matches)
    return found


def listing_statement(actor: Actor, flt: QueueFilter) -> Select[*tuple[Any, ...]]:
    """The query of `listing`."""
    narrowing = _narrowing(actor, flt)
    unfiltered_open = flt.state == "open" and len(narrowing) == 1
    if narrowing and flt.pin_crises and not unfiltered_open:
        matched = and_(*narrowing)
        query = select(*ROW_COLUMNS, matched.label("matched")).where(visible_to(actor))
        query = query.where(or_(matched, and_(Conversation.state == "open", NEEDS_ATTENTION)))
    else:
        query = select(*ROW_COLUMNS).where(visible_to(actor), *narrowing)
    if flt.only is not None:
        query = query.where(Conversation.conversation_id == flt.only)
    if flt.state == "closed":  # open crises pinned on top have no closed_at: first, always
        query = query.order_by(
            Conversation.closed_at.desc().nulls_first(),
            BAND,
            Conversation.opened_at,
            Conversation.conversation_id,
        )
    elif flt.matches is not None:  # a search: what waits first, then the newest
        query = query.order_by(
            BAND, Conversation.last_message_at.desc(), Conversation.conversation_id
        )
    else:
        query = query.order_by(BAND, Conversation.opened_at, Conversation.conversation_id)
    if flt.limit is not None:
        query = query.limit(flt.limit)
    return query


_kept_statement = functools.lru_cache(maxsize=1024)(listing_statement)
"""Statements are immutable: one built per staff member and filter is reused (a search's
words and a single row's id change every time, so those are built afresh)."""


async def listing(
    *, session: AsyncSession, actor: Actor, flt: QueueFilter = QueueFilter()
) -> list[AnyRow]:
    """The queue rows (ROW_COLUMNS) of the conversations the actor may see, in desk order
    (newest first for closed ones). Open ones are read in the order of the index
    ix_conversations_queue, so a page costs its own rows, not a sort of the whole queue."""
    fresh = flt.matches is not None or flt.only is not None
    build = listing_statement if fresh else _kept_statement
    rows = await session.execute(build(actor, flt))
    return list(rows.all())


async def listed_in_all(*, session: AsyncSession, actor: Actor, flt: QueueFilter) -> int:
    """How many conversations the listing would hold without its limit (a queue longer than
    a page says how many it leaves out)."""
    whole = listing_statement(actor, replace(flt, limit=None)).order_by(None)
    return int(await session.scalar(select(func.count()).select_from(whole.subquery())) or 0)


OPEN_ROWS = select(*ROW_COLUMNS).where(SHOWN, Conversation.state == "open")
"""Queue rows whoever may see them (the caller applies the visibility rule)."""


async def open_rows(session: AsyncSession, ids: list[str]) -> list[AnyRow]:
    """The open queue rows of these conversations, in no order."""
    rows = await session.execute(OPEN_ROWS.where(Conversation.conversation_id.in_(ids)))
    return list(rows.all())


async def open_queue(
    *,
    session: AsyncSession,
    actor: Actor,
    department: str | None = None,
    channel: Channel | None = None,
) -> list[AnyRow]:
    """Every open conversation the actor may see, in desk order."""
    flt = QueueFilter(department=department, channel=channel, limit=None)
    return await listing(session=session, actor=actor, flt=flt)
