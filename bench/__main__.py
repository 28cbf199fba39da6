"""`python -m bench [--quick] [--only STAGE]`: start a broker, a mail sink and the services on
this machine, measure ingest, router, end to end and memory (or only the chosen stages), and add
the run to docs/performance.md."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import catchup_stage, console_stage, e2e_stage, ingest_stage, report, router_stage
from bench.machine import cpu_seconds, loadavg, machine, rss_mib, versions
from bench.system import start_system

log = logging.getLogger("bench")
FIVE = ("ingest", "router", "notifier", "status", "publisher")
STAGES = ("e2e", "catchup", "ingest", "router", "console")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def parse() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about 4 minutes)")
    parser.add_argument(
        "--router-n", type=int, default=None, help="interactions for the router stage"
    )
    parser.add_argument("--out", type=Path, default=DOCS / "performance.md")
    parser.add_argument("--plot", type=Path, default=DOCS / "performance_latency.png")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, data)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("REFDESK_BENCH_POSTGRES_URL") or None,
        help="keep the services' data on this PostgreSQL server (fresh databases, dropped at "
        "the end; e.g. postgresql+asyncpg://postgres:pw@127.0.0.1:5432/postgres), as "
        "docker-compose deploys them; default REFDESK_BENCH_POSTGRES_URL, else SQLite files",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=STAGES,
        help="run only this stage (repeatable); default: every stage",
    )
    args = parser.parse_args()
    args.stages = tuple(s for s in STAGES if s in args.only) if args.only else STAGES
    return args


def idle_rss(pids: dict[str, int], settle_s: float) -> dict[str, float]:
    """VmRSS of each service once it has been idle for settle_s."""
    time.sleep(settle_s)
    return {name: rss_mib(pid) for name, pid in pids.items()}


def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU while nothing arrives, in ms per second: the services' periodic
    work and idle polls, which a slow rate divides among few interactions."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {name: (cpu_seconds(pid) - before[name]) / seconds * 1e3 for name, pid in pids.items()}


def measure(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The chosen stages, in an order where no service sees another stage's backlog."""
    results: dict[str, Any] = {"machine": machine(), "versions": versions()}
    system = start_system(root, args.postgres)
    log.info("Kafka on %s, mail sink on port %d", system.kafka.bootstrap, system.smtp.port)
    results["database"] = (
        f"PostgreSQL {system.postgres.version()} (a database per service, on this machine)"
        if system.postgres is not None
        else "SQLite (a file per service)"
    )
    try:
        if {"e2e", "catchup", "ingest"} & set(args.stages):
            stack = system.stack("stack", FIVE)
            stack.start_all(FIVE)
            pids = {name: p.pid for name, p in stack.processes.items()}
            ports = dict(stack.ports)
            try:
                results["rss_idle"] = idle_rss(pids, 3.0)
                log.info(
                    "idle VmRSS (MiB): %s", {k: round(v) for k, v in results["rss_idle"].items()}
                )
                if "e2e" in args.stages:
                    assert system.kafka.process is not None
                    idle = idle_cpu(
                        {**pids, "broker": system.kafka.process.pid}, 3.0 if args.quick else 10.0
                    )
                    log.info("idle CPU (ms a second): %s", {k: round(v) for k, v in idle.items()})
                    log.info("end to end")
                    results["e2e"] = e2e_stage.run(root, system, ports, pids, quick=args.quick)
                    results["e2e"]["cpu_idle"] = idle
                if "catchup" in args.stages:
                    log.info("catch-up after a router outage")
                    results["catchup"] = catchup_stage.run(root, system, stack, quick=args.quick)
                for name in ("router", "notifier", "status", "publisher"):
                    stack.stop(name)
                if "ingest" in args.stages:
                    results["ingest"] = ingest_stage.run(
                        root,
                        system.kafka.bootstrap,
                        ports["ingest"],
                        pids["ingest"],
                        quick=args.quick,
                    )
            finally:
                stack.stop_all()
        if "router" in args.stages:
            n = args.router_n or (500 if args.quick else 2000)
            results["router"] = router_stage.run(root, system, n=n, quick=args.quick)
        if "console" in args.stages:
            log.info("console")
            results["console"] = console_stage.run(root, system, quick=args.quick)
    finally:
        system.stop()
    results["machine"]["load_end"] = loadavg()
    return results


def main() -> int:
    """Run the benchmark and write the report."""
    args = parse()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "mail.log", "aiokafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="refdesk-bench-"))
    started = time.monotonic()
    command = "python -m bench" + (" --quick" if args.quick else "")
    if args.only:
        command += "".join(f" --only {stage}" for stage in args.stages)
    if args.postgres:
        command += " --postgres URL"
    try:
        results = measure(root, args)
    except BaseException:
        log.error("bench failed; logs kept in %s", root)
        raise
    results["duration_s"] = time.monotonic() - started
    results["command"] = command
    results["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (root / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report.write(results, args.out, args.plot)
    log.info("wrote %s and %s in %.0f s", args.out, args.plot, results["duration_s"])
    if args.keep:
        log.info("scratch folder kept: %s", root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
