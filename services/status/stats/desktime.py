"""Desk time and the calendar the reports count in: hours and weekdays in America/Chicago,
weeks from Monday, fiscal years July-June named by the year they end in."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TypedDict

from shared.clock import DESK_TZ

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FISCAL_START_MONTH = 7
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9000, 12, 31)
"""The desk days a report or a search may name (beyond them the calendar's arithmetic, a day
before or after, a time zone, would overflow)."""


def check_days(first: date | None, last: date | None) -> str | None:
    """What is wrong with a range of desk days, in words; None if nothing."""
    for day in (first, last):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            return f"dates run from {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}"
    if first is not None and last is not None and first > last:
        return "the From date is after the To date"
    return None


def desk_local(at: datetime) -> datetime:
    """A UTC instant in desk time."""
    return at.astimezone(DESK_TZ)


def fiscal_year_of(day: date) -> int:
    """The fiscal year a day belongs to: July 2025 - June 2026 is 2026."""
    return day.year + 1 if day.month >= FISCAL_START_MONTH else day.year


def fiscal_range(fiscal_year: int) -> tuple[date, date]:
    """First and last day of a fiscal year."""
    return date(fiscal_year - 1, FISCAL_START_MONTH, 1), date(fiscal_year, 6, 30)


class Buckets(TypedDict):
    """The desk-time columns stored beside a received time."""

    desk_day: date
    desk_hour: int
    desk_weekday: int
    desk_week: date
    desk_month: str
    fiscal_year: int


def buckets(at: datetime) -> Buckets:
    """The desk-time columns of a received time."""
    local = desk_local(at)
    day = local.date()
    return {
        "desk_day": day,
        "desk_hour": local.hour,
        "desk_weekday": day.weekday(),
        "desk_week": day - timedelta(days=day.weekday()),
        "desk_month": f"{day.year:04d}-{day.month:02d}",
        "fiscal_year": fiscal_year_of(day),
    }


def today(now: datetime) -> date:
    """The desk's calendar day."""
    return desk_local(now).date()


def day_start(day: date) -> datetime:
    """Midnight at the desk, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=DESK_TZ)


def hour_label(hour: int) -> str:
    """9 -> "9 AM", 13 -> "1 PM", 0 -> "12 AM"."""
    suffix = "AM" if hour < 12 else "PM"
    return f"{(hour % 12) or 12} {suffix}"


def week_label(monday: date) -> str:
    """The week starting on a Monday: "Week of Jan 12, 2026"."""
    return f"Week of {monday:%b} {monday.day}, {monday.year}"


def month_label(month: str) -> str:
    """ "2026-01" -> "January 2026"."""
    year, number = (int(part) for part in month.split("-"))
    return f"{date(year, number, 1):%B} {year}"
