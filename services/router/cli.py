"""Command line: check-policy, explain and serve (python -m services.router ...)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from . import routing
from .explain import ExplainRequest
from .learned import LearnedModel, ModelError, default_model_path, load_model
from .policy import DecisionInput, Policy, PolicyError, default_policy_path, load_policy
from .policy.examples import run_examples


class InputError(ValueError):
    """A bad explain input line; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        """Keep the field name for the JSON error line."""
        super().__init__(message)
        self.field = field


def check_policy(path: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Validate a policy file and run its examples; 0 when all is well, 1 otherwise."""
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        print(f"policy error:\n{exc}", file=err)
        return 1
    failures = run_examples(policy)
    for failure in failures:
        print(f"{path}: {failure}", file=err)
    if failures:
        print(f"{len(failures)} of {len(policy.doc.examples)} examples failed", file=err)
        return 1
    print(
        f"{path}: OK (label {policy.label}, version {policy.version}, "
        f"{len(policy.doc.rules)} rules, {len(policy.doc.examples)} examples passed)",
        file=out,
    )
    return 0


def _input(row: Any, policy: Policy) -> tuple[DecisionInput, frozenset[str] | None]:
    """Read one explain JSON object as an ExplainRequest; InputError naming the first bad field."""
    if not isinstance(row, dict):
        raise InputError("(line)", "each line must be a JSON object")
    try:
        request = ExplainRequest.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(line)"
        raise InputError(field, str(first["msg"])) from None
    return request.to_input(policy)


def _error(out: TextIO, error: str, field: str | None, line: int) -> int:
    """Write one input line's error as its output line; 1, to count it."""
    result = {"error": error, "field": field, "line": line}
    out.write(json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n")
    return 1


def explain(policy: Policy, lines: TextIO, out: TextIO, model: LearnedModel | None = None) -> int:
    """One JSON decision (or {"error": ...}) per input line; returns the number of errors.

    A decision shows lang, safety_review, risk_score, the net that escalated or flagged it,
    and the model's version and most probable route (null without a model).
    """
    errors = 0
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            inp, online = _input(json.loads(line), policy)
            decision = routing.decide(policy, model, inp, online=online)
            out.write(decision.model_dump_json() + "\n")
        except json.JSONDecodeError as exc:
            errors += _error(out, f"invalid JSON: {exc.msg}", None, n)
        except InputError as exc:
            errors += _error(out, f"{exc.field}: {exc}", exc.field, n)
        out.flush()
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command."""
    parser = argparse.ArgumentParser(prog="python -m services.router")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-policy", help="validate a policy file and run its examples")
    check.add_argument("file", type=Path)
    exp = sub.add_parser("explain", help="decide JSON-line messages from stdin")
    exp.add_argument("--policy", type=Path, default=default_policy_path())
    exp.add_argument("--model", type=Path, default=default_model_path(), help="learned net")
    exp.add_argument("--rules-only", action="store_true", help="decide without the model")
    sub.add_parser("serve", help="run the router's Kafka consumer")
    args = parser.parse_args(argv)
    if args.command == "check-policy":
        return check_policy(args.file)
    if args.command == "explain":
        try:
            policy = load_policy(args.policy)
            model = None if args.rules_only else load_model(args.model)
        except PolicyError as exc:
            print(f"policy error:\n{exc}", file=sys.stderr)
            return 1
        except ModelError as exc:
            print(f"model error: {exc}", file=sys.stderr)
            return 1
        explain(policy, sys.stdin, sys.stdout, model)
        return 0
    app = importlib.import_module("services.router.app")  # imported lazily: Kafka deps
    result = app.main()
    return int(result) if isinstance(result, int) else 0
