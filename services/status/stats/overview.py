"""What the reports page shows, as data: headline figures, the week's heat map, questions over
time by channel and by department, first-response times over time, and the small tables."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.stats import charts, queries, report
from services.status.stats.desktime import WEEKDAYS, hour_label
from services.status.stats.models import DeskStat
from services.status.topics import NOT_A_QUESTION, TOPIC_LABELS

CHANNEL_COLOURS = {"chat": "#1a6b35", "sms": "#6a3d9a", "email": "#0b5cad"}
"""The console's channel colours."""
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00")
"""Okabe-Ito: told apart with the common colour-vision deficiencies."""
OTHER_COLOUR = "#6e7781"
TOP_DEPARTMENTS = 5
HALF = 600
"""The width of the charts that sit two to a row."""


def bucket_for(frm: date, to: date) -> str:
    """Days for a month or less, weeks up to about a term and a half, else months."""
    days = (to - frm).days + 1
    return "day" if days <= 31 else "week" if days <= 7 * 30 else "month"


def periods(frm: date, to: date, bucket: str) -> list[Any]:
    """Every period of the range, as the statistics table keys it."""
    if bucket == "day":
        return [frm + timedelta(days=n) for n in range((to - frm).days + 1)]
    if bucket == "week":
        monday = frm - timedelta(days=frm.weekday())
        return [monday + timedelta(weeks=n) for n in range((to - monday).days // 7 + 1)]
    months, year, month = [], frm.year, frm.month
    while (year, month) <= (to.year, to.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def period_label(key: Any, bucket: str) -> str:
    """ "Mar 4" for a day or a week (its Monday), "Mar 2025" for a month."""
    if bucket == "month":
        year, month = (int(p) for p in str(key).split("-"))
        return f"{date(year, month, 1):%b} {year}"
    return f"{key:%b} {key.day}"


def duration(seconds: float | None, *, up: bool = False) -> str:
    """Seconds as people read them: "45 s", "4 min", "1 h 12 min", "2 d 3 h"; rounded down,
    or up (`up`) where the figure is a bound ("9 in 10 within 7 min" of 6 min 14 s: "within 6
    min" was untrue)."""
    if seconds is None:
        return "\u2013"
    if seconds < 60:
        return f"{math.ceil(seconds) if up else round(seconds):.0f} s"
    minutes = math.ceil(seconds / 60) if up else int(seconds // 60)
    if up and minutes >= 24 * 60:
        minutes = math.ceil(minutes / 60) * 60  # shown in whole hours from a day on
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


@dataclass(frozen=True)
class Chart:
    """A chart and the table of its numbers (the same data, for screen readers and copying)."""

    svg: Markup
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]


def axis_value(value: float, *, unit: str) -> str:
    """An axis label: "90 min", "1.5 h", "2 h"."""
    text = f"{value:,.1f}".removesuffix(".0")
    return f"{text} {unit}"


def _in(unit: float, value: float | None) -> float | None:
    return None if value is None else value / unit


async def heat_chart(session: AsyncSession, frm: date, to: date) -> Chart:
    """Questions by hour of the week."""
    found = await queries.counts_by(
        session, queries.counted(frm, to), DeskStat.desk_weekday, DeskStat.desk_hour
    )
    counts = {(int(k[0]), int(k[1])): n for k, n in found.items()}
    svg = charts.heatmap("heatmap", counts, title="Questions by hour of the week (desk time)")
    rows = [[WEEKDAYS[d]] + [str(counts.get((d, h), 0)) for h in range(24)] for d in range(7)]
    return Chart(svg, ["Day", *(hour_label(h) for h in range(24))], rows)


async def channel_chart(
    session: AsyncSession, frm: date, to: date, bucket: str, keys: list[Any]
) -> Chart:
    """Questions per period, stacked by channel."""
    column = queries.GROUP_KEYS[bucket]
    found = await queries.counts_by(session, queries.counted(frm, to), column, DeskStat.channel)
    labels = [period_label(k, bucket) for k in keys]
    series = [
        charts.Series(name, CHANNEL_COLOURS[c], [found.get((k, c), 0) for k in keys])
        for c, name in report.CHANNELS.items()
    ]
    svg = charts.stacked_bars(
        "by-channel",
        labels,
        series,
        title=f"Questions per {bucket} by channel",
        desc=", ".join(f"{s.name}: {sum(v or 0 for v in s.values):,.0f}" for s in series) + ".",
        width=HALF,
    )
    rows = [[labels[i]] + [f"{s.values[i] or 0:,.0f}" for s in series] for i in range(len(keys))]
    return Chart(svg, [bucket.capitalize(), *(s.name for s in series)], rows)


async def department_chart(
    session: AsyncSession,
    frm: date,
    to: date,
    bucket: str,
    keys: list[Any],
    department_name: report.Namer,
) -> Chart:
    """Questions per period by the department that received them (the busiest five, then
    the rest together)."""
    column = queries.GROUP_KEYS[bucket]
    found = await queries.counts_by(session, queries.counted(frm, to), column, DeskStat.received_by)
    totals: dict[str, int] = {}
    for (_, dept), n in found.items():
        totals[dept] = totals.get(dept, 0) + n
    top = sorted(totals, key=lambda d: (-totals[d], d))[:TOP_DEPARTMENTS]
    series = [
        charts.Series(department_name(d), PALETTE[i], [found.get((k, d), 0) for k in keys])
        for i, d in enumerate(top)
    ]
    rest = [d for d in totals if d not in top]
    if rest:
        values = [sum(found.get((k, d), 0) for d in rest) for k in keys]
        series.append(charts.Series("Other departments", OTHER_COLOUR, values, dashed=True))
    labels = [period_label(k, bucket) for k in keys]
    svg = charts.lines(
        "by-department",
        labels,
        series,
        title=f"Questions per {bucket} by department (received by)",
        desc=", ".join(f"{s.name}: {sum(v or 0 for v in s.values):,.0f}" for s in series) + ".",
        width=HALF,
        counts=True,
    )
    rows = [[labels[i]] + [f"{s.values[i] or 0:,.0f}" for s in series] for i in range(len(keys))]
    return Chart(svg, [bucket.capitalize(), *(s.name for s in series)], rows)


async def response_chart(
    session: AsyncSession, frm: date, to: date, bucket: str, keys: list[Any]
) -> Chart:
    """Median and 90th-percentile first response per period for questions that arrived while
    the desk was open (an overnight ticket waits for the next opening by design)."""
    found, _ = await queries.figures(
        session, frm=frm, to=to, group_by=bucket, only=DeskStat.overnight.is_(False)
    )
    picked = [found.get(k) or queries.Figures(key=k) for k in keys]
    longest = max((f.first_response_p90_s or 0 for f in picked), default=0)
    unit, unit_name = (3600, "h") if longest > 3 * 3600 else (60, "min")
    p50 = [_in(unit, f.first_response_p50_s) for f in picked]
    p90 = [_in(unit, f.first_response_p90_s) for f in picked]
    labels = [period_label(k, bucket) for k in keys]
    series = [
        charts.Series("Median (p50)", "#0b5cad", p50),
        charts.Series("90th percentile (p90)", "#d55e00", p90, dashed=True),
    ]
    svg = charts.lines(
        "first-response",
        labels,
        series,
        title=f"First response per {bucket} while the desk was open",
        desc=f"{sum(f.questions for f in picked):,} questions that arrived in desk hours.",
        fmt=functools.partial(axis_value, unit=unit_name),
    )
    rows = [
        [
            labels[i],
            duration(f.first_response_p50_s),
            duration(f.first_response_p90_s),
            f"{f.questions:,}",
        ]
        for i, f in enumerate(picked)
    ]
    return Chart(svg, [bucket.capitalize(), "Median", "90th percentile", "Questions"], rows)


async def page_data(
    session: AsyncSession,
    *,
    frm: date,
    to: date,
    viewer: report.Viewer,
    department_name: report.Namer,
) -> dict[str, Any]:
    """Everything the reports page shows for a range of desk days."""
    bucket = bucket_for(frm, to)
    keys = periods(frm, to, bucket)
    summary = await report.summary(
        session, frm=frm, to=to, group_by=bucket, viewer=viewer, department_name=department_name
    )
    departments = await report.summary(
        session,
        frm=frm,
        to=to,
        group_by="department",
        viewer=viewer,
        department_name=department_name,
    )
    where = queries.counted(frm, to)
    topics = await queries.counts_by(session, where, DeskStat.topic)
    scales = await queries.counts_by(session, where, DeskStat.read_scale)
    totals = summary["totals"]
    return {
        "bucket": bucket,
        "totals": totals,
        "crisis": summary["crisis"],
        "transfers": summary["transfers_by_target"],
        "departments": departments["groups"],
        # a conversation set aside as not a question is counted only if it was a crisis
        "topics": [
            (name, n)
            for t, name in TOPIC_LABELS.items()
            if (n := topics.get((t,), 0)) or t != NOT_A_QUESTION
        ]
        + [(report.UNTAGGED, topics.get((None,), 0))],
        "set_aside": summary["set_aside"],
        "scales": [(f"READ {s}", scales.get((s,), 0)) for s in range(1, 7)]
        + [(report.UNTAGGED, scales.get((None,), 0))],
        "heat": await heat_chart(session, frm, to),
        "channels": await channel_chart(session, frm, to, bucket, keys),
        "by_department": await department_chart(session, frm, to, bucket, keys, department_name),
        "response": await response_chart(session, frm, to, bucket, keys),
    }
