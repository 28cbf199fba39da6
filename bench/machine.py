"""What the numbers were measured on, and per-process CPU time and resident size from /proc."""

from __future__ import annotations

import os
import platform
import threading
import time
from importlib.metadata import version
from pathlib import Path

from refdesk_cli.kafka_local import KAFKA_VERSION

TICK = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "faststream",
    "aiokafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "psycopg",
    "aiosmtpd",
)


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, kernel and load average."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "load": loadavg(),
    }


def loadavg() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def versions() -> dict[str, str]:
    """Python, Kafka and the libraries on the measured paths."""
    out = {"python": platform.python_version(), "kafka": KAFKA_VERSION}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "absent"
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (from /proc/<pid>/stat), in clock ticks; OSError once the
    process is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    return cpu_ticks(pid) / TICK


def named_cpu_seconds(name: str) -> float:
    """utime + stime of every process whose command name is `name`, in seconds: a database
    server's postmaster, backends and background workers. A process that ends between two
    readings takes its CPU with it (the services' pooled connections keep theirs open)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                ticks += cpu_ticks(int(entry.name))
        except OSError:
            continue
    return ticks / TICK


def rss_mib(pid: int) -> float:
    """VmRSS of a process in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssPeak:
    """Samples VmRSS of some processes every 0.25 s in a thread, keeping each one's maximum."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))
            time.sleep(0.25)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_mib(pid))
