"""`python -m bench.stats_bench`: a generated term (20,000 conversations over 16 weeks) applied
to the status service's database, then every grouping of /reports/summary timed over HTTP on
SQLite and PostgreSQL against the 300 ms p99 target.

The events reach the database either through the status handlers in batches of 500 per
transaction, as the consumer applies a poll batch (default), or with --through-kafka through
the real topics: published to a local broker, read by the status service's own consumer.
Prints a Markdown table (docs/statistics.md keeps the latest) and writes the figures as JSON.
With --screenshot PATH the reports page of the SQLite run is saved as a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.machine import loadavg, machine
from bench.stats_traffic import Term, generate
from bench.system import Postgres
from refdesk_cli.kafka_local import LocalKafka, free_port
from services.status.app import create_app
from services.status.consumers import register
from services.status.handlers import Assigning, apply
from services.status.models import PROCESSED
from services.status.resources import Resources
from services.status.settings import StatusSettings
from services.status.staff import read_seed, seed_staff
from services.status.stats import queries
from services.status.stats.models import DeskStat
from shared.db import create_engine, migrate, session_factory
from shared.events import new_event
from shared.kafka import build_broker, ensure_topics, publish_in_order

log = logging.getLogger("bench.stats")
GROUPS = tuple(queries.GROUP_KEYS)
TARGET_MS = 300.0
BATCH = 500
BENCH_DB = "refdesk_stats_bench"


@dataclass
class Backend:
    name: str
    url: str


class NoPublisher:
    """The reports publish nothing; a tag edit is not part of the benchmark."""

    async def __call__(self, topic: str, data: Any, *, key: str) -> None:
        raise RuntimeError("the benchmark publishes nothing")


async def fresh_postgres(server_url: str) -> str:
    """A database of the benchmark's own on the server (dropped and created again)."""
    Postgres(server_url).execute(
        f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)', f'CREATE DATABASE "{BENCH_DB}"'
    )
    return make_url(server_url).set(database=BENCH_DB).render_as_string(hide_password=False)


async def prepare(url: str) -> async_sessionmaker[AsyncSession]:
    """Migrate and seed the staff."""
    engine = create_engine(url)
    await migrate(engine, "status")
    sessions = session_factory(engine)
    async with sessions() as session:
        seed = read_seed(StatusSettings().seed_file)  # type: ignore[arg-type]
        await seed_staff(session=session, entries=seed, with_tokens=True, now=datetime.now(UTC))
        await session.commit()
    return sessions


