"""Desk hours in the policy's timezone: is the desk open, and when does it next open."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import Interval


class DeskHours:
    """Weekly opening intervals evaluated in one timezone (zoneinfo handles DST)."""

    def __init__(self, tz: ZoneInfo, week: list[list[Interval]]) -> None:
        """Keep one list of (open, close) per weekday, Monday first."""
        self.tz = tz
        self._week: list[list[tuple[time, time]]] = [[(i.open, i.close) for i in d] for d in week]

    def is_open(self, dt: datetime) -> bool:
        """True when an aware datetime falls inside desk hours (open inclusive, close exclusive)."""
        local = dt.astimezone(self.tz)
        t = local.time()
        return any(o <= t < c for o, c in self._week[local.weekday()])

    def next_open(self, dt: datetime) -> datetime:
        """`dt` itself when the desk is open, otherwise the next opening instant (policy tz)."""
        local = dt.astimezone(self.tz)
        if self.is_open(local):
            return local
        for days in range(8):
            day = local.date() + timedelta(days=days)
            for o, _ in self._week[day.weekday()]:
                start = datetime.combine(day, o, tzinfo=self.tz)
                if start > local:
                    return start
        raise ValueError("desk hours have no opening interval")

    def describe(self, opens: datetime, now: datetime, lang: str = "en") -> str:
        """Patron wording of an opening time: 'today at 8:00 AM', 'Monday at 9:00 AM';
        in Spanish 'mañana a las 8:00 a. m.', 'el lunes a las 9:00 a. m.'."""
        local_now = now.astimezone(self.tz)
        delta = (opens.date() - local_now.date()).days
        if lang == "es":
            return describe_es(opens, delta)
        day = "today" if delta == 0 else "tomorrow" if delta == 1 else opens.strftime("%A")
        clock = opens.strftime("%I:%M %p").lstrip("0")
        return f"{day} at {clock}"


DAYS_ES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


def describe_es(opens: datetime, delta_days: int) -> str:
    """Spanish wording, independent of the process locale ("a la 1:00", "a las 8:00")."""
    day = f"el {DAYS_ES[opens.weekday()]}"
    if delta_days in (0, 1):
        day = "hoy" if delta_days == 0 else "mañana"
    hour = opens.hour % 12 or 12
    clock = f"{hour}:{opens.minute:02d} {'a. m.' if opens.hour < 12 else 'p. m.'}"
    return f"{day} {'a la' if hour == 1 else 'a las'} {clock}"
