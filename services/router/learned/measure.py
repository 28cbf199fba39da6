"""Measure the shipped router (rules and model, as `explain` decides) on a labelled file.

Run: python -m services.router.learned.measure eval/blind6.jsonl [--rules-only] [--json]

Every message is decided at a time the desk is open with everyone Online, by
`routing.decide` (the router's own path), and counted per language in the figures the
routing bars are stated in (`metrics.Counts`). This is how a new blind set is measured once,
before anything changes because of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from services.router import routing
from services.router.learned import LearnedModel, default_model_path, load_model
from services.router.policy import Policy, default_policy_path, load_policy

from .data import Example, read
from .metrics import Counts, Outcome, as_json, tally

LANG_NAMES = {"en": "English", "es": "Spanish or Spanglish", "all": "all"}


def decide_all(
    policy: Policy, model: LearnedModel | None, rows: Sequence[Example]
) -> list[Outcome]:
    """Each example decided as the router decides it, desk open and everyone Online."""
    out: list[Outcome] = []
    for r in rows:
        inp = r.as_input()
        d = routing.decide(policy, model, inp)
        route = f"{d.action.value}/{d.department}"
        out.append(
            Outcome(
                example=r,
                route=route,
                escalated=d.action.value == "escalate_crisis",
                review=d.safety_review,
                lang=d.lang,
                risk=d.risk_score if d.risk_score is not None else 0.0,
            )
        )
    return out


def table(name: str, counts: dict[str, Counts]) -> str:
    """The markdown rows of one measurement, per language and for all."""
    rows = [Counts.header()]
    for lang, c in counts.items():
        rows.append(Counts.row(f"{name}, {LANG_NAMES[lang]}", c.as_dict()))
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of one labelled file as a markdown table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m services.router.learned.measure")
    parser.add_argument("file", type=Path, help="labelled JSON lines (channel, text, expect, ...)")
    parser.add_argument("--policy", type=Path, default=default_policy_path())
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--rules-only", action="store_true", help="decide without the model")
    parser.add_argument("--json", action="store_true", help="counts as JSON")
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    model = None if args.rules_only else load_model(args.model)
    counts = tally(decide_all(policy, model, read(args.file, author=args.file.stem)))
    if args.json:
        print(json.dumps(as_json(counts), indent=2))
        return 0
    what = "rules alone" if model is None else f"rules + model {model.meta.get('version')}"
    print(table(f"{args.file.name}, {what}", counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
