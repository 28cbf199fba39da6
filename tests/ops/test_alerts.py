"""Alert rules: `promtool check rules` and the unit tests in deploy/prometheus/alerts_test.yml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = {
    "RefdeskServiceDown",
    "RefdeskRoutingPolicyRefused",
    "RefdeskWebhooksRefused",
    "RefdeskDependencyDown",
    "RefdeskCrisisNotificationFailing",
    "RefdeskCrisisNotificationDelayed",
    "RefdeskCrisisUnacknowledged",
    "RefdeskDeadLettersGrowing",
    "RefdeskNotificationsDeadLettered",
    "RefdeskNotificationsWaiting",
    "RefdeskStaffActionsNotPublished",
    "RefdeskNotifierCredentialsRefused",
    "RefdeskConsumerLagGrowing",
    "RefdeskDatabaseSlow",
    "RefdeskIngestUnavailable",
    "RefdeskNobodyOnline",
    "RefdeskOvernightTicketsWaiting",
    "RefdeskTextsNotDelivered",
    "RefdeskCareTeamEmailBounced",
    "RefdeskCareTeamNotAlerted",
    "RefdeskStaffEmailBounced",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "PROMTOOL MISSING: `apt-get install -y prometheus` (Debian) provides it "
            "(`make promtool`); the alert rules were NOT checked"
        )
    return found


def test_every_alert_is_defined_and_unit_tested() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    defined = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert defined == ALERTS
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    tested = {
        t["alertname"]
        for case in tests["tests"]
        for t in case["alert_rule_test"]
        if t["exp_alerts"]
    }
    assert tested == ALERTS, f"no firing test for {sorted(ALERTS - tested)}"


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]  # the container path, made local
    local = PROMETHEUS.parent.parent / ".pytest_cache" / "prometheus.local.yml"
    local.parent.mkdir(exist_ok=True)
    local.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [promtool(), "check", "config", str(local)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_unit_tests_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
