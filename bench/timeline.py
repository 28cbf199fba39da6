"""What the machine and each process did, moment by moment, during a run, and the stalls.

A run's percentiles say that some interactions were late, not why. The timeline samples every
INTERVAL_S, from /proc: the machine's CPU time by kind (busy, waiting for the disk, stolen by
the hypervisor), the time tasks spent waiting for a CPU or for I/O (pressure stall
information, where the kernel offers it) and each process's CPU. A stall is a stretch of the
run whose interactions were late by more than STALL_MS; each one is reported with the
timeline over it and the warnings the services logged meanwhile (a slow unit of database work,
a slow broker acknowledgement), so a late run names its cause, or says the machine did.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import TICK, cpu_ticks

INTERVAL_S = 0.5
STALL_MS = 1000.0
"""An interaction later than this (accepted, decided or emailed, from its scheduled send) is
part of a stall: twenty times the email's p50 target at 100/s."""

TICK_MS = 1000 / TICK
MACHINE_FIELDS = ("busy", "iowait", "steal", "idle")


def machine_jiffies() -> dict[str, int]:
    """The machine's CPU time so far by kind (all CPUs, clock ticks), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return {
        "busy": user + nice + system + irq + softirq,
        "iowait": iowait,
        "steal": steal,
        "idle": idle,
    }


def pressure_us() -> dict[str, int]:
    """Microseconds so far in which some task waited for a CPU (`cpu`) or for I/O (`io`), and
    in which every task waited for I/O (`io_full`); empty where the kernel has no PSI."""
    out: dict[str, int] = {}
    for kind in ("cpu", "io"):
        try:
            text = Path(f"/proc/pressure/{kind}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            scope, *pairs = line.split()
            total = dict(pair.split("=", 1) for pair in pairs).get("total")
            if total is not None:
                out[kind if scope == "some" else f"{kind}_full"] = int(total)
    return out


def process_ticks(pid: int) -> int | None:
    """`cpu_ticks`, or None once the process is gone."""
    try:
        return cpu_ticks(pid)
    except OSError:
        return None


@dataclass
class Reading:
    """What /proc said at one moment (time.monotonic): the machine's jiffies, the pressure
    totals and each process's ticks."""

    at: float
    machine: dict[str, int]
    pressure: dict[str, int]
    processes: dict[str, int | None]


@dataclass
class Sample:
    """One interval: when it ended (time.monotonic) and, in ms of CPU per second of it, the
    machine's time by kind, the pressure stalls and each process's CPU."""

    at: float
    machine: dict[str, float]
    pressure: dict[str, float]
    processes: dict[str, float]


@dataclass
class Timeline:
    """Samples /proc every INTERVAL_S in a thread of its own between start() and stop()."""

    pids: dict[str, int]
    interval_s: float = INTERVAL_S
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Timeline:
        """Begin sampling."""
        self._thread = threading.Thread(target=self._run, name="bench-timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop sampling; the samples taken."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.samples

    def _run(self) -> None:
        before = self._read()
        while not self._stop.wait(self.interval_s):
            now = self._read()
            self.samples.append(self._delta(before, now))
            before = now

    def _read(self) -> Reading:
        ticks = {name: process_ticks(pid) for name, pid in self.pids.items()}
        return Reading(time.monotonic(), machine_jiffies(), pressure_us(), ticks)

    @staticmethod
    def _delta(before: Reading, now: Reading) -> Sample:
        seconds = max(now.at - before.at, 1e-6)
        machine = {
            k: (now.machine[k] - before.machine[k]) * TICK_MS / seconds for k in MACHINE_FIELDS
        }
        pressure = {
            k: (v - before.pressure[k]) / 1000 / seconds
            for k, v in now.pressure.items()
            if k in before.pressure
        }
        processes = {}
        for name, ticks in now.processes.items():
            was = before.processes.get(name)
            if ticks is not None and was is not None:
                processes[name] = (ticks - was) * TICK_MS / seconds
        return Sample(now.at, machine, pressure, processes)


def stalls(
    due: list[float], late_ms: dict[str, list[float]], *, threshold_ms: float = STALL_MS
) -> list[dict[str, Any]]:
    """Stretches of a run whose interactions were late: `due` are the scheduled send times
    (time.monotonic), `late_ms` each step's lateness per interaction (inf: never happened).
    Interactions due within a second of each other that were late by more than threshold_ms
    in any step form one stall: its first due time, when the last of them was done (inf if
    one never was), how many were late and each step's worst lateness."""
    late = sorted(i for i in range(len(due)) if any(v[i] > threshold_ms for v in late_ms.values()))
    found: list[dict[str, Any]] = []
    group: list[int] = []
    for i in late:
        if group and due[i] - due[group[-1]] > 1.0:
            found.append(_stall(due, late_ms, group))
            group = []
        group.append(i)
    if group:
        found.append(_stall(due, late_ms, group))
    return found


def _stall(due: list[float], late_ms: dict[str, list[float]], group: list[int]) -> dict[str, Any]:
    worst = {step: max(values[i] for i in group) for step, values in late_ms.items()}
    # done when its last step was; a step that never happened leaves the stall open (inf)
    end = max(due[i] + values[i] / 1000 for values in late_ms.values() for i in group)
    return {
        "start": due[group[0]],
        "end": end,
        "interactions": len(group),
        "worst_ms": worst,
    }


def during(samples: list[Sample], start: float, end: float) -> dict[str, Any]:
    """The timeline's mean over [start, end] (the intervals that overlap it): the machine's
    CPU by kind, the pressure stalls and the three busiest processes, in ms per second."""
    inside = [s for s in samples if start - INTERVAL_S < s.at <= end + INTERVAL_S]
    if not inside:
        return {}

    processes = _mean([s.processes for s in inside])
    busiest = dict(sorted(processes.items(), key=lambda kv: -kv[1])[:3])
    return {
        "machine": _mean([s.machine for s in inside]),
        "pressure": _mean([s.pressure for s in inside]),
        "busiest": busiest,
        "samples": len(inside),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    """Each key's mean over the rows (a key a row lacks counts as 0 there)."""
    keys = sorted({k for row in rows for k in row})
    return {k: sum(row.get(k, 0.0) for row in rows) / len(rows) for k in keys}


def warnings_logged(logs: Path, since: float, until: float) -> list[dict[str, Any]]:
    """The services' warnings and errors between two wall-clock times (time.time()) in their
    JSON-lines logs under `logs` (<service>.log), counted by service and message, with the
    worst figure each carried (`took_ms`, `waited_ms` + `ran_ms`)."""
    counted: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if '"level": "warning"' not in line and '"level": "error"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                    at = datetime.fromisoformat(entry["time"]).timestamp()
                except (ValueError, KeyError, TypeError):
                    continue
                if not since <= at <= until:
                    continue
                key = (path.stem, str(entry.get("message", "")))
                seen = counted.setdefault(
                    key, {"service": key[0], "message": key[1], "count": 0, "worst_ms": 0.0}
                )
                seen["count"] += 1
                figure = entry.get("took_ms") or (
                    (entry.get("waited_ms") or 0) + (entry.get("ran_ms") or 0)
                )
                seen["worst_ms"] = max(seen["worst_ms"], float(figure or 0))
    return sorted(counted.values(), key=lambda w: (-w["count"], w["service"], w["message"]))
