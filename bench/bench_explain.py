"""Policy.decide throughput on one core over the labelled set, against 20,000 decisions/s.

Run: .venv/bin/python bench/bench_explain.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from services.router.policy import DecisionInput, default_policy_path, load_policy
from shared.events import Channel, PatronRole

TARGET = 20_000
DATA = Path(__file__).parents[1] / "tests/unit/router/data/labelled.jsonl"


def inputs() -> list[DecisionInput]:
    """The labelled messages as decision inputs, received while the desk is open."""
    at = datetime(2025, 10, 1, 15, 0, tzinfo=UTC)
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    return [
        DecisionInput(
            channel=Channel(r["channel"]),
            text=r["text"],
            received_at=at,
            patron_role=PatronRole(r.get("patron_role", "unknown")),
        )
        for r in rows
    ]


def main() -> None:
    """Repeat the set for about --seconds and print decisions/s and the ratio to the target."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    policy = load_policy(default_policy_path())
    batch = inputs()
    online = frozenset({"nw-circulation", "writing-center"})
    for inp in batch:  # warm up
        policy.decide(inp, online=online)
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < args.seconds:
        for inp in batch:
            policy.decide(inp, online=online)
        done += len(batch)
    rate = done / elapsed
    print(
        f"{done} decisions in {elapsed:.2f} s: {rate:,.0f} decisions/s "
        f"({rate / TARGET:.2f}x the {TARGET:,}/s target)"
    )


if __name__ == "__main__":
    main()
