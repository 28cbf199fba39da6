"""Run the policy file's own `examples:` (used by check-policy and the tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from .decision import DecisionInput
from .engine import Policy


def run_examples(policy: Policy, *, now: datetime | None = None) -> list[str]:
    """One message per failing example; examples without received_at run while the desk is open."""
    opens = policy.next_open(now or datetime.now(UTC))
    failures: list[str] = []
    for i, ex in enumerate(policy.doc.examples):
        at = ex.received_at or opens
        if at.tzinfo is None:
            at = at.replace(tzinfo=policy.hours.tz)
        inp = DecisionInput(
            channel=ex.channel, text=ex.text, received_at=at, patron_role=ex.patron_role
        )
        online = frozenset(ex.online) if ex.online is not None else None
        got = policy.decide(inp, online=online)
        if (got.action, got.department) != (ex.expect.action, ex.expect.department):
            line = policy.lines.get(("examples", i), 0)
            fired = ", ".join(h.rule_id for h in got.rules) or "none"
            failures.append(
                f"line {line}: example {i} expected {ex.expect.action}/{ex.expect.department},"
                f" got {got.action}/{got.department} (rules fired: {fired})"
            )
    return failures
