"""Desk hours in America/Chicago: boundaries, Sunday, DST, overnight decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.router.policy import DecisionInput, Policy, PolicyError, parse_policy
from services.router.policy.texts import gsm7_length
from shared.events import Channel, Priority

CHI = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("local", "is_open"),
    [
        (datetime(2025, 10, 3, 16, 59), True),  # Friday just before close
        (datetime(2025, 10, 3, 17, 0), False),  # Friday 17:00: closed
        (datetime(2025, 10, 2, 20, 59), True),  # Thursday
        (datetime(2025, 10, 2, 21, 0), False),
        (datetime(2025, 10, 4, 9, 0), True),  # Saturday opening
        (datetime(2025, 10, 4, 13, 0), False),
        (datetime(2025, 10, 5, 12, 0), False),  # Sunday closed
        (datetime(2025, 10, 6, 7, 59), False),  # Monday before opening
        (datetime(2025, 10, 6, 8, 0), True),
    ],
)
def test_is_open_at_boundaries(policy: Policy, local: datetime, is_open: bool) -> None:
    """Opening time is inclusive, closing time exclusive, in desk time."""
    assert policy.is_open(local.replace(tzinfo=CHI)) is is_open


def test_is_open_uses_policy_timezone(policy: Policy) -> None:
    """A UTC instant is converted: 22:30 UTC on a Friday is 17:30 in Chicago (closed)."""
    assert policy.is_open(datetime(2025, 10, 3, 21, 30, tzinfo=UTC)) is True  # 16:30 CDT
    assert policy.is_open(datetime(2025, 10, 3, 22, 30, tzinfo=UTC)) is False  # 17:30 CDT


def test_next_open_after_friday_close_is_saturday(policy: Policy) -> None:
    """Friday evening's next opening is Saturday 09:00."""
    nxt = policy.next_open(datetime(2025, 10, 3, 17, 0, tzinfo=CHI))
    assert nxt == datetime(2025, 10, 4, 9, 0, tzinfo=CHI)


def test_next_open_from_sunday_is_monday(policy: Policy) -> None:
    """Sunday is closed all day; the desk next opens Monday 08:00."""
    nxt = policy.next_open(datetime(2025, 10, 5, 12, 0, tzinfo=CHI))
    assert nxt == datetime(2025, 10, 6, 8, 0, tzinfo=CHI)


def test_next_open_while_open_is_now(policy: Policy) -> None:
    """While open, next_open returns the moment itself."""
    now = datetime(2025, 10, 1, 10, 0, tzinfo=CHI)
    assert policy.next_open(now) == now


def test_dst_spring_forward(policy: Policy) -> None:
    """Sunday 9 March 2025 (DST starts): Monday 08:00 CDT is 13:00 UTC, not 14:00."""
    nxt = policy.next_open(datetime(2025, 3, 9, 12, 0, tzinfo=UTC))
    assert nxt.astimezone(UTC) == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
    assert policy.is_open(datetime(2025, 3, 10, 13, 0, tzinfo=UTC))
    assert not policy.is_open(datetime(2025, 3, 10, 12, 59, tzinfo=UTC))


def test_dst_fall_back(policy: Policy) -> None:
    """Monday 3 November 2025 (after DST ends): 08:00 CST is 14:00 UTC."""
    assert not policy.is_open(datetime(2025, 11, 3, 13, 30, tzinfo=UTC))
    assert policy.is_open(datetime(2025, 11, 3, 14, 0, tzinfo=UTC))


