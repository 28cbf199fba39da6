"""HTTP pieces every service mounts: /healthz, /readyz, /metrics and RFC 9457 problems."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM = "application/problem+json"

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


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


def require_bearer(authorization: str | None, expected: SecretStr | str | None) -> None:
    """401 (problem+json, WWW-Authenticate: Bearer) unless the header carries the token."""
    if not bearer_matches(authorization, expected):
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


def ops_router(ready: ReadyCheck) -> APIRouter:
    """Liveness, readiness (broker and database usable) and Prometheus metrics."""
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
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def install_problem_handlers(app: FastAPI) -> None:
    """Render validation and HTTP errors as problem+json naming the field, never as a 500 body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem(exc.status_code, str(exc.detail) if exc.detail else "Error")
        response.headers.update(exc.headers or {})
        return response
