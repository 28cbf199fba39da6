"""The summary and annual reports as data: groups in a stable order with readable labels,
small staff cells suppressed for everyone but admins, and the CSV form of a summary."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.models import Staff
from services.status.stats import queries
from services.status.stats.desktime import (
    WEEKDAYS,
    fiscal_range,
    hour_label,
    month_label,
    week_label,
)
from services.status.stats.models import DeskStat
from services.status.topics import TOPIC_LABELS, TOPICS

GROUPS = tuple(queries.GROUP_KEYS)
SMALL_CELL = 5
SUPPRESSED = "< 5"
CHANNELS = {"chat": "Chat", "sms": "SMS", "email": "Email"}
UNTAGGED = "(not tagged)"
DIRECTIONAL_TOPIC = "hours-policies"
COLUMNS = (
    "questions",
    "closed",
    "first_response_p50_s",
    "first_response_p90_s",
    "resolution_p50_s",
    "resolution_p90_s",
    "overnight",
    "overnight_share",
    "transferred",
    "crisis",
    "responded",
)
"""The CSV's figure columns, after `group` and `label` (`responded` last: added after the
others, so a spreadsheet reading columns by position keeps working)."""

Namer = Callable[[str], str]


@dataclass(frozen=True)
class Viewer:
    """Who asks, as far as suppression goes."""

    admin: bool


def label(group_by: str, key: Any, department_name: Namer) -> str:
    """How a group's key reads on the page and in the CSV."""
    if key is None:
        return {"staff": "(not closed by staff)", "department": "(not routed)"}.get(
            group_by, UNTAGGED
        )
    match group_by:
        case "hour":
            return hour_label(int(key))
        case "weekday":
            return WEEKDAYS[int(key)]
        case "week":
            return week_label(key)
        case "month":
            return month_label(str(key))
        case "channel":
            return CHANNELS.get(str(key), str(key))
        case "department":
            return department_name(str(key))
        case "topic":
            return TOPIC_LABELS.get(str(key), str(key))
        case "read_scale":
            return f"READ {key}"
    return str(key)


def _order(group_by: str, groups: dict[Any, queries.Figures]) -> list[Any]:
    """Time and scales in their own order, channels and topics as listed, the rest by size."""
    keys = list(groups)
    if group_by in ("hour", "weekday"):
        return list(range(24 if group_by == "hour" else 7))
    if group_by == "channel":  # every channel, a row of zeros too: a sheet finds its SMS row
        return [*CHANNELS, *sorted(k for k in keys if k not in CHANNELS)]
    if group_by in ("day", "week", "month", "read_scale"):
        return sorted(keys, key=lambda k: (k is None, k if k is not None else 0))
    listed = {"channel": list(CHANNELS), "topic": list(TOPICS)}.get(group_by)
    if listed is not None:
        return sorted(keys, key=lambda k: (k is None, listed.index(k) if k in listed else 99))
    return sorted(keys, key=lambda k: (k is None, -groups[k].questions, str(k)))


def _key_json(key: Any) -> Any:
    return key.isoformat() if isinstance(key, date) else key


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def row_view(figures: queries.Figures) -> dict[str, Any]:
    """One group's figures as JSON."""
    share = figures.overnight / figures.questions if figures.questions else None
    return {
        "questions": figures.questions,
        "closed": figures.closed,
        "first_response_p50_s": _round(figures.first_response_p50_s),
        "first_response_p90_s": _round(figures.first_response_p90_s),
        "resolution_p50_s": _round(figures.resolution_p50_s),
        "resolution_p90_s": _round(figures.resolution_p90_s),
        "overnight": figures.overnight,
        "overnight_share": None if share is None else round(share, 3),
        "transferred": figures.transferred,
        "crisis": figures.crisis,
        "responded": figures.responded,
    }


def suppressed_view(size: str = SUPPRESSED) -> dict[str, Any]:
    """A small cell: its size said only as "< 5", none of its figures."""
    view: dict[str, Any] = dict.fromkeys(COLUMNS)
    view["questions"] = size
    return view


COMPLEMENT = "hidden"
"""The size shown for a cell hidden so that a small one cannot be found by subtraction."""


def hide_complement(rows: list[dict[str, Any]], figures: dict[Any, queries.Figures]) -> None:
    """When one cell alone is hidden, the total less the others gives it away (an outside
    review read one librarian's 1 from the total and the "not closed by staff" row): the
    smallest shown cell is hidden too (complementary suppression), so only the two together
    can be worked out."""
    if sum(1 for row in rows if row["suppressed"]) != 1:
        return
    shown = [row for row in rows if not row["suppressed"] and row["questions"]]
    if not shown:
        return
    smallest = min(shown, key=lambda row: (figures[row["key"]].questions, str(row["key"])))
    smallest.update(suppressed_view(COMPLEMENT), suppressed=True)


STAFF_NAMES = select(Staff.id, Staff.name)
"""The staff grouping's labels: people's names, their ids kept as the key."""