async def through_handlers(sessions: async_sessionmaker[AsyncSession], term: Term) -> float:
    """Apply every event as the consumer does (a batch per transaction); seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(term.events), BATCH):
        async with sessions() as session:
            for n, (_topic, _at, data) in enumerate(term.events[start : start + BATCH], start):
                await apply(session, event_id=f"bench-{n}", data=data, assigning=Assigning())
            await session.commit()
        if start // BATCH % 40 == 0:
            log.info("applied %d / %d", start + BATCH, len(term.events))
    return time.perf_counter() - started


async def through_kafka(
    sessions: async_sessionmaker[AsyncSession], term: Term, url: str, root: Path
) -> tuple[float, float]:
    """Publish the term to a local broker's topics, then let the status consumer read them;
    seconds to publish and seconds until the consumer had applied every event."""
    kafka = LocalKafka(data_dir=root / f"kafka-{time.time_ns()}", port=free_port())
    kafka.start()
    try:
        await asyncio.to_thread(kafka.wait_ready)  # it runs its own event loop
        settings = StatusSettings(
            env="development",
            kafka_bootstrap=kafka.bootstrap,
            database_url=url,
            run_dir=root,
            topic_partitions=3,
        )
        await ensure_topics(settings)
        producer = build_broker(settings, client_id="bench-stats")
        await producer.start()
        started = time.perf_counter()
        for start in range(0, len(term.events), 2000):
            chunk = term.events[start : start + 2000]
            records = [
                (topic, new_event(data, source="bench/stats"), vars(data)["conversation_id"])
                for topic, _at, data in chunk
            ]
            await publish_in_order(producer, records)
        published = time.perf_counter() - started
        await producer.stop()
        log.info("published %d events in %.1f s", len(term.events), published)
        consumer = build_broker(settings, client_id="refdesk-status")
        res = Resources(settings=settings, sessions=sessions, publisher=NoPublisher())
        register(consumer, res)
        started = time.perf_counter()
        await consumer.start()
        try:
            while True:
                async with sessions() as session:
                    done = await session.scalar(select(func.count()).select_from(PROCESSED))
                if done is not None and done >= len(term.events):
                    break
                log.info("consumer applied %s / %d", done, len(term.events))
                await asyncio.sleep(2)
            consumed = time.perf_counter() - started
        finally:
            await consumer.stop()
        return published, consumed
    finally:
        kafka.stop()


async def apply_cost(term: Term, events: int, root: Path) -> dict[str, float]:
    """What the statistics add to the consumer's work: the first `events` applied through the
    handlers into two fresh SQLite databases, one with the statistics projection and one
    without, a batch to each in turn so both see the same machine; CPU ms per event."""
    from services.status import stats

    real = stats.observe

    async def nothing(_session: AsyncSession, _data: Any) -> None:
        return None

    targets = {}
    for name in ("with", "without"):
        targets[name] = await prepare(f"sqlite+aiosqlite:///{root / f'cost-{name}.db'}")
    cpu = {"with": 0.0, "without": 0.0}
    wall = {"with": 0.0, "without": 0.0}
    try:
        for start in range(0, events, BATCH):
            for name, sessions in targets.items():
                stats.observe = real if name == "with" else nothing  # type: ignore[assignment]
                began, began_cpu = time.perf_counter(), time.process_time()
                async with sessions() as session:
                    for n, (_t, _at, data) in enumerate(term.events[start : start + BATCH], start):
                        await apply(session, event_id=f"c-{n}", data=data, assigning=Assigning())
                    await session.commit()
                wall[name] += time.perf_counter() - began
                cpu[name] += time.process_time() - began_cpu
    finally:
        stats.observe = real
    return {
        "events": events,
        **{f"cpu_ms_per_event_{k}": 1000 * v / events for k, v in cpu.items()},
        **{f"events_per_s_{k}": events / v for k, v in wall.items()},
    }


async def copy_rows(root: Path, target: async_sessionmaker[AsyncSession]) -> float:
    """The SQLite run's statistics rows into PostgreSQL as they are; seconds taken."""
    from services.status.stats.models import DeskStatTransfer

    source = create_engine(f"sqlite+aiosqlite:///{root / 'status.db'}")
    started = time.perf_counter()
    try:
        for table in (DeskStat.__table__, DeskStatTransfer.__table__):
            assert isinstance(table, Table)
            async with source.connect() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(select(table))]
            async with target() as session:
                for start in range(0, len(rows), 2000):
                    await session.execute(table.insert(), rows[start : start + 2000])
                await session.commit()
            log.info("copied %d rows of %s", len(rows), table.name)
    finally:
        await source.dispose()
    return time.perf_counter() - started


async def same_as_sqlite(
    root: Path, target: async_sessionmaker[AsyncSession], term: Term
) -> list[str]:
    """Every grouping over the term from both backends (percentile_cont against Python's
    interpolation): the figures that differ by more than rounding."""
    from services.status.stats import report

    source = create_engine(f"sqlite+aiosqlite:///{root / 'status.db'}")
    lite = session_factory(source)
    viewer = report.Viewer(admin=True)
    differences = []
    try:
        for group in GROUPS:
            found = []
            for factory in (lite, target):
                async with factory() as session:
                    found.append(
                        await report.summary(
                            session,
                            frm=term.first_day,
                            to=term.last_day,
                            group_by=group,
                            viewer=viewer,
                            department_name=str,
                        )
                    )
            a, b = found
            rows_a = {str(g["key"]): g for g in [*a["groups"], {"key": "total", **a["totals"]}]}
            rows_b = {str(g["key"]): g for g in [*b["groups"], {"key": "total", **b["totals"]}]}
            for key in sorted(set(rows_a) | set(rows_b)):
                for name, value in rows_a.get(key, {}).items():
                    other = rows_b.get(key, {}).get(name)
                    numbers = isinstance(value, float) and isinstance(other, float)
                    if value != other and not (numbers and abs(value - other) <= 0.11):
                        differences.append(f"{group}/{key}/{name}: {value} != {other}")
        log.info("SQLite and PostgreSQL differ in %d figures", len(differences))
    finally:
        await source.dispose()
    return differences


@contextlib.asynccontextmanager
async def serving(sessions: async_sessionmaker[AsyncSession], now: datetime) -> AsyncIterator[str]:
    """The status app on a free port (no broker: only the reports are asked for)."""
    settings = StatusSettings(env="development")
    app = create_app(settings)
    app.state.resources = Resources(
        settings=settings, sessions=sessions, publisher=NoPublisher(), clock=lambda: now
    )
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _p99(ms: list[float]) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank


