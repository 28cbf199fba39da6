"""Accuracy of the policy on a labelled set, as a markdown table for the README.

Run: python -m services.router.policy.report [--data FILE] [--policy FILE]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.events import Action, Channel, PatronRole

from . import default_policy_path, load_policy
from .decision import DecisionInput
from .engine import Policy

DEFAULT_DATA = Path(__file__).parents[3] / "tests/unit/router/data/labelled.jsonl"
OPEN_TIME = datetime(2025, 10, 1, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Chicago


@dataclass
class Report:
    """Counts per expected action, crisis recall and idiom false alarms."""

    total: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    idioms: int = 0
    idiom_escalations: int = 0

    def accuracy(self, action: str | None = None) -> float:
        """Share routed as labelled, for one action or overall."""
        if action is None:
            return sum(self.correct.values()) / max(sum(self.total.values()), 1)
        return self.correct[action] / max(self.total[action], 1)

    def crisis_recall(self) -> float:
        """Share of labelled crises that escalated."""
        return self.accuracy(Action.ESCALATE_CRISIS.value)

    def markdown(self) -> str:
        """The table pasted into the README."""
        rows = [
            "| expected action | messages | routed as labelled | accuracy |",
            "|---|---:|---:|---:|",
        ]
        for action in Action:
            n = self.total[action.value]
            if n:
                rows.append(
                    f"| {action.value} | {n} | {self.correct[action.value]} |"
                    f" {self.accuracy(action.value):.1%} |"
                )
        n = sum(self.total.values())
        rows.append(f"| **all** | {n} | {sum(self.correct.values())} | {self.accuracy():.1%} |")
        rows.append("")
        rows.append(
            f"Crisis recall: {self.crisis_recall():.1%} "
            f"({self.correct[Action.ESCALATE_CRISIS.value]}/"
            f"{self.total[Action.ESCALATE_CRISIS.value]}); crisis-looking idioms "
            f"escalated: {self.idiom_escalations}/{self.idioms}."
        )
        return "\n".join(rows)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The labelled messages of a JSON-lines file."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def evaluate(policy: Policy, rows: list[dict[str, Any]]) -> Report:
    """Route every labelled row (desk open) and count the results."""
    report = Report()
    for row in rows:
        inp = DecisionInput(
            channel=Channel(row["channel"]),
            text=row["text"],
            received_at=OPEN_TIME,
            patron_role=PatronRole(row.get("patron_role", "unknown")),
        )
        got = policy.decide(inp)
        want = row["expect"]
        report.total[want["action"]] += 1
        if (got.action.value, got.department) == (want["action"], want["department"]):
            report.correct[want["action"]] += 1
        else:
            report.misses.append((row, f"{got.action.value}/{got.department}"))
        if row.get("tag") == "idiom":
            report.idioms += 1
            report.idiom_escalations += got.action is Action.ESCALATE_CRISIS
    return report


def main(argv: list[str] | None = None) -> None:
    """Print the accuracy table (and, with --misses, what went wrong)."""
    parser = argparse.ArgumentParser(prog="python -m services.router.policy.report")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--policy", type=Path, default=default_policy_path())
    parser.add_argument("--misses", action="store_true", help="list misrouted messages")
    args = parser.parse_args(argv)
    report = evaluate(load_policy(args.policy), read_rows(args.data))
    print(report.markdown())
    if args.misses:
        for row, got in report.misses:
            want = f"{row['expect']['action']}/{row['expect']['department']}"
            print(f"- {want} got {got}: {row['text']}")


if __name__ == "__main__":
    main()
