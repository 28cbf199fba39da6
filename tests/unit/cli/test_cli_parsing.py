"""The refdesk command line: arguments, options and the local-only commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from refdesk_cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command", ["up", "status", "tail", "replay", "demo", "asyncapi", "version", "policy"]
)
def test_every_command_is_registered(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output


def test_tail_needs_a_topic() -> None:
    result = runner.invoke(app, ["tail"])
    assert result.exit_code == 2
    assert "topic" in result.output.lower()


def test_replay_refuses_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2


def test_replay_names_the_line_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "sms", "from": "+18175550123", "body": "hi"}\nnot json\n')
    result = runner.invoke(app, ["replay", str(bad)])
    assert result.exit_code == 2
    assert "line 2" in result.output


@pytest.mark.parametrize(
    ("text", "action", "department"),
    [
        ("How do I cite a government report in APA 7?", "transfer", "writing-center"),
        ("Can I renew my book? It's due tomorrow.", "transfer", "nw-circulation"),
        (
            "I don't feel safe and I've been thinking about hurting myself",
            "escalate_crisis",
            "care-team",
        ),
    ],
)
def test_policy_explain_uses_the_routers_policy(text: str, action: str, department: str) -> None:
    result = runner.invoke(
        app, ["policy", "explain", text, "--at", "2026-01-06T10:00", "--role", "student", "--json"]
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert (decision["action"], decision["department"]) == (action, department)
    assert decision["overnight"] is False


def test_policy_explain_marks_a_message_at_3am_overnight() -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "When does the library open?",
            "--at",
            "2026-01-06T03:00",
            "--channel",
            "email",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overnight"] is True


def test_policy_explain_with_nobody_online_falls_back_to_a_ticket() -> None:
    result = runner.invoke(
        app,
        [
            "policy",
            "explain",
            "Can I renew my book?",
            "--at",
            "2026-01-06T10:00",
            "--online",
            "reference",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fallback"]


def test_policy_explain_refuses_an_unknown_channel() -> None:
    result = runner.invoke(app, ["policy", "explain", "hi", "--channel", "fax"])
    assert result.exit_code == 2
    assert "--channel" in result.output


def test_policy_explain_prints_a_table_by_default() -> None:
    result = runner.invoke(
        app, ["policy", "explain", "How do I cite in MLA?", "--at", "2026-01-06T10:00"]
    )
    assert result.exit_code == 0, result.output
    assert "writing-center" in result.output and "hand-off" in result.output


def test_asyncapi_check_passes_on_the_committed_documents() -> None:
    result = runner.invoke(app, ["asyncapi", "--check"])
    assert result.exit_code == 0, result.output


def test_status_exits_nonzero_when_nothing_answers() -> None:
    dead = "http://127.0.0.1:9"
    result = runner.invoke(
        app,
        [
            "status",
            *("--ingest", dead, "--router", dead, "--notifier", dead),
            *("--status", dead, "--publisher", dead),
        ],
    )
    assert result.exit_code == 1
    assert "down" in result.output


def test_policy_explain_runs_both_nets_unless_told_rules_only() -> None:
    from refdesk_cli.explain import explain

    text = "ya no me importa nada, les dejo mis cosas a mis primos"  # the rules see no cue
    both = explain(text, channel="sms", at="2025-03-04T10:00:00")
    assert (both["action"], both["lang"], both["net"]) == ("escalate_crisis", "es", "model")
    assert both["model_version"] and both["risk_score"] > 0.5
    rules = explain(text, channel="sms", at="2025-03-04T10:00:00", rules_only=True)
    assert rules["model_version"] is None and rules["risk_score"] is None
