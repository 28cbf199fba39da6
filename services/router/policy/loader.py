"""Read, validate and compile a policy file; every problem names its line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from . import checks
from .engine import Policy
from .errors import PolicyError
from .marks import describe, line_map, line_of
from .model import PolicyDoc
from .normalise import Normaliser


class _Loader(yaml.SafeLoader):
    """YAML without its implicit dates: `from: 2026-02-30` stays text for the schema to refuse
    with its line (PyYAML's own date raised a bare ValueError, naming no line, and a running
    router's reload stopped)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_policy(path: Path) -> Policy:
    """Load and compile the policy at `path`; PolicyError (naming the line) when it is broken."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from None
    return parse_policy(raw, source=str(path))


def parse_policy(raw: bytes, *, source: str = "<policy>") -> Policy:
    """Validate and compile policy bytes; `source` names the file in messages."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{source}: policy is not UTF-8 (byte {exc.start})") from None
    try:
        lines = line_map(text)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader: no objects)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "syntax error"
        raise PolicyError(f"{source}:{line}: YAML error: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: YAML error: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}:1: the policy must be a YAML mapping", line=1)
    try:
        doc = PolicyDoc.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, lines, source) from None
    norm = Normaliser(doc.normalise.shorthand)
    found = checks.problems(doc, norm)
    if found:
        numbered = sorted(((line_of(lines, loc), loc, msg) for loc, msg in found), key=_first)
        text_out = "\n".join(f"{source}:{ln}: {describe(loc)}: {msg}" for ln, loc, msg in numbered)
        raise PolicyError(text_out, line=numbered[0][0])
    version = hashlib.sha256(raw).hexdigest()[:16]
    return Policy(doc, version=version, lines=lines, routing_version=routing_version(doc))


def routing_version(doc: PolicyDoc) -> str:
    """A digest of what decides where a message goes: the whole policy but the words of its
    keyword replies (HOURS, HELP... and their translations; the keywords themselves count).
    The learned net's thresholds are chosen around what the rules escalate: a rule change
    needs a retraining, a reworded HOURS reply does not."""
    data = doc.model_dump(mode="json")
    data["sms_keywords"] = dict.fromkeys(data["sms_keywords"], "")
    for department in data["departments"]:  # a policy without them reads as before they were
        if not department["also_from"]:
            del department["also_from"]
    for translation in data["languages"].values():
        translation["sms_keywords"] = dict.fromkeys(translation["sms_keywords"], "")
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def _first(item: tuple[int, object, str]) -> int:
    """Sort key: the line number."""
    return item[0]


def _schema_error(
    exc: ValidationError, lines: dict[tuple[str | int, ...], int], source: str
) -> PolicyError:
    """One line per schema problem, each with its YAML line."""
    out: list[str] = []
    first: int | None = None
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
        line = line_of(lines, loc)
        first = line if first is None else min(first, line)
        out.append(f"{source}:{line}: {describe(loc) or '(top)'}: {err['msg']}")
    return PolicyError("\n".join(out), line=first)
