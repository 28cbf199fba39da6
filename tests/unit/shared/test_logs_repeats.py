"""Records that repeat during an outage are logged once a minute, with how many were not.

An outside probe: an 8-minute broker outage wrote 218,779 aiokafka ERROR lines (about 100 a
second per service, "Unable connect to node with id 1"), and a database outage had status
log "live feed poll failed" four times a second."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from shared.logs import REPEATING, RateLimited, configure_logging


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    name: str, msg: str, *args: object, level: int = logging.ERROR, **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


UNABLE = "Unable connect to node with id %s: %s"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limit(clock: FakeClock) -> RateLimited:
    return RateLimited(window_s=60.0, clock=clock)


def test_the_first_passes_and_repeats_in_the_window_do_not(
    limit: RateLimited, clock: FakeClock
) -> None:
    assert limit.filter(record("aiokafka", UNABLE, 1, "refused"))
    for n in range(500):
        clock.now += 0.1
        assert not limit.filter(record("aiokafka", UNABLE, n % 3, "refused"))


def test_the_first_after_the_window_says_how_many_were_not_logged(
    limit: RateLimited, clock: FakeClock
) -> None:
    first = record("aiokafka", UNABLE, 1, "refused")
    assert limit.filter(first)
    assert not hasattr(first, "suppressed")
    for _ in range(7):
        limit.filter(record("aiokafka", UNABLE, 1, "refused"))
    clock.now += 60.0
    after = record("aiokafka", UNABLE, 1, "refused")
    assert limit.filter(after)
    assert after.suppressed == 7
    clock.now += 61.0  # nothing repeated meanwhile: nothing to say
    quiet = record("aiokafka", UNABLE, 1, "refused")
    assert limit.filter(quiet)
    assert not hasattr(quiet, "suppressed")


def test_templates_loggers_and_levels_are_counted_apart(limit: RateLimited) -> None:
    assert limit.filter(record("aiokafka", UNABLE, 1, "refused"))
    assert limit.filter(record("aiokafka", "Unable to update metadata from %s", [1]))
    assert limit.filter(record("aiokafka.conn", UNABLE, 1, "refused"))
    assert limit.filter(record("aiokafka", UNABLE, 1, "refused", level=logging.WARNING))
    assert not limit.filter(record("aiokafka.conn", UNABLE, 2, "reset"))


def test_refdesk_records_are_limited_only_when_marked_repeating(limit: RateLimited) -> None:
    notifier = "services.notifier.delivery"
    for _ in range(3):
        assert limit.filter(record(notifier, "crisis notification failed"))
    live = "services.status.console.live"
    assert limit.filter(
        record(live, "live feed poll failed", level=logging.WARNING, _repeating=True)
    )
    assert not limit.filter(
        record(live, "live feed poll failed", level=logging.WARNING, _repeating=True)
    )


def test_the_marks_value_keeps_each_sweeps_failure_apart(limit: RateLimited) -> None:
    periodic = "services.status.periodic"
    sweep = "sweep failed; retrying next tick"
    assert limit.filter(record(periodic, sweep, level=logging.WARNING, _repeating="presence"))
    assert limit.filter(record(periodic, sweep, level=logging.WARNING, _repeating="crises"))
    assert not limit.filter(record(periodic, sweep, level=logging.WARNING, _repeating="crises"))


def test_faststreams_loop_error_is_limited_and_its_other_records_are_not(
    limit: RateLimited,
) -> None:
    kafka = "refdesk.router.kafka"  # FastStream's logger for the broker
    assert limit.filter(record(kafka, "Kafka error occurred"))
    assert not limit.filter(record(kafka, "Kafka error occurred"))
    assert limit.filter(record(kafka, "RuntimeError: boom"))
    assert limit.filter(record(kafka, "RuntimeError: boom"))


def test_configured_logging_writes_a_flood_of_aiokafka_errors_as_two_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    configure_logging("test", clock=clock)
    aiokafka = logging.getLogger("aiokafka.client")
    for _ in range(1000):
        aiokafka.error(UNABLE, 1, "Connect call failed")
        clock.now += 0.01
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 1
    assert lines[0]["message"] == "Unable connect to node with id 1: Connect call failed"
    assert "suppressed" not in lines[0]

    clock.now += 60.0
    aiokafka.error(UNABLE, 1, "Connect call failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 1
    assert lines[0]["suppressed"] == 999
    assert lines[0]["message"].endswith("(999 more like it not logged)")
    assert lines[0]["level"] == "error"


def test_configured_logging_limits_a_marked_warning_and_never_an_unmarked_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", clock=FakeClock())
    live = logging.getLogger("services.status.console.live")
    for _ in range(240):  # four a second for a minute
        live.warning("live feed poll failed", extra={"error": "OSError", REPEATING: True})
    delivery = logging.getLogger("services.notifier.delivery")
    for _ in range(3):
        delivery.error("crisis notification failed", extra={"error": "SMTPException"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == [
        "live feed poll failed",
        "crisis notification failed",
        "crisis notification failed",
        "crisis notification failed",
    ]
    assert REPEATING not in lines[0]


def test_repeats_nothing_followed_are_said_once_their_window_is_over(
    limit: RateLimited, clock: FakeClock
) -> None:
    """An outage shorter than the window: no record came after it to carry the count, so the
    count went unsaid (the operator read one error for a minute of them)."""
    told: list[logging.LogRecord] = []
    assert limit.filter(record("aiokafka", UNABLE, 1, "refused"))
    for n in range(5):
        clock.now += 1.0
        assert not limit.filter(record("aiokafka", UNABLE, n, "refused"))
    assert limit.say_the_rest(told.append) == 0  # the window is not over yet
    clock.now += 60.0
    assert limit.say_the_rest(told.append) == 1
    (last,) = told
    assert (last.getMessage(), last.suppressed) == ("Unable connect to node with id 4: refused", 4)
    assert limit.filter(last)  # written as it is, never counted again
    assert limit.say_the_rest(told.append) == 0  # said once
    after = record("aiokafka", UNABLE, 1, "refused")
    assert limit.filter(after) and not hasattr(after, "suppressed")


def test_a_single_repeat_is_written_without_a_count(limit: RateLimited, clock: FakeClock) -> None:
    told: list[logging.LogRecord] = []
    limit.filter(record("aiokafka", UNABLE, 1, "refused"))
    clock.now += 1.0
    limit.filter(record("aiokafka", UNABLE, 2, "refused"))
    clock.now += 60.0
    assert limit.say_the_rest(told.append) == 1
    assert told[0].getMessage().endswith("2: refused") and not hasattr(told[0], "suppressed")


def test_configured_logging_says_the_rest_of_a_short_outage_by_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    configure_logging("test", clock=clock)
    (handler,) = logging.getLogger().handlers
    (limiter,) = [f for f in handler.filters if isinstance(f, RateLimited)]
    aiokafka = logging.getLogger("aiokafka.client")
    for _ in range(10):
        aiokafka.error(UNABLE, 1, "Connect call failed")
    clock.now += 60.0
    limiter.say_the_rest(handler.handle)  # what the teller thread does four times a window
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line.get("suppressed") for line in lines] == [None, 8]
    assert lines[1]["message"].endswith("(8 more like it not logged)")
    assert lines[1]["level"] == "error"


def test_the_teller_thread_writes_the_rest_and_stops_when_logging_is_configured_again() -> None:
    from shared import logs

    clock = FakeClock()
    limiter = RateLimited(window_s=0.2, clock=clock)
    written: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            written.append(record)

    handler = Keep()
    handler.addFilter(limiter)
    teller = logs._Teller(limiter, handler)
    teller.start()
    try:
        for _ in range(3):
            handler.handle(record("aiokafka", UNABLE, 1, "refused"))
        clock.now += 1.0
        for _ in range(200):  # the thread looks every 0.05 s (a guard, not a timing)
            if len(written) == 2:
                break
            threading.Event().wait(0.05)
        assert [getattr(r, "suppressed", None) for r in written] == [None, 1]
    finally:
        teller.stopped.set()
        teller.join(5)
    assert not teller.is_alive()
    configure_logging("test")
    first = logs._teller
    configure_logging("test")
    assert first is not None and first.stopped.is_set() and logs._teller is not first
