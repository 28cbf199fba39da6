"""The statistics queries. A summary reads the conversations once per grouping: counts, crisis
counts and durations per group in one statement. Percentiles are PostgreSQL's percentile_cont;
SQLite has none, so there the statement hands back each group's durations (group_concat of
the one column) and Python sorts them and interpolates as percentile_cont does (the benchmark
also runs that path on PostgreSQL, with string_agg, to compare). Only
conversations the router routed are counted (a blocked contact's message that was never
routed is not a question), nor is one staff set aside as not a question (spam, a wrong
number, a test) unless it was escalated as a crisis or flagged for a safety review."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, case, cast, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.stats.models import DeskStat, DeskStatTransfer
from services.status.topics import NOT_A_QUESTION

NOT_STAFF = ("patron", "platform")
"""Who else closes a chat, as the chat platform says it (`chat.ended`'s closed_by)."""

GROUP_KEYS: dict[str, Any] = {
    "hour": DeskStat.desk_hour,
    "weekday": DeskStat.desk_weekday,
    "day": DeskStat.desk_day,
    "week": DeskStat.desk_week,
    "month": DeskStat.desk_month,
    "channel": DeskStat.channel,
    "department": DeskStat.received_by,
    "topic": DeskStat.topic,
    "read_scale": DeskStat.read_scale,
    # who closed it, while it is closed: a ticket the patron reopened is nobody's close yet,
    # and a chat the patron left or the platform ended was closed by no staff member (it had
    # been a staff row called "patron")
    "staff": case(
        (
            and_(
                DeskStat.closed_at.is_not(None),
                DeskStat.closed_by.not_in(NOT_STAFF),
            ),
            DeskStat.closed_by,
        ),
        else_=None,
    ),
}
"""What each `group_by` groups on (department: the department that received the question;
staff: who closed it)."""

ACK_BUCKETS = ((300, "within_5_min"), (900, "within_15_min"), (3600, "within_1_h"))
"""Crisis acknowledgement times are reported as counts in these buckets, never per case."""
ACK_NAMES = (*(name for _, name in ACK_BUCKETS), "later")
COUNTS = ("questions", "closed", "responded", "overnight", "transferred", "crisis")
CRISIS_COUNTS = ("unacknowledged", "safety_reviews", "care_reports", *ACK_NAMES)
DURATIONS = (("first_response", DeskStat.first_response_s), ("resolution", DeskStat.resolution_s))


@dataclass
class Crisis:
    """Crisis escalations and how soon they were acknowledged, as counts."""

    escalations: int = 0
    acknowledged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACK_NAMES, 0))
    unacknowledged: int = 0
    safety_reviews: int = 0
    care_reports: int = 0
    """Conversations whose patron staff recorded a CARE Team incident report on (flagged or
    not)."""


@dataclass
class Figures:
    """The figures of one group (or of all of them)."""

    key: Any = None
    questions: int = 0
    closed: int = 0
    responded: int = 0
    overnight: int = 0
    transferred: int = 0
    crisis: int = 0
    first_response_p50_s: float | None = None
    first_response_p90_s: float | None = None
    resolution_p50_s: float | None = None
    resolution_p90_s: float | None = None
    crises: Crisis = field(default_factory=Crisis)
    values: dict[str, list[float]] = field(default_factory=dict)
    """SQLite: the durations the percentiles come from (kept to compute the totals)."""


ROUTED = DeskStat.received_by.is_not(None)
KEPT = or_(DeskStat.topic.is_distinct_from(NOT_A_QUESTION), DeskStat.crisis, DeskStat.safety_review)
"""Not set aside: tagged anything but "not a question", or a crisis or possible crisis (a
prank that escalated is still an escalation the desk handled, and is counted as one)."""
QUESTION = and_(ROUTED, KEPT)
"""A conversation the statistics count as a question."""
SET_ASIDE = and_(ROUTED, ~KEPT)
"""A routed conversation staff set aside as not a question: counted apart."""


def in_days(frm: date, to: date) -> ColumnElement[bool]:
    """Conversations whose first message arrived between two desk days (inclusive)."""
    return and_(DeskStat.desk_day >= frm, DeskStat.desk_day <= to)


def counted(frm: date, to: date) -> ColumnElement[bool]:
    """The questions whose first message arrived between two desk days (inclusive)."""
    return and_(in_days(frm, to), QUESTION)


def set_aside(frm: date, to: date) -> ColumnElement[bool]:
    """The routed conversations of those days staff set aside as not questions."""
    return and_(in_days(frm, to), SET_ASIDE)