def test_overnight_decision(policy: Policy) -> None:
    """A message after Friday close is overnight, high priority, acknowledged with Saturday."""
    inp = DecisionInput(
        channel=Channel.SMS,
        text="where are the chemistry books",
        received_at=datetime(2025, 10, 3, 18, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert got.overnight is True
    assert got.priority is Priority.HIGH
    assert got.after_hours_ack is not None and "tomorrow at 9:00 AM" in got.after_hours_ack


def test_daytime_decision_has_no_ack(policy: Policy) -> None:
    """During desk hours nothing is overnight and no acknowledgement is sent."""
    inp = DecisionInput(
        channel=Channel.CHAT,
        text="where are the chemistry books",
        received_at=datetime(2025, 10, 1, 10, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert (got.overnight, got.priority, got.after_hours_ack) == (False, Priority.NORMAL, None)


def test_overnight_crisis_stays_urgent(policy: Policy) -> None:
    """A crisis on Sunday is urgent, not merely high."""
    inp = DecisionInput(
        channel=Channel.CHAT,
        text="I want to end it all",
        received_at=datetime(2025, 10, 5, 2, 0, tzinfo=CHI),
    )
    got = policy.decide(inp)
    assert got.overnight and got.priority is Priority.URGENT


# ---- hours exceptions: holidays, breaks, longer hours -------------------------------------

BREAKS = """hours_exceptions:
  - {name: Winter break, from: 2026-12-19, to: 2027-01-03}
  - {name: Finals week, from: 2026-12-07, to: 2026-12-10, hours: [{open: "08:00", close: "23:00"}]}
  - {name: Thanksgiving, from: 2026-11-26}"""


@pytest.fixture()
def on_break(policy_text: str) -> Policy:
    """The shipped policy with a winter break, finals-week hours and a one-day holiday."""
    assert "hours_exceptions: []" in policy_text
    return parse_policy(policy_text.replace("hours_exceptions: []", BREAKS).encode())


def test_a_break_closes_the_desk_and_the_next_opening_is_after_it(on_break: Policy) -> None:
    """A weekday morning inside the break is closed; the desk opens the Monday after it, and
    the patron reads that date, not 'Monday' (which would be the next day of the break)."""
    tuesday = datetime(2026, 12, 22, 10, 0, tzinfo=CHI)
    assert on_break.is_open(tuesday) is False
    assert on_break.next_open(tuesday) == datetime(2027, 1, 4, 8, 0, tzinfo=CHI)
    assert on_break.describe_next_open(tuesday) == "Monday, January 4 at 8:00 AM"
    assert on_break.describe_next_open(tuesday, "es") == "el lunes 4 de enero a las 8:00 a. m."
    got = on_break.decide(DecisionInput(Channel.SMS, "do you have the textbook", tuesday))
    assert got.overnight and got.priority is Priority.HIGH
    assert got.after_hours_ack is not None and "Monday, January 4 at 8:00 AM" in got.after_hours_ack


def test_a_holiday_of_one_day_and_longer_finals_hours(on_break: Policy, policy: Policy) -> None:
    """Thanksgiving Thursday is closed (open on the weekly hours); finals-week Tuesday is open
    at 22:00 until 23:00 (closed at 21:00 on the weekly hours); the day after is as usual."""
    thanksgiving = datetime(2026, 11, 26, 10, 0, tzinfo=CHI)
    assert policy.is_open(thanksgiving) and not on_break.is_open(thanksgiving)
    assert on_break.next_open(thanksgiving) == datetime(2026, 11, 27, 8, 0, tzinfo=CHI)
    late = datetime(2026, 12, 8, 22, 0, tzinfo=CHI)
    assert on_break.is_open(late) and not policy.is_open(late)
    assert not on_break.is_open(datetime(2026, 12, 8, 23, 0, tzinfo=CHI))
    assert not on_break.is_open(datetime(2026, 12, 11, 22, 0, tzinfo=CHI))  # a Friday: usual


@pytest.mark.parametrize(
    ("local", "word", "note"),
    [
        (datetime(2026, 12, 22, 10, 0), "HOURS", "Closed Dec 19-Jan 3."),
        (datetime(2026, 12, 22, 10, 0), "HORARIO", "Cerrado del 19 dic. al 3 ene."),
        (datetime(2026, 12, 8, 10, 0), "HOURS", "Dec 7-10: 8am-11pm. Closed Dec 19-Jan 3."),
        (datetime(2026, 12, 1, 10, 0), "HORARIO", "Horario del 7 al 10 dic.: 8am-11pm."),
        (datetime(2026, 11, 20, 10, 0), "HOURS", "Closed Nov 26."),
        (datetime(2026, 11, 20, 10, 0), "HORARIO", "Cerrado el 26 nov."),
    ],
)
def test_the_hours_reply_names_the_exception_in_force_or_coming(
    on_break: Policy, local: datetime, word: str, note: str
) -> None:
    """HOURS ends with the exceptions in force or starting within 14 days, in the keyword's
    language, in GSM-7: one segment for one English note, two segments at most."""
    got = on_break.decide(DecisionInput(Channel.SMS, word, local.replace(tzinfo=CHI)))
    reply = got.keyword_reply or ""
    assert reply.endswith(" " + note), reply
    one = word == "HOURS" and note.count(".") == 1
    assert (gsm7_length(reply) or 999) <= (160 if one else 306)


def test_a_break_and_the_holiday_after_it_read_as_one_closure(policy_text: str) -> None:
    """A verifying probe's break to the 13th and holiday on the 14th read "Closed Dec 5-13.",
    as if the desk opened on the 14th; closures that touch are one, as the acknowledgement
    (opening the 15th) says."""
    touching = policy_text.replace(
        "hours_exceptions: []",
        "hours_exceptions:\n  - {name: Break, from: 2026-12-05, to: 2026-12-13}"
        "\n  - {name: Holiday, from: 2026-12-14}",
    )
    pol = parse_policy(touching.encode())
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=CHI)
    reply = pol.decide(DecisionInput(Channel.SMS, "HOURS", saturday)).keyword_reply or ""
    assert reply.endswith(" Closed Dec 5-14."), reply
    assert pol.describe_next_open(saturday) == "Tuesday, December 15 at 8:00 AM"


def test_the_hours_reply_without_an_exception_coming_is_the_weekly_text(
    on_break: Policy, policy: Policy
) -> None:
    """Further than 14 days from the next exception (and with none at all) HOURS is the
    weekly hours alone, with no trailing space."""
    early = datetime(2026, 10, 1, 10, 0, tzinfo=CHI)
    for pol in (on_break, policy):
        reply = pol.decide(DecisionInput(Channel.SMS, "HOURS", early)).keyword_reply or ""
        assert reply.endswith("Text your question any time."), reply


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("  - {name: Break, from: 2026-12-19, to: 2026-12-01}", "'to' must not be before 'from'"),
        (
            "  - {name: A, from: 2026-12-19, to: 2026-12-31}\n  - {name: B, from: 2026-12-31}",
            "2026-12-31 is also in 'A'",
        ),
        (
            "  - {name: A, from: 2026-12-19, hours: [{open: '08:00', close: '12:00'},"
            " {open: '11:00', close: '13:00'}]}",
            "hours overlap",
        ),
    ],
)
def test_the_policy_refuses_exceptions_that_cannot_be_right(
    policy_text: str, entries: str, message: str
) -> None:
    """A range ending before it starts, a day in two exceptions, overlapping hours: refused
    at load with the line, like every other policy mistake."""
    broken = policy_text.replace("hours_exceptions: []", "hours_exceptions:\n" + entries)
    with pytest.raises(PolicyError, match=message):
        parse_policy(broken.encode())


def test_a_notification_names_the_dated_opening(on_break: Policy) -> None:
    """The after-hours acknowledgement's context (an email's subject and body) reads the date
    of an opening a week or more away: 'we open Monday, January 4 at 8:00 AM'."""
    from services.router.commands import _next_open

    tuesday = datetime(2026, 12, 22, 10, 0, tzinfo=CHI)
    assert _next_open(on_break, tuesday, "en") == "Monday, January 4 at 8:00 AM"
    friday_night = datetime(2026, 10, 2, 22, 0, tzinfo=CHI)
    assert _next_open(on_break, friday_night, "en") == "Saturday at 9:00 AM"


def test_the_hours_reply_follows_the_weekly_hours_the_policy_keeps(policy_text: str) -> None:
    """HOURS and HORARIO say the week as `hours:` has it ({weekly_hours}): an operator who
    changed Friday to a half day had the desk close at noon while HOURS still said 5pm (an
    outside review)."""
    friday = '  friday:    [{open: "08:00", close: "17:00"}]'
    assert friday in policy_text
    summer = parse_policy(
        policy_text.replace(
            friday,
            '  friday:    [{open: "08:00", close: "12:00"}, {open: "13:00", close: "15:30"}]',
        )
        .replace("  sunday:    []", '  sunday:    [{open: "13:00", close: "17:00"}]')
        .encode()
    )
    monday = datetime(2026, 12, 7, 10, 0, tzinfo=CHI)
    english = summer.decide(DecisionInput(Channel.SMS, "HOURS", monday)).keyword_reply or ""
    assert english.startswith(
        "Reference desk hours (Central): Mon-Thu 8am-9pm, Fri 8am-12pm/1pm-3:30pm, "
        "Sat 9am-1pm, Sun 1pm-5pm. "
    )
    spanish = summer.decide(DecisionInput(Channel.SMS, "HORARIO", monday)).keyword_reply or ""
    assert "lun-jue 8am-9pm, vie 8am-12pm/1pm-3:30pm, sab 9am-1pm, dom 1pm-5pm." in spanish
    assert gsm7_length(spanish) is not None  # one GSM-7 text, as written
    assert not summer.is_open(datetime(2026, 12, 11, 12, 30, tzinfo=CHI))  # the routing agrees
