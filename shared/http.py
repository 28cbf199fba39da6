"""HTTP pieces every service mounts: /healthz, /readyz, /metrics, RFC 9457 problems, the body
limits and the security headers."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from sqlalchemy import exc as db_errors
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from shared.logs import REPEATING
from shared.metrics import DEPENDENCY_UP

log = logging.getLogger(__name__)

DATABASE_UNREACHABLE: tuple[type[Exception], ...] = (
    db_errors.OperationalError,
    db_errors.InterfaceError,
    db_errors.TimeoutError,  # the pool's: no connection came free
    ConnectionError,  # asyncpg's connect to a database that is down
)
"""Exceptions that say the database cannot be reached or does not answer (not that a statement
was wrong): 503 with Retry-After, as ingest answered, where status and the publisher answered a
bare 500 while PostgreSQL was down (an operator's probe)."""
RETRY_AFTER_S = 5

PROBLEM = "application/problem+json"

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]
_PROBLEM_BODY: dict[str, Any] = {PROBLEM: {"schema": {"type": "object"}}}
BEARER_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no or wrong bearer token", "content": _PROBLEM_BODY},
    400: {"description": "JSON nested too deeply", "content": _PROBLEM_BODY},
    413: {"description": "body too large", "content": _PROBLEM_BODY},
}
"""OpenAPI answers of a bearer-protected JSON endpoint behind install_http_guards."""


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> JSONResponse:
    """An application/problem+json response."""
    retry_after = extra.pop("retry_after", None)
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def bearer_matches(authorization: str | None, expected: SecretStr | str | None) -> bool:
    """Whether an Authorization header is `Bearer <expected>`: compared in constant time, and
    never true when no token is configured."""
    plain = expected.get_secret_value() if isinstance(expected, SecretStr) else expected
    if not plain or not authorization:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), plain.encode()
    )


class Problem(HTTPException):
    """An HTTP error answered as a problem with its own title, detail and offending field: what
    a dependency raises where it must stop (it cannot return a response), and a route where
    the problem should read like the service's others (`http_problem` renders it)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """A problem of `status`; `field` names what was wrong, never its value."""
        super().__init__(status, detail=title, headers=headers)
        self.title = title
        self.explanation = detail
        self.field = field


def require_bearer(authorization: str | None, expected: SecretStr | str | None) -> None:
    """401 (problem+json naming the Authorization header, WWW-Authenticate: Bearer) unless the
    header carries the token."""
    if not bearer_matches(authorization, expected):
        raise Problem(
            401,
            "Token required",
            "a bearer token is required (Authorization: Bearer <token>)",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )


def ops_router(ready: ReadyCheck, *, required: tuple[str, ...] | None = None) -> APIRouter:
    """Liveness, readiness (broker and database usable) and Prometheus metrics. `required`:
    the checks readiness needs (default every one); the others are reported, and exported as
    `refdesk_dependency_up`, but a replica serves without them."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Broker and database usable",
        responses={503: {"description": "not ready"}},
    )
    async def readyz() -> Response:
        checks = await ready()
        ok = all(up for name, up in checks.items() if required is None or name in required)
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    # HEAD too (load balancers and uptime checkers often probe with it), the same answers
    router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
    router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        # readiness as a gauge: a service up but without its broker or database is seen (and
        # alerted on) even when nothing it would count happens
        for dependency, ok in (await ready()).items():
            DEPENDENCY_UP.labels(dependency=dependency).set(1 if ok else 0)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def http_problem(exc: StarletteHTTPException, request: Request | None = None) -> JSONResponse:
    """An HTTP error (a route's, or the router's 404 and 405) as problem+json, its headers kept.
    A 405's Allow names every method some route takes at the path (Starlette's names only the
    first route's, so `GET /x` and `DELETE /x` as two routes answered a POST with "Allow: GET")."""
    if isinstance(exc, Problem):
        extra = {"field": exc.field} if exc.field else {}
        response = problem(exc.status_code, exc.title, exc.explanation, **extra)
    else:
        response = problem(exc.status_code, str(exc.detail) if exc.detail else "Error")
    response.headers.update(exc.headers or {})
    if exc.status_code == 405 and request is not None:
        allowed = allowed_methods(request)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
    return response


