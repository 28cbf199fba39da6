"""`refdesk status` asks every service, the publisher included, for readiness and lag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from refdesk_cli.main import DEFAULT_URLS, app
from tests.servers import serving_in_thread

runner = CliRunner()
DEAD = "http://127.0.0.1:9"


def fake_service(group: str) -> Starlette:
    """A ready service whose /metrics shows its consumer group's lag, and the availability board."""

    async def readyz(_: Request) -> Response:
        return JSONResponse({"ready": True, "checks": {"kafka": True, "database": True}})

    async def metrics(_: Request) -> Response:
        return PlainTextResponse(
            "# TYPE refdesk_consumer_lag_messages gauge\n"
            f'refdesk_consumer_lag_messages{{topic="refdesk.routing",group="{group}"}} 7.0\n'
        )

    async def availability(_: Request) -> Response:
        return JSONResponse(
            {"departments": [{"department": "reference", "staffed": True, "online": 1}]}
        )

    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/availability", availability),
        ]
    )


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, str]]:
    """Five ready fake services, by name: their base URLs."""
    names = ("ingest", "router", "notifier", "status", "publisher")
    urls: dict[str, str] = {}
    stack = [serving_in_thread(fake_service(f"refdesk-{n}"), what=n) for n in names]
    try:
        for name, server in zip(names, stack, strict=True):
            urls[name] = server.__enter__()
        yield urls
    finally:
        for server in stack:
            server.__exit__(None, None, None)


def options(urls: dict[str, str]) -> list[str]:
    return [arg for name, url in urls.items() for arg in (f"--{name}", url)]


def test_the_publisher_is_asked_like_the_others(services: dict[str, str]) -> None:
    result = runner.invoke(app, ["status", *options(services)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "publisher" in line)
    assert services["publisher"] in row and "ready" in row
    assert "refdesk.routing/refdesk-publisher: 7" in result.output


def test_a_publisher_that_does_not_answer_fails_the_status(services: dict[str, str]) -> None:
    result = runner.invoke(app, ["status", *options({**services, "publisher": DEAD})])
    assert result.exit_code == 1, result.output
    row = next(line for line in result.output.splitlines() if "publisher" in line)
    assert "down" in row


def test_the_publisher_defaults_to_its_port() -> None:
    assert DEFAULT_URLS["publisher"] == "http://127.0.0.1:8085"
