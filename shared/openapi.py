"""What the services' OpenAPI documents say of their problem answers (RFC 9457), in one place:
the body every error carries (`shared.http.problem`, the body limits, ingest's provider
errors) and the `responses` entries that name it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.http import PROBLEM

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "the offending field (never its value)",
        },
        "errors": {
            "type": "array",
            "description": "422 for a request of the wrong shape: each field and what is wrong",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
WAIT_STATUSES = (429, 503)
"""Answers that carry Retry-After: a throttled sign-in, and a broker or database away."""
BODY_TIMED_OUT = (
    "The body did not arrive whole within its deadline (30 s; ingest: "
    "REFDESK_BODY_READ_TIMEOUT_S, and REFDESK_INGEST_EMAIL_BODY_READ_TIMEOUT_S for email); "
    "the connection is closed"
)
"""The 408 of `shared.limits.BodyLimit`, which answers wherever a body is limited (413)."""


def problem_answers(reasons: Mapping[int, str], *codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem+json answers, each described by `reasons`
    (429 and 503 with their Retry-After header). A limited body (413) is also one that can
    arrive too slowly (408): the same middleware answers both."""
    reasons = {408: BODY_TIMED_OUT, **reasons}
    if 413 in codes and 408 not in codes:
        codes = (*codes, 408)
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(codes):
        out[code] = {"description": reasons[code], "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
        if code in WAIT_STATUSES:
            out[code]["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before asking again",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            }
    return out
