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
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.machine import loadavg, machine
from bench.stats_traffic import Term, generate
from refdesk_cli.kafka_local import LocalKafka, free_port
from services.status.app import create_app
from services.status.consumers import register
from services.status.deps import Resources
from services.status.handlers import Assigning, apply
from services.status.models import PROCESSED
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
    import asyncpg

    url = make_url(server_url)
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port or 5432,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await conn.close()
    return url.set(database=BENCH_DB).render_as_string(hide_password=False)


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
        kafka.wait_ready()
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


def summarise(ms: list[float]) -> dict[str, float]:
    """p50, p99 and max of a list of milliseconds."""
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1], "n": len(ms)}


async def timed(
    client: httpx.AsyncClient, path: str, params: dict[str, str], runs: int
) -> list[float]:
    """Milliseconds per request, after three warm-up requests."""
    headers = {"Authorization": "Bearer dev-lokafor-token"}
    for _ in range(3):
        (await client.get(path, params=params, headers=headers)).raise_for_status()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        out.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return out


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
    head = "| request | " + " | ".join(f"{r['backend']} p50 / p99 ms" for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    for name in names:
        cells = []
        for r in results:
            t = r["timings"].get(name)
            cells.append(f"{t['p50']:.0f} / {t['p99']:.0f}" if t else "")
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
    return parser.parse_args()


async def main() -> None:
    args = parse()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started = time.perf_counter()
    term = generate(args.conversations)
    log.info("generated %d events in %.0f s", len(term.events), time.perf_counter() - started)
    backends = []
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
        worst = max(t["p99"] for name, t in r["timings"].items() if " / " in name)
        print(
            f"{r['backend']}: {r['conversations']} conversations, {r['events']} events via "
            f"{r['path']} at {r.get('events_per_s', 0):.0f} events/s; worst p99 {worst:.0f} ms "
            f"({'met' if worst <= TARGET_MS else 'missed'} against {TARGET_MS:.0f} ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
