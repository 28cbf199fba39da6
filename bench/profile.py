"""Where each service's CPU goes: py-spy samples of every service during one run, grouped by
the library (or the project's own code) whose frame is nearest the top of each stack.

py-spy reads a process from outside (no code in the service), sampling only the moments a
thread holds the interpreter's lock (`--gil`): the time a thread spends in C code with the
lock released (SQLite's statements on a database thread) is not in the shares. A sample whose
innermost frames are the standard library (asyncio, ssl, socket) counts for the nearest
library or project frame below them, so a socket write made by the Kafka client is the
client's. The frames beneath the event loop's runner only started the loop and count for
nobody: a sample with no library frame above the loop is the loop's own ("event loop and
standard library"; before December 4 such samples of a service uvicorn started counted as
its HTTP stack).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

RATE_HZ = 50
"""Samples per second and process: enough for shares to a percent in 20 s, light enough that
the profiler's own CPU (outside the services, counted in none of them) stays small."""

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Kafka client", ("aiokafka/", "faststream/")),
    ("HTTP stack", ("starlette/", "fastapi/", "uvicorn/", "httptools/", "h11/")),
    ("SQLAlchemy", ("sqlalchemy/", "aiosqlite/", "asyncpg/", "sqlite3/")),
    ("SMTP client", ("aiosmtplib/",)),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("templates", ("jinja2/", "markupsafe/")),
    ("logging and metrics", ("logging/", "prometheus_client/", "pythonjsonlogger/")),
    (
        "router's decision",
        ("services/router/policy/", "services/router/learned/", "services/router/routing.py"),
    ),
    ("refdesk's own code", ("services/", "shared/")),
)
"""Checked in this order against each frame's file (py-spy names a file by its path under
its `sys.path` entry: "(aiokafka/conn.py:123)"), from the innermost frame out."""
OTHER = "event loop and standard library"
LOOP_RUNNERS = ("asyncio/runners.py", "uvicorn/_compat.py")
"""Frames that run the event loop. The frames beneath the innermost of them only started the
loop (uvicorn's `Server.run` is under every stack of a service uvicorn started), so they are
nobody's work: a sample with nothing above the loop is the loop's own."""


def category(frames: list[str]) -> str:
    """The category of one sampled stack (outermost frame first)."""
    for frame in reversed(frames):
        _, _, where = frame.partition(" (")
        if where.startswith(LOOP_RUNNERS):
            break
        for name, prefixes in CATEGORIES:
            if where.startswith(prefixes) or any(f"/{p}" in where for p in prefixes):
                return name
    return OTHER


def counts(collapsed: str) -> collections.Counter[str]:
    """Samples per category in py-spy's raw (collapsed stack) output: one stack and its count
    per line; a line that is not one is passed over."""
    found: collections.Counter[str] = collections.Counter()
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            found[category(stack.split(";"))] += int(n)
    return found


def shares(sampled: collections.Counter[str]) -> dict[str, float]:
    """Each category's share of the samples, largest first."""
    total = sum(sampled.values())
    return {name: n / total for name, n in sampled.most_common()} if total else {}


def available() -> str | None:
    """The py-spy executable, if installed (`pip install -e '.[bench]'`): beside this
    interpreter (a virtual environment's bin, not necessarily on PATH), or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy attached to each process for `duration` seconds; `result()` after the run."""

    def __init__(self, folder: Path, pids: dict[str, int], duration: float) -> None:
        self.folder, self.pids, self.duration = folder, pids, duration
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> bool:
        """Attach to every process; False (and nothing attached) if py-spy is missing."""
        exe = available()
        if exe is None:
            log.warning("  py-spy is not installed: the CPU profile is skipped")
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self.procs[name] = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--format",
                    "raw",
                    "--gil",
                    "--nonblocking",
                    "--rate",
                    str(RATE_HZ),
                    "--duration",
                    str(max(1, round(self.duration))),
                    "--pid",
                    str(pid),
                    "--output",
                    str(self.folder / f"{name}.txt"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        return True

    async def result(self) -> dict[str, dict[str, Any]]:
        """Per service: samples and category shares (a service py-spy could not read is left
        out, with its error logged)."""
        out: dict[str, dict[str, Any]] = {}
        for name, proc in self.procs.items():
            try:
                _, err = await asyncio.to_thread(proc.communicate, None, self.duration + 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                err = b"timed out"
            path = self.folder / f"{name}.txt"
            text = path.read_text() if path.exists() else ""
            sampled = counts(text)
            if not sampled:
                log.warning("  py-spy read nothing from %s: %s", name, err.decode()[-300:])
                continue
            out[name] = {"samples": sum(sampled.values()), "shares": shares(sampled)}
        return out

    def stop(self) -> None:
        """Kill any profiler still attached (after a failed run)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
