"""Desk hours in the policy's timezone: is the desk open, when does it next open, and the
days it keeps other hours (holidays, breaks: the policy's `hours_exceptions`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .model import HoursException, Interval

Span = tuple[time, time]

LOOK_AHEAD_DAYS = 400
"""How far `next_open` looks: a year of exceptions and the week after them."""

NOTICE_DAYS = 14
"""An exception is announced ({hours_exceptions}) from this many days before its first day."""

NOTED = 2
"""How many exceptions one text names (a break and the holiday after it); SMS length."""

MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")  # fmt: skip
MONTHS_ES = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
             "septiembre", "octubre", "noviembre", "diciembre")  # fmt: skip
DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAYS_ES = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


class DeskHours:
    """Weekly opening intervals and dated exceptions, evaluated in one timezone (zoneinfo
    handles DST). The process locale plays no part: every word is the module's own."""

    def __init__(
        self, tz: ZoneInfo, week: list[list[Interval]], exceptions: Sequence[HoursException] = ()
    ) -> None:
        """Keep one list of (open, close) per weekday, Monday first, and the exceptions' days."""
        self.tz = tz
        self._week: list[list[Span]] = [[(i.open, i.close) for i in d] for d in week]
        self._exceptions = sorted(exceptions, key=lambda e: e.first)
        self._dated: dict[date, list[Span]] = {
            day: sorted((i.open, i.close) for i in e.hours)
            for e in self._exceptions
            for day in e.days()
        }

    def spans(self, day: date) -> list[Span]:
        """The desk's opening intervals on a day: its exception's, else its weekday's."""
        dated = self._dated.get(day)
        return dated if dated is not None else self._week[day.weekday()]

    def is_open(self, dt: datetime) -> bool:
        """True when an aware datetime falls inside desk hours (open inclusive, close exclusive)."""
        local = dt.astimezone(self.tz)
        t = local.time()
        return any(o <= t < c for o, c in self.spans(local.date()))

    def next_open(self, dt: datetime) -> datetime:
        """`dt` itself when the desk is open, otherwise the next opening instant (policy tz)."""
        local = dt.astimezone(self.tz)
        if self.is_open(local):
            return local
        for days in range(LOOK_AHEAD_DAYS):
            day = local.date() + timedelta(days=days)
            for o, _ in self.spans(day):
                start = datetime.combine(day, o, tzinfo=self.tz)
                if start > local:
                    return start
        raise ValueError("desk hours have no opening interval")

    def describe(self, opens: datetime, now: datetime, lang: str = "en") -> str:
        """Patron wording of an opening time: 'today at 8:00 AM', 'Monday at 9:00 AM', and a
        week or more away 'Monday, January 4 at 8:00 AM'; in Spanish 'mañana a las 8:00
        a. m.', 'el lunes a las 9:00 a. m.', 'el lunes 4 de enero a las 8:00 a. m.'."""
        local = opens.astimezone(self.tz)
        delta = (local.date() - now.astimezone(self.tz).date()).days
        if lang == "es":
            return describe_es(local, delta)
        day = "today" if delta == 0 else "tomorrow" if delta == 1 else _day_en(local, delta)
        return f"{day} at {_clock_en(local.time())}"

    def weekday_phrase(self, opens: datetime, now: datetime) -> str:
        """English wording without 'today' or 'tomorrow' ('Monday at 8:00 AM'), dated a week
        or more away; read after 'we open' in a notification's context."""
        local = opens.astimezone(self.tz)
        delta = (local.date() - now.astimezone(self.tz).date()).days
        return f"{_day_en(local, delta)} at {_clock_en(local.time())}"

    def exception_note(self, dt: datetime, lang: str = "en") -> str:
        """What the patron should know of the exceptions in force on `dt`'s day or starting
        within NOTICE_DAYS (the first NOTED of them; closures that touch read as one): 'Closed
        Dec 24-Jan 3.', 'Dec 14-18: 8am-11pm. Closed Dec 19-Jan 3.'; in Spanish 'Cerrado del 24
        dic. al 3 ene.'. Empty when there is none."""
        today = dt.astimezone(self.tz).date()
        horizon = today + timedelta(days=NOTICE_DAYS)
        found = [e for e in self._exceptions if e.until >= today and e.first <= horizon]
        return " ".join(note_of(e, lang) for e in joined(found)[:NOTED])


def joined(exceptions: Sequence[HoursException]) -> list[HoursException]:
    """Exceptions in date order with closures that touch made one (a break ending on the 13th
    and a holiday on the 14th read "Closed Dec 5-14", not as open on the 14th)."""
    out: list[HoursException] = []
    for exc in sorted(exceptions, key=lambda e: e.first):
        last = out[-1] if out else None
        touching = last is not None and exc.first == last.until + timedelta(days=1)
        if last is not None and touching and not last.hours and not exc.hours:
            out[-1] = HoursException(name=last.name, first=last.first, last=exc.until)
        else:
            out.append(exc)
    return out


