"""The bench on PostgreSQL: a database per service for each stack, the server's CPU counted
beside the services', and the report saying where the data was kept."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bench.machine import cpu_seconds, named_cpu_seconds
from bench.report import e2e_section, targets
from bench.system import Postgres


def test_a_servers_processes_are_counted_by_name() -> None:
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    mine = cpu_seconds(os.getpid())
    assert named_cpu_seconds(comm) >= mine >= 0.2
    assert named_cpu_seconds("no-such-process-name") == 0.0


def run_at(rate: float, **extra: Any) -> dict[str, Any]:
    return {
        "offered": rate,
        "requests": 100,
        "missing_decisions": 0,
        "missing_emails": 0,
        "cpu_ms": {"ingest": 3.0, "router": 2.0},
        "accepted": {"p50": 5.0, "p99": 9.0},
        "decision": {"p50": 20.0, "p99": 40.0},
        "email": {"p50": 30.0, "p99": 90.0},
        **extra,
    }


def test_the_report_puts_the_database_servers_cpu_beside_the_services() -> None:
    e2e = {"runs": [run_at(100, database_cpu_ms=2.96)]}
    rows = {what: (got, ok) for what, got, _goal, ok in targets({"e2e": e2e})}
    assert rows["CPU per interaction, summed over the services"][0].startswith("5.00 ms")
    assert rows["... and the database server's, beside them"] == ("2.96 ms", None)
    (line,) = [row for row in e2e_section(e2e) if row.startswith("| 100 |")]
    assert "5.00 (ingest 3.00, router 2.00); the database server 2.96 beside them" in line


def test_on_sqlite_the_report_has_no_database_server() -> None:
    e2e = {"runs": [run_at(100)]}
    assert not [row for row in targets({"e2e": e2e}) if "database server" in row[0]]
    assert not [row for row in e2e_section(e2e) if "database server" in row]


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("REFDESK_TEST_POSTGRES_URL"), reason="REFDESK_TEST_POSTGRES_URL not set"
)
def test_each_stack_gets_fresh_databases_that_the_end_drops() -> None:
    postgres = Postgres(os.environ["REFDESK_TEST_POSTGRES_URL"])

    def databases() -> set[str]:
        (names,) = postgres.execute("SELECT array_agg(datname) FROM pg_database")
        return set(names)

    url = postgres.database_url("router-bench")
    assert url.endswith(f"/{postgres.prefix}_router_bench_{{service}}")
    assert len(postgres.created) == 5 and postgres.version()[0].isdigit()
    made = set(postgres.created)
    assert made <= databases()
    assert url.replace("{service}", "status").rsplit("/", 1)[1] in made
    postgres.drop()
    assert not made & databases()
