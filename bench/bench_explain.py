"""explain throughput on one core: rules and learned net (routing.decide) over the labelled
set, against the issue's 5,000 decisions/s with the classifier (and the rules alone beside it).

Run: .venv/bin/python bench/bench_explain.py [--seconds 3] [--rules-only]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from services.router import routing
from services.router.learned import LearnedModel, default_model_path, load_model
from services.router.policy import DecisionInput, Policy, default_policy_path, load_policy
from shared.events import Channel, PatronRole

TARGET = 5_000
"""decisions/s with the classifier on (issue 15); the rules alone ran 15,000/s."""
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


def rate(policy: Policy, model: LearnedModel | None, seconds: float) -> float:
    """Decisions per second, repeating the set for about `seconds`."""
    batch = inputs()
    online = frozenset({"nw-circulation", "writing-center"})
    for inp in batch:  # warm up
        routing.decide(policy, model, inp, online=online)
    done = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for inp in batch:
            routing.decide(policy, model, inp, online=online)
        done += len(batch)
    return done / elapsed


def main() -> None:
    """Print decisions per CPU-second (one core) and the process's peak RSS."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rules-only", action="store_true")
    args = parser.parse_args()
    policy = load_policy(default_policy_path())
    model = None if args.rules_only else load_model(default_model_path())
    got = rate(policy, model, args.seconds)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    what = "rules only" if model is None else f"rules + model {model.version}"
    print(
        f"{what}: {got:,.0f} decisions per CPU-second "
        f"({got / TARGET:.2f}x the {TARGET:,}/s target); peak RSS {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
