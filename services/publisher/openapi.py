"""What the subscriptions API documents in OpenAPI: the admin token and the problem answers
(RFC 9457) its routes give. Kept apart from the routes so a route reads as what it does."""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer

from shared.openapi import problem_answers

ADMIN_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="publisherAdminToken",
    description="REFDESK_PUBLISHER_ADMIN_TOKEN, held by the refdesk administrators, who create "
    "subscriptions for other systems (docs/subscribing.md); it opens this service only.",
)
"""Declares the admin token in OpenAPI; `deps.require_admin` checks it (problem+json 401)."""

_REASONS = {
    400: "The body is not JSON, or nests deeper than 64 levels",
    401: "No bearer token, or not the admin token (WWW-Authenticate: Bearer)",
    404: "No such subscription",
    413: "The body is over 256 KiB",
    422: "A parameter or field is missing or invalid (`errors` names each field), a filter "
    "names an id the desk does not use, or a URL egress refuses",
    503: "The database is not answering; try again after Retry-After",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the publisher's problem answers."""
    return problem_answers(_REASONS, *codes)


ADMIN = problems(401, 422, 503)
"""What every admin operation can answer (the router's `responses`)."""
FOUND = problems(404)
"""What an operation on one subscription adds."""
BODY = problems(400, 413)
"""What a write adds: its body refused before it is read (`shared.limits.BodyLimit`)."""