async def summary(
    session: AsyncSession,
    *,
    frm: date,
    to: date,
    group_by: str,
    viewer: Viewer,
    department_name: Namer,
    channel: str | None = None,
) -> dict[str, Any]:
    """The summary report: totals, one row per group, transfers by target, crises; `channel`
    narrows every figure to the questions that arrived on it."""
    only = None if channel is None else DeskStat.channel == channel
    groups, total = await queries.figures(session, frm=frm, to=to, group_by=group_by, only=only)
    rows = []
    by_key: dict[Any, queries.Figures] = {}
    small = group_by == "staff" and not viewer.admin
    staff_names: dict[str, str] = {}
    if group_by == "staff":
        staff_names = {row.id: row.name for row in await session.execute(STAFF_NAMES)}
    for key in _order(group_by, groups):
        figures = groups.get(key) or queries.Figures(key=key)
        hide = small and 0 < figures.questions < SMALL_CELL
        view = suppressed_view() if hide else row_view(figures)
        named = staff_names.get(key) if isinstance(key, str) else None
        shown = named or label(group_by, key, department_name)
        view = {"key": _key_json(key), "label": shown, **view}
        view["suppressed"] = hide
        rows.append(view)
        by_key[view["key"]] = figures
    if small:
        hide_complement(rows, by_key)
    transfers = await queries.transfers_by_target(session, frm=frm, to=to, only=only)
    aside = queries.set_aside(frm, to)
    set_aside = await queries.counts_by(session, aside if only is None else and_(aside, only))
    crisis = total.crises
    return {
        "from": frm.isoformat(),
        "to": to.isoformat(),
        "group_by": group_by,
        "channel": channel,
        "timezone": "America/Chicago",
        "totals": row_view(total),
        "set_aside": set_aside.get((), 0),
        "groups": rows,
        "transfers_by_target": [
            {"department": dept, "label": department_name(dept), "transfers": n}
            for dept, n in sorted(transfers.items(), key=lambda item: (-item[1], item[0]))
        ],
        "crisis": {
            "escalations": crisis.escalations,
            "acknowledged": crisis.acknowledged,
            "unacknowledged": crisis.unacknowledged,
            "safety_reviews": crisis.safety_reviews,
            "care_reports": crisis.care_reports,
        },
    }


def spreadsheet_cell(value: Any) -> str:
    """A CSV cell that a spreadsheet never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


CHANNEL_TOTALS = {
    "chat": "All chat questions",
    "sms": "All text (SMS) questions",
    "email": "All email questions",
}
"""The total row's label of a summary narrowed to one channel (`channel=`)."""


def to_csv(report: dict[str, Any]) -> str:
    """The summary's groups and a total row, one header line (RFC 4180, CRLF)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report["group_by"], "label", *COLUMNS])
    for row in report["groups"]:
        writer.writerow(
            [spreadsheet_cell(row["key"]), spreadsheet_cell(row["label"])]
            + [spreadsheet_cell(row[c]) for c in COLUMNS]
        )
    every = CHANNEL_TOTALS.get(report.get("channel") or "", "All questions")
    writer.writerow(["total", every] + [spreadsheet_cell(report["totals"][c]) for c in COLUMNS])
    return out.getvalue()


async def annual(session: AsyncSession, *, fiscal_year: int) -> dict[str, Any]:
    """Questions in a fiscal year (July-June) for the ACRL and IPEDS surveys."""
    year = DeskStat.fiscal_year == fiscal_year
    where = and_(year, queries.QUESTION)
    # ACRL counts "information contacts ... by a member of the library staff": a question
    # nobody claimed, answered or transferred is no transaction
    responded = and_(where, DeskStat.first_response_at.is_not(None))
    first, last = fiscal_range(fiscal_year)
    by_channel = await queries.counts_by(session, where, DeskStat.channel)
    by_month = await queries.counts_by(session, where, DeskStat.desk_month)
    by_scale = await queries.counts_by(session, where, DeskStat.read_scale)
    by_topic = await queries.counts_by(session, where, DeskStat.topic)
    directional = await queries.counts_by(
        session,
        and_(
            responded,
            (DeskStat.read_scale == 1) | (DeskStat.topic == DIRECTIONAL_TOPIC),
        ),
    )
    answered = (await queries.counts_by(session, responded)).get((), 0)
    total = sum(by_channel.values())
    aside = (await queries.counts_by(session, and_(year, queries.SET_ASIDE))).get((), 0)
    excluded = directional.get((), 0)
    months = [f"{y:04d}-{m:02d}" for y, m in _months(first, last)]
    return {
        "fiscal_year": fiscal_year,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "questions": total,
        "reference_transactions": answered - excluded,
        "directional_or_policy": excluded,
        "not_responded": total - answered,
        "set_aside": aside,
        "by_channel": {c: by_channel.get((c,), 0) for c in CHANNELS},
        "by_month": [{"month": m, "questions": by_month.get((m,), 0)} for m in months],
        "by_read_scale": {
            **{str(s): by_scale.get((s,), 0) for s in range(1, 7)},
            "untagged": by_scale.get((None,), 0),
        },
        "by_topic": {
            **{t: by_topic.get((t,), 0) for t in TOPICS},
            "untagged": by_topic.get((None,), 0),
        },
    }


def _months(first: date, last: date) -> list[tuple[int, int]]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months