def allowed_methods(request: Request) -> list[str]:
    """The methods the app's routes take at the request's path: each method tried against the
    routes as the router tries them (included routers are routes of their own)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def install_problem_handlers(app: FastAPI) -> None:
    """Render validation and HTTP errors as problem+json naming the field, and any other
    exception as a bare problem+json 500 (no detail: its text can hold data or secrets)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # not JSON at all is a malformed request (400), as ingest answers it; 422 is for
            # JSON of the wrong shape (FastAPI named the field "0" here)
            return problem(400, "Malformed request", "the body is not valid JSON", field="body")
        errors = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        first = errors[0]["field"] if errors else None
        return problem(422, "Invalid request", detail, field=first, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_problem(exc, request)

    async def _unreachable(_req: Request, exc: Exception) -> JSONResponse:
        return database_unreachable(exc)

    for unreachable in DATABASE_UNREACHABLE:
        app.add_exception_handler(unreachable, _unreachable)

    @app.exception_handler(Exception)
    async def _unhandled(_req: Request, _exc: Exception) -> JSONResponse:
        return unhandled_problem()


def _field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A validation error's field as a caller names it (`reason`, `items.0.text`); `body` for
    a body that is missing or of the wrong kind as a whole."""
    named = ".".join(str(p) for p in loc if p not in ("body", "query", "path", "header"))
    return named or (str(loc[0]) if loc else "")


DATABASE_AWAY = "the database is not answering; try again in a moment"


def log_unreachable(exc: Exception) -> None:
    """Log a database that cannot be reached, by the exception's type alone (its text can name
    the host and user)."""
    log.warning("database unreachable", extra={"error": type(exc).__name__, REPEATING: True})


def database_unreachable(exc: Exception) -> JSONResponse:
    """503 problem+json with Retry-After for a database that cannot be reached, logged."""
    log_unreachable(exc)
    return problem(503, "Service unavailable", DATABASE_AWAY, retry_after=RETRY_AFTER_S)


def unhandled_problem() -> JSONResponse:
    """The answer to an unexpected exception: a bare 500, no detail (its text can hold data or
    secrets). Starlette's outermost ServerErrorMiddleware sends it, then re-raises the exception
    for the server to log; the security headers middleware is inside it, so the answer carries
    them itself."""
    response = problem(500, "Internal Server Error")
    response.headers.update({"Content-Security-Policy": CSP, **SECURITY_HEADERS})
    return response


# Pages and API answers may load nothing from elsewhere and never be framed (clickjacking).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from jsDelivr and start them with
# an inline script; they show the OpenAPI document only.
DOCS_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src blob:; connect-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # browsers keep to HTTPS for a year once they read this over HTTPS (over HTTP they ignore
    # it); the college's other hosts are not named (no includeSubDomains)
    "Strict-Transport-Security": "max-age=31536000",
}


NO_STORE = ("Cache-Control", "no-store")
"""On every response but static assets: pages and answers carry transcripts, contacts and
tokens, and a shared desk computer's browser must not keep them after sign-out."""


class SecurityHeaders:
    """Content-Security-Policy (with frame-ancestors 'none'), X-Frame-Options and friends on
    every response, HTML and JSON alike, and `Cache-Control: no-store` but under /static/; a
    header the app set itself is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = DOCS_CSP if path in DOCS_PATHS else CSP
        cached = path.startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not cached:
                    headers.setdefault(*NO_STORE)
            await send(message)

        await self.app(scope, receive, with_headers)


def install_http_guards(app: FastAPI, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Body size and JSON depth limits (413/400 before a handler reads anything) and the
    security headers, on every route of the app."""
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(SecurityHeaders)
