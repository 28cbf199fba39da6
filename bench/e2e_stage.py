"""Stage 3: webhook accepted -> routing decision -> email accepted by the SMTP server.

Every step is stamped with CLOCK_MONOTONIC (one clock for all processes on Linux): the
generator's scheduled send time and answer time, the decision's arrival at a consumer in
this process, and the mail sink's receive time (a thread of this process).
"""

from __future__ import annotations

import asyncio
import binascii
import email
import email.policy
import json
import logging
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.console_stage import KEEP_ALIVE, staff_tokens
from bench.drive import OK, loadgen, percentile
from bench.machine import RssPeak, cpu_seconds
from bench.payloads import message_sid
from bench.profile import Profiler
from bench.system import System
from bench.timeline import Sample, Timeline, during, stalls, warnings_logged
from shared.events import derived_id
from shared.settings import CommonSettings
from shared.topics import ROUTING

log = logging.getLogger("bench")
TCC = re.compile(rb"\b(\d{7})\b")


class Decisions:
    """Reads refdesk.routing from its current end, noting when each decision arrives."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.arrived: dict[str, float] = {}
        self.kafka_ts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Assign every partition at its end offset and start reading."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        count = CommonSettings().topic_partitions  # as the services created the topic
        parts = [TopicPartition(ROUTING.name, p) for p in range(count)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    iid = json.loads(record.value)["data"]["interaction_id"]
                    self.arrived.setdefault(iid, now)
                    self.kafka_ts.setdefault(iid, record.timestamp)

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()


def _tccs(raw: bytes) -> list[int]:
    """The TCC IDs in an email, each once: read off its bytes with quoted-printable undone
    (the notifier's parts are), else off its parsed text/plain part. Parsing every email took
    this process, which also runs the sink, about a fifth of a core while a backlog drained:
    CPU the services under test did not get."""
    found = TCC.findall(binascii.a2b_qp(raw))
    if not found:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(("plain",))
        found = TCC.findall(body.get_content().encode() if body is not None else raw)
    return sorted({int(tcc) for tcc in found})


def _received(system: System) -> list[tuple[float, list[int]]]:
    """(receive time, TCC IDs) of every email at the sink, each email parsed once: parsing all
    of them on every poll grew with the square of the run and starved the sink, a thread of
    this process, of the GIL."""
    with system.sink.lock:
        fresh = system.sink.received[len(system.sink.parsed) :]
    parsed = [(stamp, _tccs(raw)) for stamp, raw in fresh]
    with system.sink.lock:
        system.sink.parsed.extend(parsed)
        return list(system.sink.parsed)


def mail_tccs(system: System) -> list[int]:
    """The TCC ID of every email at the sink, once per email (repeats are duplicates)."""
    return [tcc for _stamp, tccs in _received(system) for tcc in tccs]


def mail_times(system: System) -> dict[int, float]:
    """TCC ID -> first receive time of the circulation email that carries it."""
    out: dict[int, float] = {}
    for stamp, tccs in _received(system):
        for tcc in tccs:
            out.setdefault(tcc, stamp)
    return out


async def one_rate(
    root: Path,
    system: System,
    decisions: Decisions,
    port: int,
    pids: dict[str, int],
    *,
    rate: float,
    duration: float,
    tag: int,
    tcc_base: int,
    settle_s: float,
) -> dict[str, Any]:
    """Offer lost-book texts at a fixed rate and follow each to its email."""
    spec = {
        "port": port,
        "mode": "open",
        "rate": rate,
        "duration": duration,
        "kind": "lostbook",
        "tag": tag,
        "tcc_base": tcc_base,
        "phone_base": "+1682555",
    }
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    db0 = system.database_cpu_s()
    assert system.kafka.process is not None
    timeline = Timeline({**pids, "broker": system.kafka.process.pid, "bench": os.getpid()})
    timeline.start()
    res = await asyncio.to_thread(loadgen, root, spec)
    n = len(res["sched"])
    iids = [derived_id("sms", message_sid(tag, i)) for i in range(n)]
    deadline = time.monotonic() + settle_s
    mails: dict[int, float] = {}
    while time.monotonic() < deadline:
        mails = mail_times(system)
        if all(tcc_base + i in mails for i in range(n)):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # the status service and the publisher finish the last batches
    samples = timeline.stop()
    cpu_ms = {name: (cpu_seconds(pid) - cpu0[name]) / max(n, 1) * 1e3 for name, pid in pids.items()}
    db1 = system.database_cpu_s()
    acc, dec, mail = [], [], []
    for i in range(n):
        due, end, code = res["sched"][i], res["end"][i], res["status"][i]
        acc.append((end - due) * 1e3 if code in OK and end == end else math.inf)
        arrived = decisions.arrived.get(iids[i])
        dec.append((arrived - due) * 1e3 if arrived else math.inf)
        got = mails.get(tcc_base + i)
        mail.append((got - due) * 1e3 if got else math.inf)
    out: dict[str, Any] = {
        "offered": rate,
        "requests": n,
        "missing_decisions": sum(1 for v in dec if v == math.inf),
        "missing_emails": sum(1 for v in mail if v == math.inf),
        "cpu_ms": cpu_ms,
    }
    if db0 is not None and db1 is not None:
        out["database_cpu_ms"] = (db1 - db0) / max(n, 1) * 1e3
    for name, values in (("accepted", acc), ("decision", dec), ("email", mail)):
        out[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99)}
    out["stalls"] = explain_stalls(
        system, res["sched"], {"accepted": acc, "decision": dec, "email": mail}, samples
    )
    for stall in out["stalls"]:
        log.info("  stall: %s", stall)
    log.info(
        "  %.0f/s: accepted p50 %.0f ms; decision p50 %.0f ms; email p50 %.0f / p99 %.0f ms "
        "(%d of %d emails missing); CPU ms per interaction %s (sum %.2f)",
        rate,
        out["accepted"]["p50"],
        out["decision"]["p50"],
        out["email"]["p50"],
        out["email"]["p99"],
        out["missing_emails"],
        n,
        {name: round(v, 2) for name, v in cpu_ms.items()},
        sum(cpu_ms.values()),
    )
    if "database_cpu_ms" in out:
        log.info("  the database server: %.2f ms of CPU per interaction", out["database_cpu_ms"])
    return out


def explain_stalls(
    system: System,
    due: list[float],
    late_ms: dict[str, list[float]],
    samples: list[Sample],
) -> list[dict[str, Any]]:
    """Each stall of a run (`bench.timeline.stalls`) with when it began (seconds into the
    run), how long it lasted, the machine and the busiest processes over it, and the
    warnings the services logged meanwhile."""
    if not due:
        return []
    wall = time.time() - time.monotonic()  # monotonic -> wall clock, for the services' logs
    found = []
    for stall in stalls(due, late_ms):
        end = stall["end"] if math.isfinite(stall["end"]) else time.monotonic()
        found.append(
            {
                "at_s": round(stall["start"] - due[0], 1),
                "length_s": round(end - stall["start"], 2),
                "interactions": stall["interactions"],
                "worst_ms": stall["worst_ms"],
                "timeline": during(samples, stall["start"], end),
                "warnings": warnings_logged(
                    system.root / "stack" / "logs", stall["start"] + wall - 1, end + wall + 1
                ),
            }
        )
    return found


PROFILED_RATE = 100
"""Interactions/s of the profiled run: the rate the CPU target is read at."""


async def profiled_rate(
    root: Path,
    system: System,
    decisions: Decisions,
    port: int,
    pids: dict[str, int],
    *,
    duration: float,
    settle_s: float,
) -> dict[str, Any] | None:
    """PROFILED_RATE interactions/s with py-spy sampling every service: each one's CPU per
    interaction in this run and its shares by library (None if py-spy is not installed). A
    run of its own: the profiler's reads slow the services a little, so its latencies are
    not reported."""
    profiler = Profiler(root / "profile", pids, duration)
    if not profiler.start():
        return None
    try:
        run = await one_rate(
            root,
            system,
            decisions,
            port,
            pids,
            rate=PROFILED_RATE,
            duration=duration,
            tag=0xE30,
            tcc_base=3_700_000,
            settle_s=settle_s,
        )
        sampled = await profiler.result()
    finally:
        profiler.stop()
    for name, found in sampled.items():
        log.info(
            "  %s, %.2f ms per interaction: %s",
            name,
            run["cpu_ms"][name],
            ", ".join(f"{what} {share:.0%}" for what, share in found["shares"].items()),
        )
    return {
        "rate": PROFILED_RATE,
        "duration": duration,
        "cpu_ms": run["cpu_ms"],
        "services": sampled,
    }


CONSOLES = 20
"""Signed-in staff with the console open (its live stream and the page's fetches) during the
last 100/s run."""


QUIET_S, BUSY_S, BURST = 0.150, 1.0, 8
"""The console page's live-update rule (services/status/static/console/live.js)."""
BROWSER_CONNECTIONS = 5
"""A browser's six connections to one host over HTTP/1.1, less the live stream's."""


class Page:
    """What one open console page (its unfiltered queue) asks of the status service for the
    live events it reads: an event that carries its row costs nothing more; the conversations
    changed within a window without one are one row fetch each, and more than BURST of them
    one queue reload, after which the next window is BUSY_S long (`burst=None` and rows
    ignored: a row fetch per changed conversation, the page before both)."""

    def __init__(self, client: httpx.AsyncClient, fetches: Fetches, burst: int | None) -> None:
        self.client, self.fetches, self.burst = client, fetches, burst
        self.pending: dict[str, bool] = {}  # conversation id -> whether its row came along
        self.window = QUIET_S
        self.timer: asyncio.TimerHandle | None = None
        self.slots = asyncio.Semaphore(BROWSER_CONNECTIONS)
        self.tasks: set[asyncio.Task[None]] = set()

    def changed(self, conversation_id: str, row_came: bool) -> None:
        self.pending[conversation_id] = row_came and self.burst is not None
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.window, self.flush)

    def flush(self) -> None:
        self.timer = None
        ids = sorted(cid for cid, row_came in self.pending.items() if not row_came)
        self.pending = {}
        if self.burst is not None and len(ids) > self.burst:
            self.window = BUSY_S
            urls = ["/dashboard/fragments/queue"]
        else:
            self.window = QUIET_S
            urls = [f"/dashboard/fragments/row/{cid}" for cid in ids]
        for url in urls:
            task = asyncio.create_task(self.fetch(url))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def fetch(self, url: str) -> None:
        asked = time.monotonic()
        async with self.slots:
            try:
                answer = await self.client.get(url)
                ok = answer.status_code in (200, 204)
            except httpx.HTTPError:
                ok = False
        self.fetches.done(url, time.monotonic() - asked, ok)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for task in self.tasks:
            task.cancel()


class Fetches:
    """The pages' fetches: how many of each kind, how long each took from the moment the
    page decided on it (its wait for a free connection included), how many failed."""

    def __init__(self) -> None:
        self.rows = self.queues = self.failed = 0
        self.seconds: list[float] = []

    def done(self, url: str, seconds: float, ok: bool) -> None:
        if "/fragments/queue" in url:
            self.queues += 1
        else:
            self.rows += 1
        self.failed += not ok
        self.seconds.append(seconds)

    def summary(self, unfinished: int) -> dict[str, Any]:
        return {
            "row_fetches": self.rows,
            "queue_reloads": self.queues,
            "failed": self.failed,
            "unfinished": unfinished,
            "p50_ms": percentile(self.seconds, 50) * 1e3,
            "p99_ms": percentile(self.seconds, 99) * 1e3,
        }


class Consoles:
    """Staff with the desk console open: each holds the live stream (`/console/events`), reads
    every event and fetches what the page fetches for it (`Page`), for as long as the run
    lasts."""

    def __init__(self, status_url: str, n: int, *, burst: int | None = BURST) -> None:
        self.status_url = status_url
        self.n = n
        self.burst = burst
        self.events = 0
        self.connected = 0
        self.fetches = Fetches()
        self._pages: list[Page] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Sign in `n` supervisors (they see every department) and open their streams."""
        async with httpx.AsyncClient(base_url=self.status_url, timeout=30) as status:
            tokens = await staff_tokens(status, self.n, f"e2e{int(time.time()) % 100_000}")
        self._tasks = [asyncio.create_task(self._listen(h)) for h in tokens]
        deadline = time.monotonic() + 30
        while self.connected < self.n and time.monotonic() < deadline:
            await asyncio.sleep(0.1)

    async def _listen(self, headers: dict[str, str]) -> None:
        async with (
            httpx.AsyncClient(timeout=None) as client,
            httpx.AsyncClient(
                base_url=self.status_url, headers=headers, timeout=30, limits=KEEP_ALIVE
            ) as fetching,
            client.stream("GET", f"{self.status_url}/console/events", headers=headers) as stream,
        ):
            stream.raise_for_status()
            page = Page(fetching, self.fetches, self.burst)
            self._pages.append(page)
            self.connected += 1
            kind = ""
            try:
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events += 1
                        # an event that carries its row costs the page nothing more: only
                        # the others are decoded here, so the bench spends little on them
                        if kind == "conversation" and (self.burst is None or '"row":' not in line):
                            data = json.loads(line[5:])
                            page.changed(data["conversation_id"], "row" in data)
            finally:
                page.close()

    def summary(self) -> dict[str, Any]:
        """What the pages fetched (fetches still waiting when the run ended: `unfinished`)."""
        return self.fetches.summary(sum(len(page.tasks) for page in self._pages))

    async def stop(self) -> None:
        """Close every stream."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def run(
    root: Path, system: System, ports: dict[str, int], pids: dict[str, int], *, quick: bool
) -> dict[str, Any]:
    """A warm-up, then 10, 50, 100 and 150 interactions/s (100/s for 60 s), with each service's
    CPU per interaction and peak VmRSS during the runs; then 100/s again with 20 staff holding
    the console's live stream open; then 100/s for 20 s with py-spy attached to each service
    (where its CPU goes: `bench.profile`)."""
    durations = (
        {10: 6.0, 50: 6.0, 100: 10.0, 150: 6.0}
        if quick
        else {10: 15.0, 50: 15.0, 100: 60.0, 150: 15.0}
    )
    settle = 30.0 if quick else 60.0

    async def go() -> dict[str, Any]:
        decisions = Decisions(system.kafka.bootstrap)
        await decisions.start()
        try:
            await one_rate(
                root,
                system,
                decisions,
                ports["ingest"],
                pids,
                rate=5,
                duration=2,
                tag=0xE00,
                tcc_base=5_000_000,
                settle_s=settle,
            )
            runs = []
            with RssPeak(pids) as rss:
                for k, (rate, duration) in enumerate(durations.items()):
                    runs.append(
                        await one_rate(
                            root,
                            system,
                            decisions,
                            ports["ingest"],
                            pids,
                            rate=rate,
                            duration=duration,
                            tag=0xE10 + k,
                            tcc_base=3_000_000 + k * 100_000,
                            settle_s=settle,
                        )
                    )
                consoles = Consoles(f"http://127.0.0.1:{ports['status']}", CONSOLES)
                await consoles.start()
                try:
                    live = await one_rate(
                        root,
                        system,
                        decisions,
                        ports["ingest"],
                        pids,
                        rate=100,
                        duration=durations[100],
                        tag=0xE20,
                        tcc_base=3_500_000,  # apart from the runs above and the catch-up stage
                        settle_s=settle,
                    )
                    pages = consoles.summary()
                finally:
                    await consoles.stop()
                live["consoles"] = {
                    "staff": consoles.n,
                    "connected": consoles.connected,
                    "events": consoles.events,
                    "pages": pages,
                }
                log.info(
                    "  with %d consoles open (%d connected): %d live events delivered; "
                    "the pages fetched %s",
                    consoles.n,
                    consoles.connected,
                    consoles.events,
                    pages,
                )
            profiled = await profiled_rate(
                root,
                system,
                decisions,
                ports["ingest"],
                pids,
                duration=6.0 if quick else 20.0,
                settle_s=settle,
            )
            return {
                "runs": runs,
                "with_consoles": live,
                "rss_peak": rss.peak,
                "profile": profiled,
            }
        finally:
            await decisions.stop()

    import uvloop

    result: dict[str, Any] = uvloop.run(go())
    return result
