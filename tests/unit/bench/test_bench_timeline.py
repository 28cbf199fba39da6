"""bench.timeline: a run's late interactions grouped into stalls, the machine's and the
processes' CPU over them from /proc, and the services' warnings logged meanwhile; the report
says what it found, or that nothing was late."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import stall_rows
from bench.timeline import Sample, Timeline, during, stalls, warnings_logged

INF = math.inf


def test_late_interactions_due_within_a_second_of_each_other_form_one_stall() -> None:
    due = [100.0 + i * 0.1 for i in range(60)]  # 10/s for 6 s
    quick = [20.0] * 60
    email = list(quick)
    for i in (10, 11, 12, 18):  # 1.0-1.8 s into the run: one stall
        email[i] = 1500.0 + i
    email[50] = INF  # 5.0 s: another, never emailed
    accepted = list(quick)
    accepted[11] = 1200.0

    found = stalls(due, {"accepted": accepted, "decision": quick, "email": email})

    assert len(found) == 2
    first, second = found
    assert first["start"] == due[10] and first["interactions"] == 4
    assert first["worst_ms"] == {"accepted": 1200.0, "decision": 20.0, "email": 1518.0}
    assert math.isclose(first["end"], due[18] + 1.518)
    assert second["interactions"] == 1 and second["end"] == INF


def test_nothing_late_is_no_stall() -> None:
    due = [float(i) for i in range(10)]
    on_time = [999.0] * 10
    assert stalls(due, {"email": on_time}) == []


def sample(at: float, busy: float, steal: float, **processes: float) -> Sample:
    machine = {"busy": busy, "iowait": 0.0, "steal": steal, "idle": 2000.0 - busy - steal}
    return Sample(at, machine, {"cpu": busy / 2, "io": 0.0}, dict(processes))


def test_the_timeline_over_a_stall_is_the_mean_of_the_intervals_it_overlaps() -> None:
    samples = [
        sample(10.0, 400, 0, ingest=100, broker=50, bench=10),
        sample(10.5, 1800, 200, ingest=900, broker=700, bench=20),
        sample(11.0, 2000, 0, ingest=1000, broker=900, bench=40),
        sample(20.0, 100, 0, ingest=10, broker=10, bench=5),
    ]
    over = during(samples, 10.2, 10.9)
    assert over["samples"] == 3
    assert over["machine"]["busy"] == (400 + 1800 + 2000) / 3
    assert over["machine"]["steal"] == 200 / 3
    assert list(over["busiest"]) == ["ingest", "broker", "bench"]
    assert during(samples, 50.0, 51.0) == {}


def test_the_timeline_reads_this_machine_and_a_busy_process() -> None:
    timeline = Timeline({"me": os.getpid(), "gone": 2**22 + 7}, interval_s=0.1).start()
    until = time.monotonic() + 0.5
    while time.monotonic() < until:
        sum(i * i for i in range(1000))
    samples = timeline.stop()
    assert len(samples) >= 3
    assert sum(s.processes["me"] for s in samples) > 0
    assert all("gone" not in s.processes for s in samples)
    assert all(set(s.machine) == {"busy", "iowait", "steal", "idle"} for s in samples)


def log_line(at: float, level: str, message: str, **extra: object) -> str:
    when = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return json.dumps({"time": when, "level": level, "message": message, **extra}) + "\n"


def test_warnings_in_the_window_are_counted_by_service_and_message(tmp_path: Path) -> None:
    now = time.time()
    (tmp_path / "ingest.log").write_text(
        log_line(now - 100, "warning", "a unit of database work was slow", ran_ms=9000.0)
        + log_line(now, "info", "accepted")
        + log_line(now, "warning", "a unit of database work was slow", waited_ms=3000.0, ran_ms=5)
        + log_line(now + 1, "warning", "a unit of database work was slow", ran_ms=1200.0)
        + "not json\n"
    )
    (tmp_path / "router.log").write_text(
        log_line(now, "warning", "the broker was slow to acknowledge", took_ms=2500.0)
    )
    found = warnings_logged(tmp_path, now - 5, now + 5)
    assert found == [
        {
            "service": "ingest",
            "message": "a unit of database work was slow",
            "count": 2,
            "worst_ms": 3005.0,
        },
        {
            "service": "router",
            "message": "the broker was slow to acknowledge",
            "count": 1,
            "worst_ms": 2500.0,
        },
    ]
    assert warnings_logged(tmp_path / "missing", now - 5, now + 5) == []


def test_the_report_names_each_stall_or_says_there_was_none() -> None:
    quiet = {"offered": 10, "stalls": []}
    stalled = {
        "offered": 100,
        "stalls": [
            {
                "at_s": 23.14,
                "length_s": 4.9,
                "interactions": 412,
                "worst_ms": {"accepted": 3349.0, "decision": 2620.0, "email": 4885.0},
                "timeline": {
                    "machine": {"busy": 1950.0, "iowait": 3.0, "steal": 0.0, "idle": 47.0},
                    "pressure": {"cpu": 850.0, "io": 2.0},
                    "busiest": {"broker": 900.0, "ingest": 400.0},
                    "samples": 11,
                },
                "warnings": [
                    {
                        "service": "ingest",
                        "message": "a unit of database work was slow",
                        "count": 3,
                        "worst_ms": 4200.0,
                    }
                ],
            }
        ],
    }
    assert stall_rows([{"offered": 10}]) == []  # recorded before the timeline
    assert stall_rows([quiet]) == [
        "",
        "Stalls: no interaction of these runs was later than 1 s at any step.",
    ]
    [line] = [row for row in stall_rows([quiet, stalled]) if row.startswith("- ")]
    assert line == (
        "- 100/s, 23.1 s into the run, 4.9 s long, 412 interactions late; worst accepted / "
        "decision / email 3,349 / 2,620 / 4,885 ms; machine busy 1,950, waiting for the disk 3, "
        "stolen 0; waiting for CPU 850 / I/O 2; busiest broker 900, ingest 400; warnings: "
        'ingest "a unit of database work was slow" x3 (worst 4,200 ms).'
    )
