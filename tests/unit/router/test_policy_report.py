"""The policy's accuracy report (policy/report.py): counts per expected action, crisis recall,
idioms escalated, and the misrouted messages listed by the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.router.policy import Policy, default_policy_path, load_policy
from services.router.policy import report as report_module
from services.router.policy.report import Report, evaluate, read_rows

ROWS = [
    ("chat", "Can I renew my book online?", None, "transfer", "nw-circulation"),
    ("sms", "im going to hurt myself tonight", None, "escalate_crisis", "care-team"),
    (
        "chat",
        "this homework is going to be the death of me, where are the statistics books",
        "idiom",
        "answer",
        "reference",
    ),
    # labelled wrongly on purpose: the rules send it to tutoring
    ("chat", "need a biology tutor appointment", None, "answer", "reference"),
]

TABLE = """\
| expected action | messages | routed as labelled | accuracy |
|---|---:|---:|---:|
| answer | 2 | 1 | 50.0% |
| transfer | 1 | 1 | 100.0% |
| escalate_crisis | 1 | 1 | 100.0% |
| **all** | 4 | 3 | 75.0% |

Crisis recall: 100.0% (1/1); crisis-looking idioms escalated: 0/1."""


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """The four rows as a labelled JSON-lines file, with a blank line in it."""
    lines = []
    for channel, text, tag, action, dept in ROWS:
        row: dict[str, object] = {
            "channel": channel,
            "text": text,
            "expect": {"action": action, "department": dept},
        }
        if tag:
            row["tag"] = tag
        lines.append(json.dumps(row))
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n", "utf-8")
    return path


def test_evaluate_counts_per_expected_action(policy: Policy, labelled: Path) -> None:
    """Each row counted under its expected action; a miss is kept with what it got."""
    got = evaluate(policy, read_rows(labelled))
    assert dict(got.total) == {"transfer": 1, "escalate_crisis": 1, "answer": 2}
    assert dict(got.correct) == {"transfer": 1, "escalate_crisis": 1, "answer": 1}
    assert [(row["text"], route) for row, route in got.misses] == [
        ("need a biology tutor appointment", "transfer/tutoring")
    ]
    assert (got.idioms, got.idiom_escalations) == (1, 0)
    assert got.accuracy() == 0.75 and got.accuracy("answer") == 0.5
    assert got.crisis_recall() == 1.0


def test_an_empty_report_is_zero_not_an_error() -> None:
    """No rows: every share is 0, and the table has only its total row."""
    empty = Report()
    assert empty.accuracy() == 0.0 and empty.crisis_recall() == 0.0
    assert "| **all** | 0 | 0 | 0.0% |" in empty.markdown().splitlines()


def test_main_prints_the_table_and_the_misses(
    monkeypatch: pytest.MonkeyPatch,
    policy: Policy,
    labelled: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's table in action order, then with --misses each misrouted message."""

    def read_policy(path: Path) -> Policy:  # the session's copy of the shipped file
        return policy if path == default_policy_path() else load_policy(path)

    monkeypatch.setattr(report_module, "load_policy", read_policy)
    report_module.main(["--data", str(labelled)])
    assert capsys.readouterr().out == TABLE + "\n"
    report_module.main(["--data", str(labelled), "--misses"])
    assert capsys.readouterr().out == (
        TABLE + "\n- answer/reference got transfer/tutoring: need a biology tutor appointment\n"
    )
