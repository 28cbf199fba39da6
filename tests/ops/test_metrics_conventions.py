"""Every service's /metrics follows Prometheus conventions (and promtool agrees).

The five apps run in-process with their lifespans against the session's real broker and
SQLite files in tmp_path; they share the process's registry, so each /metrics shows the
union, which is what the checks need.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from services.ingest.app import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.notifier.app import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.publisher.app import create_app as publisher_app
from services.publisher.settings import PublisherSettings
from services.router.app import create_app as router_app
from services.router.settings import RouterSettings
from services.status.app import create_app as status_app
from services.status.settings import StatusSettings

DEFAULT_PREFIXES = ("process_", "python_")
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
LAG = "refdesk_consumer_lag_messages"
SERVICES = ("ingest", "router", "notifier", "status", "publisher")
NON_BASE_UNITS = re.compile(r"_(ms|milliseconds|minutes|hours|kb|mb|kilobytes|megabytes)(_|$)")


@pytest.fixture(scope="module")
async def scrapes(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, httpx.Response]]:
    """GET /metrics (and /asyncapi.yaml) of each running service, once lag was measured."""
    tmp_path = tmp_path_factory.mktemp("metrics")

    def common(name: str) -> dict[str, object]:
        return {
            "kafka_bootstrap": kafka_bootstrap,
            "run_dir": tmp_path / name,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / name}.db",
            "topic_partitions": 1,
        }

    apps: dict[str, FastAPI] = {
        "ingest": ingest_app(IngestSettings(**common("ingest"))),
        "router": router_app(RouterSettings(**common("router"))),
        "notifier": notifier_app(NotifierSettings(**common("notifier"))),
        "status": status_app(StatusSettings(env="development", **common("status"))),
        "publisher": publisher_app(PublisherSettings(env="development", **common("publisher"))),
    }
    async with AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            )
        groups = {
            "refdesk-ingest",
            "refdesk-router",
            "refdesk-notifier",
            "refdesk-status",
            "refdesk-publisher",
            "refdesk-publisher-webhooks",
        }
        for _ in range(150):
            text = (await clients["status"].get("/metrics")).text
            if groups <= set(re.findall(rf'{LAG}{{[^}}]*group="([^"]+)"', text)):
                break
            await asyncio.sleep(0.2)
        result = {name: await c.get("/metrics") for name, c in clients.items()}
        result.update(
            {f"{name}/asyncapi": await c.get("/asyncapi.yaml") for name, c in clients.items()}
        )
        yield result


def families(text: str) -> list[tuple[str, str, list[str]]]:
    """(name as exposed in # TYPE, type, label names) per family."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    found = []
    for fam in text_string_to_metric_families(text):
        exposed = next((n for n in types if n in (fam.name, f"{fam.name}_total")), fam.name)
        labels = sorted({k for s in fam.samples for k in s.labels if k not in ("le", "quantile")})
        found.append((exposed, fam.type, labels))
    return found


async def test_metrics_follow_the_conventions(scrapes: dict[str, httpx.Response]) -> None:
    for name in SERVICES:
        answer = scrapes[name]
        assert answer.status_code == 200, name
        for metric, kind, labels in families(answer.text):
            if metric.startswith(DEFAULT_PREFIXES):
                continue
            assert metric.startswith("refdesk_"), metric
            assert SNAKE.match(metric), metric
            if kind == "counter":
                assert metric.endswith("_total"), metric
            assert not NON_BASE_UNITS.search(metric), f"{metric}: use base units (_seconds, _bytes)"
            if kind == "histogram":
                assert metric.endswith(("_seconds", "_bytes")), metric
            for label in labels:
                assert SNAKE.match(label), f"{metric}: label {label}"


async def test_consumer_lag_is_exported_per_topic_and_group(
    scrapes: dict[str, httpx.Response],
) -> None:
    lag = {
        (s.labels["topic"], s.labels["group"])
        for fam in text_string_to_metric_families(scrapes["status"].text)
        if fam.name == LAG
        for s in fam.samples
    }
    assert {
        ("refdesk.interactions", "refdesk-ingest"),
        ("refdesk.interactions", "refdesk-router"),
        ("refdesk.notifications", "refdesk-notifier"),
        ("refdesk.interactions", "refdesk-status"),
        ("refdesk.routing", "refdesk-status"),
        ("refdesk.interactions", "refdesk-publisher"),
        ("refdesk.routing", "refdesk-publisher"),
        ("refdesk.presence", "refdesk-publisher"),
        ("refdesk.public", "refdesk-publisher-webhooks"),
    } <= lag


async def test_the_dashboard_and_alerts_use_metrics_that_exist(
    scrapes: dict[str, httpx.Response],
) -> None:
    exposed = {m for m, _, _ in families(scrapes["status"].text)}
    root = Path(__file__).resolve().parents[2] / "deploy"
    text = (root / "grafana/dashboards/refdesk.json").read_text()
    rules = yaml.safe_load((root / "prometheus/alerts.yml").read_text())
    text += "\n".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    used = set(re.findall(r"\b(refdesk_[a-z_]+)", text))
    base = {re.sub(r"_(bucket|count|sum)$", "", m) for m in used}
    assert base <= exposed, sorted(base - exposed)


def test_the_dashboard_never_adds_up_the_replicas_copies_of_a_database_gauge() -> None:
    """Every status replica exports the same database-wide gauges (the queue, staff Online):
    a panel summing them doubled both under two replicas (an operator's probe)."""
    from prometheus_client.metrics import Gauge

    from services.status import metrics as status_metrics

    gauges = {g._name for g in vars(status_metrics).values() if isinstance(g, Gauge)}
    root = Path(__file__).resolve().parents[2] / "deploy"
    panels = json.loads((root / "grafana/dashboards/refdesk.json").read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    for expr in exprs:
        for name in gauges & set(re.findall(r"\b(refdesk_[a-z_]+)", expr)):
            summed = rf"\bsum\b(\s+by\s*\([^)]*\))?\s*\(\s*{name}\b"
            assert not re.search(summed, expr), expr


async def test_every_service_serves_its_asyncapi_document(
    scrapes: dict[str, httpx.Response],
) -> None:
    for name in SERVICES:
        answer = scrapes[f"{name}/asyncapi"]
        assert answer.status_code == 200, name
        assert yaml.safe_load(answer.text)["info"]["title"] == f"refdesk {name}"


async def test_promtool_check_metrics_agrees(scrapes: dict[str, httpx.Response]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "PROMTOOL MISSING: `apt-get install -y prometheus` provides it; "
            "`promtool check metrics` did NOT run"
        )
    for name in SERVICES:
        done = subprocess.run(
            [promtool, "check", "metrics"], input=scrapes[name].text, capture_output=True, text=True
        )
        problems = [
            ln
            for ln in (done.stdout + done.stderr).splitlines()
            if ln.strip() and not ln.startswith(DEFAULT_PREFIXES)
        ]
        assert done.returncode == 0 and not problems, f"{name}: {problems}"
