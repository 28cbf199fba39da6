"""explain: JSON lines in, one decision (or error) per line out, via the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[3]
pytestmark = pytest.mark.slow  # a Python start, the policy and the model per test: seconds


def explain(lines: list[str]) -> list[dict[str, Any]]:
    """Run python -m services.router explain with the given stdin lines."""
    result = subprocess.run(
        [sys.executable, "-m", "services.router", "explain"],
        cwd=ROOT,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_explain_decisions_and_errors() -> None:
    """Good lines give decisions, bad lines give an error naming the field, and it goes on."""
    out = explain(
        [
            json.dumps(
                {
                    "channel": "chat",
                    "text": "Can I renew my book online?",
                    "received_at": "2025-10-01T10:00:00-05:00",
                }
            ),
            json.dumps({"channel": "fax", "text": "hello"}),
            json.dumps({"channel": "sms", "text": "hi", "received_at": "yesterday"}),
            "{not json",
            json.dumps(
                {
                    "channel": "sms",
                    "text": "can i renew",
                    "online": [],
                    "received_at": "2025-10-05T12:00:00-05:00",
                }
            ),
            json.dumps(
                {"channel": "email", "text": "workshop for my class", "patron_role": "faculty"}
            ),
            json.dumps({"channel": "chat", "text": "x", "patron_role": "dean"}),
        ]
    )
    assert len(out) == 7
    assert out[0]["action"] == "transfer" and out[0]["department"] == "nw-circulation"
    assert out[0]["overnight"] is False and out[0]["rules"][0]["rule_id"] == "circulation-loans"
    assert out[1]["field"] == "channel" and "channel" in out[1]["error"]
    assert out[2]["field"] == "received_at"
    assert "invalid JSON" in out[3]["error"]
    assert out[4]["fallback"] and out[4]["overnight"] is True and out[4]["priority"] == "high"
    assert "tomorrow at 8:00 AM" in out[4]["after_hours_ack"]
    assert out[5]["action"] == "refer_faculty"
    assert out[6]["field"] == "patron_role"


def test_explain_with_policy_option() -> None:
    """--policy selects the file; the decision carries its version."""
    policy = ROOT / "services/router/policy/default_policy.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "services.router", "explain", "--policy", str(policy)],
        cwd=ROOT,
        input='{"channel":"chat","text":"kms"}\n',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    decision = json.loads(result.stdout)
    assert decision["action"] == "escalate_crisis" and len(decision["policy_version"]) == 16


def test_explain_shows_both_nets() -> None:
    """Each decision shows lang, safety_review, risk_score, the net and the model version."""
    crisis, spanish, plain = explain(
        [
            json.dumps({"channel": "chat", "text": "I want to kill myself"}),
            json.dumps({"channel": "sms", "text": "hola, ¿puedo renovar mi libro?"}),
            json.dumps({"channel": "chat", "text": "where are the history books"}),
        ]
    )
    assert crisis["net"] == "rules" and crisis["action"] == "escalate_crisis"
    assert spanish["lang"] == "es" and plain["lang"] == "en"
    for d in (crisis, spanish, plain):
        assert 0 <= d["risk_score"] <= 1 and d["model_version"].startswith("clf-")
        assert isinstance(d["safety_review"], bool) and d["model_route"]


def test_explain_rules_only() -> None:
    """--rules-only decides without the model: no score, no model version."""
    result = subprocess.run(
        [sys.executable, "-m", "services.router", "explain", "--rules-only"],
        cwd=ROOT,
        input='{"channel":"chat","text":"can i renew my book"}\n',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    decision = json.loads(result.stdout)
    assert decision["risk_score"] is None and decision["model_version"] is None
    assert decision["net"] is None and decision["lang"] == "en"
