"""What the staff API documents in OpenAPI: how a caller authenticates and the problem answers
(RFC 9457) its routes give, so a campus app or script can do what the console does.

Kept apart from the routes so a route reads as what it does. Each router passes the answers
all its operations share (`responses=` on the APIRouter), and a route adds what is its own.
"""

from __future__ import annotations

from typing import Any

from fastapi.security import HTTPBearer

from shared.openapi import problem_answers

STAFF_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="staffToken",
    description="A staff member's own token, issued by an admin (`refdesk staff token ID`, "
    "`POST /admin/staff/{staff_id}/tokens` or the console's staff page) and shown once; "
    "what it may do follows the staff member's role and departments. The console's pages "
    "send their sign-in's session cookie instead, with `X-Requested-With: refdesk` on "
    "changes.",
)
"""Declares the staff token in OpenAPI; `deps.current_actor` reads it (a missing or wrong one
is refused there, as problem+json)."""

_REASONS = {
    400: "The body is not JSON, or nests deeper than 64 levels",
    401: "No bearer token or session, or one that is unknown, revoked or ended",
    403: "The caller's role or the conversation's policy does not allow it, or a change sent "
    "with the console's session cookie lacks X-Requested-With: refdesk",
    404: "No such conversation, staff member, token, macro or department",
    409: "The conversation (or staff member) is not in a state that allows it: closed, "
    "claimed or changed by a colleague since it was read, a crisis not acknowledged yet, "
    "purged, or the patron wrote after the line the closer saw; nothing changed",
    413: "The body is over 256 KiB",
    422: "A parameter or field is missing or invalid (`errors` names each field)",
    429: "Too many wrong tokens from this address; try again after Retry-After",
    503: "The database or the broker is not answering; try again after Retry-After",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the status service's problem answers."""
    return problem_answers(_REASONS, *codes)


SIGNED_IN = problems(401, 403, 422, 429, 503)
"""What every operation behind `deps.current_actor` can answer (its router's `responses`)."""
FOUND = problems(404)
"""What a read of one conversation, staff member or macro by id adds."""
BODY = problems(400, 413)
"""What a write adds: its body refused before it is read (`shared.limits.BodyLimit`)."""
ACTION = problems(400, 404, 409, 413)
"""What an action on one conversation (or staff member, or token) adds."""
PUBLIC = problems(503)
"""What the open availability endpoints can answer."""


_HTML = {"text/html": {"schema": {"type": "string"}}}


def pages(codes: dict[int, str], *, or_problem: tuple[int, ...] = ()) -> dict[int | str, Any]:
    """OpenAPI `responses` entries for the console's HTML answers; those in `or_problem` are
    problem+json to a client that does not ask for HTML (an API call, a script)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code, reason in codes.items():
        problem = problems(code)[code]["content"] if code in or_problem else {}
        out[code] = {"description": reason, "content": {**problem, **_HTML}}
        if code in (429, 503):
            out[code]["headers"] = problems(code)[code]["headers"]
    return out


CONSOLE_PAGE = {
    **problems(422),
    **pages(
        {
            403: "The console saying this conversation is not the caller's to see",
            404: "The console saying there is no such conversation",
            503: "A page saying the desk cannot reach its database or broker",
        },
        or_problem=(503,),
    ),
}
SIGN_IN_FORM = {
    **BODY,
    **pages(
        {
            401: "The sign-in page again: staff id or token not recognised",
            403: "The sign-in page again: the form was posted from another site",
            422: "The sign-in page again: a field missing or too long",
            429: "The sign-in page again: too many failed sign-ins; try again after Retry-After",
            503: "The sign-in page again: the database is not answering; try again after "
            "Retry-After",
        },
        or_problem=(422, 503),
    ),
}