def _flag(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _count_columns() -> list[Any]:
    crisis = DeskStat.crisis.is_(True)
    acked = DeskStat.ack_s.is_not(None)
    columns = [
        func.count().label("questions"),
        func.count(DeskStat.closed_at).label("closed"),
        # staff claimed, replied or transferred (the first response's events)
        func.count(DeskStat.first_response_at).label("responded"),
        _flag(DeskStat.overnight.is_(True)).label("overnight"),
        _flag(DeskStat.transfers > 0).label("transferred"),
        _flag(crisis).label("crisis"),
        _flag(and_(crisis, DeskStat.ack_s.is_(None))).label("unacknowledged"),
        _flag(DeskStat.safety_review.is_(True)).label("safety_reviews"),
        _flag(DeskStat.care_report.is_(True)).label("care_reports"),
    ]
    lower = -1.0
    for limit, name in ACK_BUCKETS:
        bucket = and_(acked, DeskStat.ack_s > lower, DeskStat.ack_s <= limit)
        columns.append(_flag(bucket).label(name))
        lower = limit
    columns.append(_flag(and_(acked, DeskStat.ack_s > lower)).label("later"))
    return columns


def _joined(column: Any, dialect: str) -> Any:
    """A group's values of one column as one comma-separated text."""
    if dialect == "postgresql":
        return func.string_agg(cast(column, Text), ",")
    return func.group_concat(column)


def _duration_columns(sql_percentiles: bool, dialect: str) -> list[Any]:
    if not sql_percentiles:
        return [_joined(column, dialect).label(name) for name, column in DURATIONS]
    # one sort per column gives both quantiles (an array argument)
    quantiles = postgresql.array([0.5, 0.9])
    return [
        func.percentile_cont(quantiles).within_group(column).label(f"{name}_quantiles")
        for name, column in DURATIONS
    ]


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """PostgreSQL's percentile_cont over sorted values: linear between the nearest ranks."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def in_sql(session: AsyncSession) -> bool:
    """Whether the backend computes percentiles itself."""
    return session.get_bind().dialect.name == "postgresql"


def _set_percentiles(figures: Figures) -> None:
    for name, _ in DURATIONS:
        ordered = figures.values.get(name, [])
        setattr(figures, f"{name}_p50_s", percentile(ordered, 0.5))
        setattr(figures, f"{name}_p90_s", percentile(ordered, 0.9))


def _figures(row: Any, key: Any) -> Figures:
    values = row._mapping
    figures = Figures(key=key)
    for name in COUNTS:
        setattr(figures, name, int(values[name] or 0))
    crises = figures.crises
    crises.escalations = figures.crisis
    crises.unacknowledged = int(values["unacknowledged"] or 0)
    crises.safety_reviews = int(values["safety_reviews"] or 0)
    crises.care_reports = int(values["care_reports"] or 0)
    crises.acknowledged = {name: int(values[name] or 0) for name in ACK_NAMES}
    for name, _ in DURATIONS:
        if name in values:  # SQLite: the durations as one comma-separated text
            text = values[name]
            figures.values[name] = sorted(map(float, text.split(","))) if text else []
        quantiles = values.get(f"{name}_quantiles")
        if quantiles is not None:  # PostgreSQL: [p50, p90], or None for no values
            p50, p90 = quantiles
            setattr(figures, f"{name}_p50_s", None if p50 is None else float(p50))
            setattr(figures, f"{name}_p90_s", None if p90 is None else float(p90))
    if figures.values:
        _set_percentiles(figures)
    return figures


def _merge(groups: dict[Any, Figures]) -> Figures:
    """All groups together (SQLite): counts add up, durations are pooled."""
    total = Figures()
    for figures in groups.values():
        for name in COUNTS:
            setattr(total, name, getattr(total, name) + getattr(figures, name))
        total.crises.escalations += figures.crises.escalations
        total.crises.unacknowledged += figures.crises.unacknowledged
        total.crises.safety_reviews += figures.crises.safety_reviews
        total.crises.care_reports += figures.crises.care_reports
        for name in ACK_NAMES:
            total.crises.acknowledged[name] += figures.crises.acknowledged[name]
        for name, values in figures.values.items():
            total.values.setdefault(name, []).extend(values)
    for values in total.values.values():
        values.sort()
    _set_percentiles(total)
    return total


async def figures(
    session: AsyncSession,
    *,
    frm: date,
    to: date,
    group_by: str,
    only: ColumnElement[bool] | None = None,
) -> tuple[dict[Any, Figures], Figures]:
    """Figures per group of `group_by` and for all conversations (`only` narrows them)."""
    key = GROUP_KEYS[group_by]
    where = counted(frm, to) if only is None else and_(counted(frm, to), only)
    sql_percentiles = in_sql(session)
    dialect = session.get_bind().dialect.name
    columns = _count_columns() + _duration_columns(sql_percentiles, dialect)
    if not sql_percentiles:
        stmt: Select[Any] = select(key.label("k"), *columns).where(where).group_by(key)
        groups = {row[0]: _figures(row, row[0]) for row in await session.execute(stmt)}
        return groups, _merge(groups)
    # PostgreSQL: the groups and the total in one statement (the total is the () set)
    total_row = func.grouping(key).label("is_total")
    stmt = (
        select(key.label("k"), total_row, *columns)
        .where(where)
        .group_by(func.grouping_sets(key, tuple_()))
    )
    groups, total = {}, Figures()
    for row in await session.execute(stmt):
        if row[1]:
            total = _figures(row, None)
        else:
            groups[row[0]] = _figures(row, row[0])
    return groups, total


async def transfers_by_target(
    session: AsyncSession, *, frm: date, to: date, only: ColumnElement[bool] | None = None
) -> dict[str, int]:
    """How many transfers went to each department (`only` narrows the conversations)."""
    where = counted(frm, to) if only is None else and_(counted(frm, to), only)
    stmt = (
        select(DeskStatTransfer.to_department, func.count())
        .join(DeskStat, DeskStat.conversation_id == DeskStatTransfer.conversation_id)
        .where(where)
        .group_by(DeskStatTransfer.to_department)
    )
    return {str(row[0]): int(row[1]) for row in await session.execute(stmt)}


async def counts_by(
    session: AsyncSession, where: ColumnElement[bool], *keys: Any
) -> dict[tuple[Any, ...], int]:
    """Conversation counts per combination of keys (heat map, series, annual tables)."""
    stmt = select(*keys, func.count()).where(where).group_by(*keys)
    return {tuple(row[:-1]): int(row[-1]) for row in await session.execute(stmt)}
