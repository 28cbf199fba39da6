"""Every service's HTTP edge (issue 13, findings 5 and 8): bodies bounded before they are read,
JSON depth bounded before it is parsed, router /explain behind a bearer token, and the security
headers on every answer. The apps are built, never started: the guards answer first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.http import PROBLEM
from shared.limits import DEFAULT_MAX_BODY_BYTES, json_too_deep


def _apps(run_dir: Path) -> dict[str, FastAPI]:
    from services.ingest.app import create_app as ingest
    from services.ingest.settings import IngestSettings
    from services.notifier.app import create_app as notifier
    from services.notifier.settings import NotifierSettings
    from services.publisher.app import create_app as publisher
    from services.publisher.settings import PublisherSettings
    from services.router.app import create_app as router
    from services.router.settings import RouterSettings
    from services.status.app import create_app as status
    from services.status.settings import StatusSettings

    common: dict[str, Any] = {"run_dir": run_dir, "kafka_bootstrap": "127.0.0.1:9"}
    return {
        # the email endpoints' own limit (a Mailgun post carries whole files) set under the
        # probe's 20 MiB here, so that both limits are shown to refuse unread
        "ingest": ingest(IngestSettings(**common, ingest_max_email_body_bytes=8 * 1024 * 1024)),
        "router": router(RouterSettings(**common)),
        "notifier": notifier(NotifierSettings(**common)),
        "status": status(StatusSettings(**common)),
        "publisher": publisher(PublisherSettings(**common)),
    }


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FastAPI]:
    return _apps(tmp_path_factory.mktemp("guards"))


def _writes(apps: dict[str, FastAPI]) -> Iterator[tuple[str, str, str]]:
    for name, app in apps.items():
        for path, operations in app.openapi()["paths"].items():
            for method in operations:
                if method in ("post", "put", "patch"):
                    yield name, method.upper(), path.replace("{", "x").replace("}", "")


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_every_write_endpoint_refuses_an_oversized_body_unread(
    apps: dict[str, FastAPI],
) -> None:
    writes = list(_writes(apps))
    assert {n for n, _, _ in writes} == {"ingest", "router", "status", "publisher"}
    assert ("router", "POST", "/explain") in writes
    huge = b"x" * (20 * 1024 * 1024)  # the probe's 20 MiB
    for name, method, path in writes:
        async with _client(apps[name]) as client:
            answer = await client.request(
                method, path, content=huge, headers={"content-type": "application/json"}
            )
        assert answer.status_code == 413, (name, path, answer.status_code)
        assert answer.headers["content-type"] == PROBLEM


async def test_a_streamed_body_over_the_limit_is_cut_off(apps: dict[str, FastAPI]) -> None:
    async def chunks() -> Any:
        for _ in range(DEFAULT_MAX_BODY_BYTES // 1024 + 2):
            yield b"a=" + b"x" * 1022

    async with _client(apps["status"]) as client:
        answer = await client.post(
            "/dashboard/login",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 413


DEEP = b"[" * 5000 + b"]" * 5000


async def test_json_nested_5000_deep_is_a_400_problem_everywhere(
    apps: dict[str, FastAPI],
) -> None:
    for name, method, path in _writes(apps):
        async with _client(apps[name]) as client:
            answer = await client.request(
                method, path, content=DEEP, headers={"content-type": "application/json"}
            )
        assert answer.status_code == 400, (name, path, answer.status_code)
        assert answer.json()["detail"] == "JSON nested more than 64 levels deep"


async def test_explain_needs_the_router_token(apps: dict[str, FastAPI]) -> None:
    from services.router.settings import DEV_ADMIN_TOKEN

    body = {"channel": "sms", "text": "can i renew my book"}
    async with _client(apps["router"]) as client:
        anonymous = await client.post("/explain", json=body)
        wrong = await client.post("/explain", json=body, headers={"Authorization": "Bearer no"})
        ok = await client.post(
            "/explain", json=body, headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        )
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.headers["content-type"] == PROBLEM
    assert ok.status_code == 200 and ok.json()["action"]


@pytest.mark.parametrize("service", ["ingest", "router", "notifier", "status", "publisher"])
async def test_every_answer_carries_the_security_headers(
    apps: dict[str, FastAPI], service: str
) -> None:
    async with _client(apps[service]) as client:
        answers = [
            await client.get("/healthz"),
            await client.get("/no-such-page"),
            await client.get("/docs"),
        ]
    for answer in answers:
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        assert answer.headers["cache-control"] == "no-store"
    assert "'unsafe-inline'" not in answers[0].headers["content-security-policy"]


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"{}", False),
        (b"[" * 64 + b"]" * 64, False),
        (b"[" * 65 + b"]" * 65, True),
        (b"[" * 65, True),  # unterminated: still refused before a parser recurses
        (json.dumps({"t": "[" * 500}).encode(), False),  # brackets inside a string
        (json.dumps({"t": '\\"' + "{" * 500}).encode(), False),  # escaped quote, then brackets
        (b'{"a": "\\\\"' + b"[" * 65 + b"]" * 65 + b"}", True),  # escaped backslash ends string
    ],
)
def test_json_depth(body: bytes, deep: bool) -> None:
    assert json_too_deep(body) is deep


Build = Callable[[int], Any]


@pytest.mark.parametrize("depth", [1, 10, 63, 64, 65, 100])
def test_json_depth_matches_the_parsed_depth(depth: int) -> None:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k[": value, "]": "}{"}
    body = json.dumps(value).encode()
    assert json_too_deep(body) is (_depth(json.loads(body)) > 64)


async def test_a_body_that_is_not_json_is_a_400_not_a_422_naming_field_0(
    apps: dict[str, FastAPI],
) -> None:
    """As ingest answers it: 422 is for JSON of the wrong shape."""
    from services.router.settings import DEV_ADMIN_TOKEN

    token = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}", "content-type": "application/json"}
    async with _client(apps["router"]) as client:
        broken = await client.post("/explain", content=b'{"channel": ', headers=token)
        shaped = await client.post("/explain", content=b'{"channel": "fax"}', headers=token)
    assert broken.status_code == 400 and broken.headers["content-type"] == PROBLEM
    assert broken.json()["detail"] == "the body is not valid JSON"
    assert shaped.status_code == 422 and "channel" in shaped.json()["detail"]


async def test_ingests_admin_api_checks_the_token_before_the_body(
    apps: dict[str, FastAPI],
) -> None:
    """A caller without the token learns nothing of what the body should be (it got 422)."""
    async with _client(apps["ingest"]) as client:
        no_body = await client.put("/admin/blocklist/+18175550123")
        wrong = await client.put(
            "/admin/blocklist/+18175550123", json={"reason": 7}, headers={"Authorization": "x"}
        )
    assert no_body.status_code == wrong.status_code == 401
    assert no_body.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("service", ["ingest", "router", "notifier", "status", "publisher"])
async def test_a_load_balancer_may_probe_liveness_with_head(
    apps: dict[str, FastAPI], service: str
) -> None:
    """HEAD /healthz answered 405 (an outside probe): many load balancers probe with HEAD."""
    async with _client(apps[service]) as client:
        alive = await client.head("/healthz")
    assert alive.status_code == 200 and alive.content == b""


async def test_a_405_names_every_method_the_path_takes(apps: dict[str, FastAPI]) -> None:
    """PUT and DELETE of one path are two routes; a POST there was told "Allow: PUT" alone."""
    async with _client(apps["ingest"]) as client:
        wrong = await client.post("/admin/blocklist/+18175550123")
        health = await client.post("/healthz")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM
    assert wrong.headers["allow"] == "PUT, DELETE"
    assert health.headers["allow"] == "GET, HEAD"


async def test_the_routers_explain_checks_the_token_before_the_body(
    apps: dict[str, FastAPI],
) -> None:
    """Without the token /explain answered 422 naming the fields a request should have (a
    body that is not JSON at all is still 400 first: it is parsed before any check runs, and
    its answer says nothing of the shape)."""
    async with _client(apps["router"]) as client:
        shaped = await client.post("/explain", json={"channel": "fax"})
        empty = await client.post("/explain", json={})
    assert shaped.status_code == empty.status_code == 401
    assert "channel" not in shaped.text + empty.text
