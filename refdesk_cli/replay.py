"""`refdesk replay FILE`: post a JSONL file of webhooks to ingest, signed as each provider would."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from refdesk_cli.webhooks import InvalidItem, Secrets, SignedRequest, build

MAX_503_RETRIES = 5


@dataclass
class ReplayResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    """`line N: reason` for each item that could not be sent."""


def read_items(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; InvalidItem naming the line if not JSON."""
    items = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InvalidItem(f"line {n}: not JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise InvalidItem(f"line {n}: each line must be a JSON object")
        items.append((n, obj))
    return items


def post(client: httpx.Client, request: SignedRequest) -> httpx.Response:
    """POST one request; a 503 (broker unavailable) is retried after its Retry-After."""
    for _ in range(MAX_503_RETRIES):
        answer = client.post(request.path, content=request.content, headers=request.headers)
        if answer.status_code != 503:
            return answer
        time.sleep(min(float(answer.headers.get("Retry-After", "1")), 10.0))
    return answer


def replay(
    items: Iterable[tuple[int, dict[str, Any]]],
    *,
    ingest_url: str,
    secrets: Secrets,
    advance: Callable[[], None] = lambda: None,
    timeout: float = 15.0,
) -> ReplayResult:
    """Sign and send each item in order; `advance` is called after each (the progress bar)."""
    result = ReplayResult()
    with httpx.Client(base_url=ingest_url, timeout=timeout) as client:
        for n, item in items:
            try:
                answer = post(client, build(item, secrets))  # signed just before sending
            except InvalidItem as exc:
                result.errors.append(f"line {n}: {exc}")
            except httpx.HTTPError as exc:
                result.errors.append(f"line {n}: {type(exc).__name__}")
            else:
                result.sent += 1
                result.statuses[answer.status_code] += 1
                if answer.status_code >= 300:
                    result.errors.append(f"line {n}: HTTP {answer.status_code} {answer.text[:200]}")
            advance()
    return result