def _day_en(local: datetime, delta_days: int) -> str:
    """'Monday' within the week, 'Monday, January 4' further away."""
    name = DAYS_EN[local.weekday()]
    return name if delta_days < 7 else f"{name}, {MONTHS_EN[local.month - 1]} {local.day}"


def _clock_en(t: time) -> str:
    """'8:00 AM', '12:30 PM'."""
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def describe_es(opens: datetime, delta_days: int) -> str:
    """Spanish wording, independent of the process locale ("a la 1:00", "a las 8:00")."""
    day = f"el {DAYS_ES[opens.weekday()]}"
    if delta_days in (0, 1):
        day = "hoy" if delta_days == 0 else "mañana"
    elif delta_days >= 7:
        day = f"{day} {opens.day} de {MONTHS_ES[opens.month - 1]}"
    hour = opens.hour % 12 or 12
    clock = f"{hour}:{opens.minute:02d} {'a. m.' if opens.hour < 12 else 'p. m.'}"
    return f"{day} {'a la' if hour == 1 else 'a las'} {clock}"


def _short_clock(t: time) -> str:
    """'8am', '9:30pm', '12pm': as the weekly hours are written in the desk's texts."""
    hour = t.hour % 12 or 12
    minutes = f":{t.minute:02d}" if t.minute else ""
    return f"{hour}{minutes}{'am' if t.hour < 12 else 'pm'}"


SHORT_DAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    # without accents: the texts that carry them are sent by SMS in GSM-7 (one segment)
    "es": ("lun", "mar", "mie", "jue", "vie", "sab", "dom"),
}
CLOSED = {"en": "closed", "es": "cerrado"}


def weekly_text(week: Sequence[Sequence[Interval]], lang: str = "en") -> str:
    """The week's hours as the desk's texts write them, days with the same hours run together:
    'Mon-Thu 8am-9pm, Fri 8am-5pm, Sat 9am-1pm, Sun closed'; in Spanish 'lun-jue 8am-9pm, ...,
    dom cerrado' ({weekly_hours}: the HOURS reply follows the policy's `hours:`)."""
    names = SHORT_DAYS.get(lang, SHORT_DAYS["en"])
    said = [
        "/".join(f"{_short_clock(i.open)}-{_short_clock(i.close)}" for i in day)
        or CLOSED.get(lang, CLOSED["en"])
        for day in week
    ]
    parts, first = [], 0
    for day in range(1, len(said) + 1):
        if day < len(said) and said[day] == said[first]:
            continue
        days = names[first] if day - 1 == first else f"{names[first]}-{names[day - 1]}"
        parts.append(f"{days} {said[first]}")
        first = day
    return ", ".join(parts)


def _spans_text(e: HoursException) -> str:
    """'8am-11pm' or '8am-12pm, 1pm-5pm'."""
    return ", ".join(f"{_short_clock(i.open)}-{_short_clock(i.close)}" for i in e.hours)


def _range_en(e: HoursException) -> str:
    """'Nov 26', 'Dec 14-18', 'Dec 24-Jan 3'."""
    first, last = e.first, e.until
    start = f"{MONTHS_EN[first.month - 1][:3]} {first.day}"
    if last == first:
        return start
    if (last.year, last.month) == (first.year, first.month):
        return f"{start}-{last.day}"
    return f"{start}-{MONTHS_EN[last.month - 1][:3]} {last.day}"


def _month_es(d: date) -> str:
    """'dic.', 'sept.', 'mayo' (the abbreviations of the RAE; May is not shortened)."""
    name = MONTHS_ES[d.month - 1]
    return name if len(name) <= 4 else f"{name[:4] if d.month == 9 else name[:3]}."


def note_of(e: HoursException, lang: str = "en") -> str:
    """An exception as patrons read it, in English or Spanish."""
    return _note_es(e) if lang == "es" else _note_en(e)


def _note_en(e: HoursException) -> str:
    """The English note of one exception."""
    if not e.hours:
        return f"Closed {_range_en(e)}."
    return f"{_range_en(e)}: {_spans_text(e)}."


def _note_es(e: HoursException) -> str:
    """The Spanish note of one exception."""
    first, last = e.first, e.until
    if last == first:
        days = f"el {first.day} {_month_es(first)}"
    elif (last.year, last.month) == (first.year, first.month):
        days = f"del {first.day} al {last.day} {_month_es(last)}"
    else:
        days = f"del {first.day} {_month_es(first)} al {last.day} {_month_es(last)}"
    if not e.hours:
        return f"Cerrado {days}" if days.endswith(".") else f"Cerrado {days}."
    return f"Horario {days}: {_spans_text(e)}."
