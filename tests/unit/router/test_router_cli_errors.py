"""The router's command line in process, where test_router_cli.py's real command line does not
go: lines that are not objects, blank lines, and a policy or model that cannot be loaded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from services.router import cli
from services.router.policy import Policy, default_policy_path, load_policy


def test_explain_skips_blank_lines_and_names_a_line_that_is_not_an_object(
    policy: Policy,
) -> None:
    """Blank lines give nothing; a JSON array is an error on its line; counting goes on."""
    lines = io.StringIO(
        "\n"
        + json.dumps([1, 2])
        + "\n   \n"
        + json.dumps({"channel": "chat", "text": "kms", "received_at": "2025-10-01T10:00"})
        + "\n"
    )
    out = io.StringIO()
    assert cli.explain(policy, lines, out) == 1
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {
        "error": "(line): each line must be a JSON object",
        "field": "(line)",
        "line": 2,
    }
    assert second["action"] == "escalate_crisis" and second["model_version"] is None


def test_explain_refuses_a_broken_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A policy file that does not load: exit 1, the policy's error on stderr, no output."""
    broken = tmp_path / "policy.yaml"
    broken.write_text("- not\n- a mapping\n", "utf-8")
    assert cli.main(["explain", "--policy", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"policy error:\n{broken}:1: the policy must be a YAML mapping\n"


def test_explain_refuses_a_missing_model(
    tmp_path: Path,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model path with nothing there: exit 1 naming it (the shipped policy loads fine)."""

    def read_policy(path: Path) -> Policy:  # the session's copy of the shipped file
        return policy if path == default_policy_path() else load_policy(path)

    monkeypatch.setattr(cli, "load_policy", read_policy)
    missing = tmp_path / "none.npz"
    assert cli.main(["explain", "--model", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"model error: {missing}: cannot read the model")
