"""The statistics queries: counts per group in SQL; percentiles with PostgreSQL's
percentile_cont, or on SQLite (which has none) over the one selected column in Python with
the same interpolation. Only conversations the router routed are counted (a blocked contact's
message that was never routed is not a question)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.stats.models import DeskStat, DeskStatTransfer

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
    "staff": DeskStat.closed_by,
}
"""What each `group_by` groups on (department: the department that received the question;
staff: who closed it)."""

ACK_BUCKETS = ((300, "within_5_min"), (900, "within_15_min"), (3600, "within_1_h"))
"""Crisis acknowledgement times are reported as counts in these buckets, never per case."""


@dataclass
class Figures:
    """The figures of one group (or of all of them)."""

    key: Any = None
    questions: int = 0
    closed: int = 0
    overnight: int = 0
    transferred: int = 0
    crisis: int = 0
    first_response_p50_s: float | None = None
    first_response_p90_s: float | None = None
    resolution_p50_s: float | None = None
    resolution_p90_s: float | None = None


@dataclass
class Crisis:
    """Crisis escalations and how soon they were acknowledged, as counts."""

    escalations: int = 0
    acknowledged: dict[str, int] = field(default_factory=dict)
    unacknowledged: int = 0
    safety_reviews: int = 0


def counted(frm: date, to: date) -> ColumnElement[bool]:
    """Routed conversations whose first message arrived between two desk days (inclusive)."""
    return and_(
        DeskStat.desk_day >= frm, DeskStat.desk_day <= to, DeskStat.received_by.is_not(None)
    )


def _flag(column: Any) -> Any:
    return func.coalesce(func.sum(case((column, 1), else_=0)), 0)


def _count_columns() -> list[Any]:
    return [
        func.count().label("questions"),
        func.count(DeskStat.closed_at).label("closed"),
        _flag(DeskStat.overnight.is_(True)).label("overnight"),
        _flag(DeskStat.transfers > 0).label("transferred"),
        _flag(DeskStat.crisis.is_(True)).label("crisis"),
    ]


def _percentile_columns() -> list[Any]:
    return [
        func.percentile_cont(q).within_group(column).label(f"{name}_p{int(q * 100)}_s")
        for name, column in (
            ("first_response", DeskStat.first_response_s),
            ("resolution", DeskStat.resolution_s),
        )
        for q in (0.5, 0.9)
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


def _figures(row: Any, key: Any = None) -> Figures:
    values = row._mapping
    figures = Figures(key=key)
    for name in ("questions", "closed", "overnight", "transferred", "crisis"):
        setattr(figures, name, int(values[name] or 0))
    for name in (
        "first_response_p50_s",
        "first_response_p90_s",
        "resolution_p50_s",
        "resolution_p90_s",
    ):
        if name in values and values[name] is not None:
            setattr(figures, name, float(values[name]))
    return figures


async def _python_percentiles(
    session: AsyncSession, where: ColumnElement[bool], key: Any, out: dict[Any, Figures]
) -> None:
    """Fill the percentiles of each group (key None: all) from the two duration columns."""
    columns = [DeskStat.first_response_s, DeskStat.resolution_s]
    stmt: Select[Any] = select(*([key] if key is not None else []), *columns).where(
        where,
        (DeskStat.first_response_s.is_not(None)) | (DeskStat.resolution_s.is_not(None)),
    )
    first: dict[Any, list[float]] = defaultdict(list)
    resolution: dict[Any, list[float]] = defaultdict(list)
    for row in await session.execute(stmt):
        group = row[0] if key is not None else None
        fr, res = row[-2], row[-1]
        if fr is not None:
            first[group].append(fr)
        if res is not None:
            resolution[group].append(res)
    for group, figures in out.items():
        fr_values, res_values = sorted(first[group]), sorted(resolution[group])
        figures.first_response_p50_s = percentile(fr_values, 0.5)
        figures.first_response_p90_s = percentile(fr_values, 0.9)
        figures.resolution_p50_s = percentile(res_values, 0.5)
        figures.resolution_p90_s = percentile(res_values, 0.9)


async def figures_by(
    session: AsyncSession, *, frm: date, to: date, group_by: str | None
) -> dict[Any, Figures]:
    """Figures per group of `group_by`, or one entry under None for all conversations."""
    key = GROUP_KEYS[group_by] if group_by is not None else None
    where = counted(frm, to)
    sql_percentiles = in_sql(session)
    columns = _count_columns() + (_percentile_columns() if sql_percentiles else [])
    stmt: Select[Any] = select(*([key.label("k")] if key is not None else []), *columns).where(
        where
    )
    if key is not None:
        stmt = stmt.group_by(key)
    out: dict[Any, Figures] = {}
    for row in await session.execute(stmt):
        group = row[0] if key is not None else None
        out[group] = _figures(row, group)
    if key is None and out[None].questions == 0:
        return out
    if not sql_percentiles:
        await _python_percentiles(session, where, key, out)
    return out


async def transfers_by_target(session: AsyncSession, *, frm: date, to: date) -> dict[str, int]:
    """How many transfers went to each department."""
    stmt = (
        select(DeskStatTransfer.to_department, func.count())
        .join(DeskStat, DeskStat.conversation_id == DeskStatTransfer.conversation_id)
        .where(counted(frm, to))
        .group_by(DeskStatTransfer.to_department)
    )
    return {str(row[0]): int(row[1]) for row in await session.execute(stmt)}


async def crisis(session: AsyncSession, *, frm: date, to: date) -> Crisis:
    """Crisis escalations, acknowledgement times in buckets, safety reviews."""
    acked = DeskStat.ack_s.is_not(None)
    columns = [
        _flag(DeskStat.crisis.is_(True)).label("escalations"),
        _flag(and_(DeskStat.crisis.is_(True), DeskStat.ack_s.is_(None))).label("unacknowledged"),
        _flag(DeskStat.safety_review.is_(True)).label("safety_reviews"),
    ]
    lower = -1.0
    for limit, name in ACK_BUCKETS:
        columns.append(
            _flag(and_(acked, DeskStat.ack_s > lower, DeskStat.ack_s <= limit)).label(name)
        )
        lower = limit
    columns.append(_flag(and_(acked, DeskStat.ack_s > lower)).label("later"))
    row = (await session.execute(select(*columns).where(counted(frm, to)))).one()._mapping
    names = [name for _, name in ACK_BUCKETS] + ["later"]
    return Crisis(
        escalations=int(row["escalations"]),
        acknowledged={name: int(row[name]) for name in names},
        unacknowledged=int(row["unacknowledged"]),
        safety_reviews=int(row["safety_reviews"]),
    )


async def counts_by(
    session: AsyncSession, where: ColumnElement[bool], *keys: Any
) -> dict[tuple[Any, ...], int]:
    """Conversation counts per combination of keys (heat map, series, annual tables)."""
    stmt = select(*keys, func.count()).where(where).group_by(*keys)
    return {tuple(row[:-1]): int(row[-1]) for row in await session.execute(stmt)}
