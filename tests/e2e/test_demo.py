"""`refdesk demo` against the whole system as processes: every step ends where the seed says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import System
from tests.integration.ingest.conftest import BASE, MAILGUN_KEY, TWILIO_TOKEN, WEBHOOK_SECRET

EXPECTED = {
    "overnight email: sources": ("answer", "reference"),
    "overnight email: JSTOR": ("answer", "reference"),
    "chat: renewal": ("transfer", "nw-circulation"),
    "email: lost book bill": ("email_circulation", "circulation-managers"),
    "chat: citing": ("transfer", "writing-center"),
    "chat: crisis": ("escalate_crisis", "care-team"),
    "sms: hours, closed with survey": ("answer", "reference"),
}


def test_the_demo_shift_ends_as_the_procedures_say(e2e_system: System, tmp_path: Path) -> None:
    stack = e2e_system.stack
    env = {
        **os.environ,
        "REFDESK_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "REFDESK_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "REFDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "REFDESK_PUBLIC_BASE_URL": BASE,
        "REFDESK_KAFKA_BOOTSTRAP": e2e_system.kafka.bootstrap,
    }
    out = tmp_path / "demo.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "refdesk_cli",
            "demo",
            "--ingest",
            stack.url("ingest"),
            "--status",
            stack.url("status"),
            "--run-dir",
            str(stack.run_dir),
            "--mail-dir",
            str(stack.run_dir.parent / "mail"),
            "--timeout",
            "120",
            "--json",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    table = done.stdout
    print(table)  # shown with -s: docs/operations.md quotes it
    assert done.returncode == 0, table + done.stderr

    for label, (action, department) in EXPECTED.items():
        row = next((ln for ln in table.splitlines() if label in ln), "")
        cells = [c.strip() for c in row.split("│")]
        assert action in cells and department in cells and "OK" in cells, (label, row)

    outcomes = {o["step"]: o for o in json.loads(out.read_text())}
    sent = {
        label: {(n["kind"], n["channel"]) for n in o["notifications"]}
        for label, o in outcomes.items()
    }
    assert all(n["delivered"] for o in outcomes.values() for n in o["notifications"])
    assert outcomes["overnight email: sources"]["decision"]["overnight"] is True
    assert outcomes["overnight email: JSTOR"]["decision"]["priority"] == "high"
    assert ("circulation_email", "email") in sent["email: lost book bill"]
    assert ("handoff", "chat") in sent["chat: renewal"]
    assert ("crisis_alert", "email") in sent["chat: crisis"]
    assert ("survey", "sms") in sent["sms: hours, closed with survey"]