def summarise(timings: tuple[list[float], list[float]]) -> dict[str, float]:
    """p50, p99 and max wall milliseconds, and p50 and p99 CPU milliseconds."""
    wall, cpu = timings
    return {
        "p50": statistics.median(wall),
        "p99": _p99(wall),
        "max": max(wall),
        "cpu_p50": statistics.median(cpu),
        "cpu_p99": _p99(cpu),
        "n": len(wall),
    }


async def timed(
    client: httpx.AsyncClient, path: str, params: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    """Milliseconds per request, wall clock and this process's CPU (server and client share
    the process: on a busy machine the CPU time is what the request would take on an idle
    core), after three warm-up requests."""
    headers = {"Authorization": "Bearer dev-lokafor-token"}
    for _ in range(3):
        (await client.get(path, params=params, headers=headers)).raise_for_status()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = await client.get(path, params=params, headers=headers)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        response.raise_for_status()
    return wall, cpu


async def measure(base: str, term: Term, runs: int) -> dict[str, Any]:
    """Every grouping over the whole term and over its last four weeks, the CSV, the annual
    summary and the page."""
    ranges = {
        "term": (term.first_day, term.last_day),
        "4 weeks": (term.last_day - timedelta(days=27), term.last_day),
    }
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for label, (first, last) in ranges.items():
            span = {"from": first.isoformat(), "to": last.isoformat()}
            for group in GROUPS:
                ms = await timed(client, "/reports/summary", {**span, "group_by": group}, runs)
                results[f"{label} / {group}"] = summarise(ms)
                log.info("%s / %s: %s", label, group, results[f"{label} / {group}"])
        span = {"from": term.first_day.isoformat(), "to": term.last_day.isoformat()}
        csv_ms = await timed(client, "/reports/summary.csv", {**span, "group_by": "week"}, runs)
        results["term / week as CSV"] = summarise(csv_ms)
        annual = await timed(client, "/reports/annual", {"fiscal_year": "2026"}, runs)
        results["annual 2026"] = summarise(annual)
        login = await client.post(
            "/dashboard/login", data={"staff_id": "lokafor", "token": "dev-lokafor-token"}
        )
        client.cookies = login.cookies
        page = await timed(client, "/dashboard/reports", span, max(10, runs // 5))
        results["reports page (term)"] = summarise(page)
    return results


async def percentiles_in_python(base: str, term: Term, runs: int) -> dict[str, Any]:
    """PostgreSQL with its percentile_cont turned off (the SQLite path): for comparison."""
    original = queries.in_sql
    queries.in_sql = lambda _session: False  # type: ignore[assignment]
    try:
        span = {"from": term.first_day.isoformat(), "to": term.last_day.isoformat()}
        out = {}
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for group in GROUPS:
                ms = await timed(client, "/reports/summary", {**span, "group_by": group}, runs)
                out[f"term / {group}"] = summarise(ms)
        return out
    finally:
        queries.in_sql = original


async def screenshot(base: str, term: Term, path: Path) -> None:
    """The reports page over the term, signed in as a supervisor, as a PNG."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"{base}/dashboard")
            await page.fill("#staff_id", "lokafor")
            await page.fill("#token", "dev-lokafor-token")
            await page.click("#sign-in button[type=submit]")
            query = f"?from={term.first_day.isoformat()}&to={term.last_day.isoformat()}"
            await page.goto(f"{base}/dashboard/reports{query}")
            await page.screenshot(path=str(path), full_page=True)
        finally:
            await browser.close()


async def run_backend(
    backend: Backend, term: Term, args: argparse.Namespace, root: Path
) -> dict[str, Any]:
    """Load the term into one backend and time the reports."""
    url = backend.url
    out: dict[str, Any] = {"backend": backend.name, "events": len(term.events)}
    if args.reuse:  # measure again what an earlier run loaded
        if backend.name == "postgres":
            url = make_url(url).set(database=BENCH_DB).render_as_string(hide_password=False)
        sessions = session_factory(create_engine(url))
        out.update(path="reused")
    elif backend.name == "postgres" and args.postgres_from_sqlite:
        url = await fresh_postgres(url)
        sessions = await prepare(url)
        out.update(path="copied from the SQLite run", copy_s=await copy_rows(root, sessions))
        out["differences_from_sqlite"] = await same_as_sqlite(root, sessions, term)
    else:
        if backend.name == "postgres":
            url = await fresh_postgres(url)
        sessions = await prepare(url)
        if args.through_kafka:
            published, consumed = await through_kafka(sessions, term, url, root)
            out.update(path="kafka", publish_s=published, apply_s=consumed)
        else:
            out.update(path="handlers", apply_s=await through_handlers(sessions, term))
        out["events_per_s"] = len(term.events) / out["apply_s"]
        log.info("%s: %.0f events/s", backend.name, out["events_per_s"])
    async with sessions() as session:
        out["conversations"] = await session.scalar(
            select(func.count()).select_from(DeskStat).where(DeskStat.received_by.is_not(None))
        )
        if backend.name == "postgres":
            await session.execute(text("ANALYZE"))
            await session.commit()
    if args.load_only:
        return out
    now = datetime.combine(term.last_day + timedelta(days=1), clock_time(12), tzinfo=UTC)
    async with serving(sessions, now) as base:
        out["load_before"] = loadavg()
        out["timings"] = await measure(base, term, args.runs)
        if backend.name == "postgres":
            out["python_percentiles"] = await percentiles_in_python(base, term, args.runs // 2)
        if args.screenshot and backend.name == "sqlite":
            await screenshot(base, term, args.screenshot)
        out["load_after"] = loadavg()
    return out


def markdown(results: list[dict[str, Any]]) -> str:
    """The p99 table for docs/statistics.md."""
    names = sorted({k for r in results for k in r["timings"]}, key=_order)
    head = "| request | " + " | ".join(
        f"{r['backend']} wall p50 / p99 ms | {r['backend']} CPU p50 / p99 ms" for r in results
    )
    lines = [head + " |", "|---|" + "---:|---:|" * len(results)]
    for name in names:
        cells = []
        for r in results:
            t = r["timings"].get(name)
            if t is None:
                cells += ["", ""]
                continue
            cells.append(f"{t['p50']:.0f} / {t['p99']:.0f}")
            cells.append(f"{t['cpu_p50']:.0f} / {t['cpu_p99']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _order(name: str) -> tuple[int, int, str]:
    scope = 0 if name.startswith("term /") else 1 if name.startswith("4 weeks") else 2
    group = name.split(" / ")[-1]
    return scope, GROUPS.index(group) if group in GROUPS else 99, name


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.stats_bench", description=__doc__)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=100, help="timed requests per grouping")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("REFDESK_BENCH_POSTGRES_URL")
        or os.environ.get("REFDESK_TEST_POSTGRES_URL"),
        help="a server the benchmark may create its own database on",
    )
    parser.add_argument("--through-kafka", action="store_true", help="publish to a local broker")
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("run/stats_bench.json"))
    parser.add_argument(
        "--db-dir",
        type=Path,
        default=None,
        help="keep the SQLite database here (default: a temp dir)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="measure the databases an earlier --db-dir run loaded"
    )
    parser.add_argument("--load-only", action="store_true", help="load, do not measure")
    parser.add_argument(
        "--postgres-from-sqlite",
        action="store_true",
        help="fill PostgreSQL with the rows of the SQLite run in --db-dir instead of applying",
    )
    parser.add_argument(
        "--apply-cost",
        type=int,
        default=0,
        metavar="N",
        help="only compare applying N events with and without the statistics (SQLite)",
    )
    return parser.parse_args()


async def main() -> None:
    args = parse()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.perf_counter()
    term = generate(args.conversations)
    log.info("generated %d events in %.0f s", len(term.events), time.perf_counter() - started)
    backends = []
    if args.apply_cost:
        with tempfile.TemporaryDirectory(prefix="stats-cost-") as tmp:
            cost = await apply_cost(term, args.apply_cost, Path(tmp))
        print(json.dumps(cost, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="stats-bench-") as tmp:
        root = args.db_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.backend in ("sqlite", "both"):
            backends.append(Backend("sqlite", f"sqlite+aiosqlite:///{root / 'status.db'}"))
        if args.backend in ("postgres", "both"):
            if not args.postgres_url:
                raise SystemExit("set REFDESK_BENCH_POSTGRES_URL (or --postgres-url)")
            backends.append(Backend("postgres", args.postgres_url))
        results = [await run_backend(b, term, args, root) for b in backends]
    report = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "conversations": args.conversations,
        "target_ms": TARGET_MS,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    if args.load_only:
        print(json.dumps(results, indent=2))
        return
    print(markdown(results))
    for r in results:
        summaries = [t for name, t in r["timings"].items() if " / " in name]
        worst = max(t["p99"] for t in summaries)
        worst_cpu = max(t["cpu_p99"] for t in summaries)
        print(
            f"{r['backend']}: {r['conversations']} conversations ({r['path']}); summary p99 "
            f"{worst:.0f} ms wall, {worst_cpu:.0f} ms CPU against {TARGET_MS:.0f} ms; "
            f"load {r['load_before']} -> {r['load_after']}"
        )


if __name__ == "__main__":
    asyncio.run(main())
