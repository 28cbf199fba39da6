"""The counters alerts read with increase() exist at 0 from the start, so the first dead letter
or refused login is an increase (a series whose first sample is 1 has none: promtool agrees)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

import services.notifier.metrics  # noqa: F401  (the notifier's series are made at import)
from shared.consumer import batch_subscriber
from shared.events import Channel, NotificationKind

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
TOPICS = ("refdesk.ops-counters-a", "refdesk.ops-counters-b")


def subscribe(*topics: str) -> None:
    """Register a batch subscriber as a consumer does at start-up (nothing connects)."""

    @batch_subscriber(KafkaBroker("127.0.0.1:1"), *topics, group_id="g", max_records=1, wait_ms=1)
    async def handle(_msg: Any) -> None:
        return None


def test_a_consumers_topics_have_their_dead_letter_series_from_the_start() -> None:
    subscribe(*TOPICS)
    for topic in TOPICS:
        assert REGISTRY.get_sample_value("refdesk_dead_letters_total", {"topic": topic}) == 0.0


def test_the_notifiers_alerted_counters_have_every_series_from_the_start() -> None:
    for channel in Channel:
        labels = {"channel": channel.value}
        auth = REGISTRY.get_sample_value("refdesk_notification_auth_failures_total", labels)
        assert auth is not None, channel
        for kind in NotificationKind:
            sample = REGISTRY.get_sample_value(
                "refdesk_notifications_dead_lettered_total", {**labels, "kind": kind.value}
            )
            assert sample is not None, (kind, channel)


def first_scrape(name: str, labels: dict[str, str]) -> str:
    """The series as Prometheus scrapes it before anything happened: 0, or promtool's `_`
    (no sample) if the service does not expose it yet."""
    return "_" if REGISTRY.get_sample_value(name, labels) is None else "0"


def alert_expr(alert: str) -> str:
    rules = yaml.safe_load(ALERTS.read_text())
    (expr,) = [r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    return str(expr)


def test_the_first_increment_fires_each_alert(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("PROMTOOL MISSING: `make promtool`; the alerts were NOT evaluated")
    subscribe(TOPICS[0])
    alerted = [
        ("RefdeskDeadLettersGrowing", "refdesk_dead_letters_total", {"topic": TOPICS[0]}),
        (
            "RefdeskNotificationsDeadLettered",
            "refdesk_notifications_dead_lettered_total",
            {"kind": "handoff", "channel": "sms"},
        ),
        (
            "RefdeskNotifierCredentialsRefused",
            "refdesk_notification_auth_failures_total",
            {"channel": "email"},
        ),
    ]
    series, checks = [], []
    for alert, name, labels in alerted:
        start = first_scrape(name, labels)
        selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
        # two scrapes before the first increment, then one dead letter (or refusal) for good
        series.append({"series": f"{name}{{{selector}}}", "values": f"{start} {start} 1 1 1 1"})
        checks.append(
            {
                "expr": f"count({alert_expr(alert)})",
                "eval_time": "4m",
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
        )
    case = {"interval": "1m", "input_series": series, "promql_expr_test": checks}
    test_file = tmp_path / "first_increment_test.yml"
    test_file.write_text(yaml.safe_dump({"evaluation_interval": "1m", "tests": [case]}))
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
