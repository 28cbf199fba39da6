"""explain throughput on one core: rules and learned net (routing.decide) over the labelled
set, against the issue's 5,000 decisions/s with the classifier (and the rules alone beside it).

The machine's speed swings between runs and between days (rules alone measured 5,224 to
17,413 decisions per CPU-second on the same machine on different days), so the two are
measured in alternating slices of one run and their ratio is printed too: the issue's
15,000/s without the classifier and 5,000/s with it allow the classifier to keep a third of
the rules' rate, on whatever day.

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
TARGET_SHARE = TARGET / 15_000
"""the share of the rules' own rate that the target keeps with the classifier on"""
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


ONLINE = frozenset({"nw-circulation", "writing-center"})


def _run(
    policy: Policy, model: LearnedModel | None, batch: list[DecisionInput], seconds: float
) -> tuple[int, float]:
    """(decisions, CPU-seconds) repeating the set at least once, for about `seconds`."""
    done = 0
    start = time.process_time()
    while True:
        for inp in batch:
            routing.decide(policy, model, inp, online=ONLINE)
        done += len(batch)
        if (elapsed := time.process_time() - start) >= seconds:
            return done, elapsed


def rate(policy: Policy, model: LearnedModel | None, seconds: float) -> float:
    """Decisions per second, repeating the set for about `seconds`."""
    batch = inputs()
    _run(policy, model, batch, 0.0)  # warm up: one pass
    done, elapsed = _run(policy, model, batch, seconds)
    return done / elapsed


def compare(
    policy: Policy, model: LearnedModel, seconds: float, slices: int = 6
) -> tuple[float, float]:
    """Decisions per second with the model and with the rules alone, each over about
    `seconds`, measured in alternating slices so that a swing of the machine falls on both."""
    batch = inputs()
    totals = {True: [0, 0.0], False: [0, 0.0]}
    for with_model in (True, False):  # warm up: one pass each
        _run(policy, model if with_model else None, batch, 0.0)
    for _ in range(slices):
        for with_model in (True, False):
            done, elapsed = _run(policy, model if with_model else None, batch, seconds / slices)
            totals[with_model][0] += done
            totals[with_model][1] += elapsed
    return totals[True][0] / totals[True][1], totals[False][0] / totals[False][1]


def main() -> None:
    """Print decisions per CPU-second (one core) and the process's peak RSS."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rules-only", action="store_true")
    args = parser.parse_args()
    policy = load_policy(default_policy_path())
    if args.rules_only:
        got = rate(policy, None, args.seconds)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"rules only: {got:,.0f} decisions per CPU-second; peak RSS {rss:.0f} MiB")
        return
    model = load_model(default_model_path())
    got, alone = compare(policy, model, args.seconds)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rules + model {model.version}: {got:,.0f} decisions per CPU-second "
        f"({got / TARGET:.2f}x the {TARGET:,}/s target); rules alone {alone:,.0f}/s in the "
        f"same run; the model keeps {got / alone:.2f} of the rules' rate "
        f"(the target keeps {TARGET_SHARE:.2f}: {got / alone / TARGET_SHARE:.2f}x); "
        f"peak RSS {rss:.0f} MiB"
    )


if __name__ == "__main__":
    main()
