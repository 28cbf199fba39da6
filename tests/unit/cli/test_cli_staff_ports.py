"""`refdesk status`, `demo` and `replay` find the services where `refdesk up` started them: on
127.0.0.1 at each REFDESK_*_PORT when no URL option is given (an outside probe: they always
asked the default ports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from refdesk_cli.main import app, service_url
from tests.servers import serving_in_thread

runner = CliRunner()
PORTS = {
    "ingest": "REFDESK_INGEST_PORT",
    "router": "REFDESK_ROUTER_PORT",
    "notifier": "REFDESK_NOTIFIER_PORT",
    "status": "REFDESK_STATUS_PORT",
    "publisher": "REFDESK_PUBLISHER_PORT",
}


@pytest.fixture
def no_ports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in PORTS.values():
        monkeypatch.delenv(variable, raising=False)
    yield


def test_an_option_wins_then_the_port_variable_then_the_default(
    no_ports: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service_url("status", None) == "http://127.0.0.1:8084"
    monkeypatch.setenv("REFDESK_STATUS_PORT", "9184")
    assert service_url("status", None) == "http://127.0.0.1:9184"
    assert service_url("status", "http://desk:1") == "http://desk:1"
    monkeypatch.setenv("REFDESK_STATUS_PORT", "0")  # "any free port": not knowable here
    assert service_url("status", None) == "http://127.0.0.1:8084"
    monkeypatch.setenv("REFDESK_STATUS_PORT", "eighty")
    with pytest.raises(typer.Exit):
        service_url("status", None)


def ready_service() -> Starlette:
    async def readyz(_: Request) -> Response:
        return JSONResponse({"ready": True, "checks": {"kafka": True, "database": True}})

    async def metrics(_: Request) -> Response:
        return PlainTextResponse("")

    async def availability(_: Request) -> Response:
        return JSONResponse({"departments": []})

    routes = [Route("/readyz", readyz), Route("/metrics", metrics)]
    return Starlette(routes=[*routes, Route("/availability", availability)])


def test_status_asks_the_ports_the_variables_name(
    no_ports: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_in_thread(ready_service(), what="services") as url:
        port = url.rsplit(":", 1)[1]
        for variable in PORTS.values():
            monkeypatch.setenv(variable, port)
        result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"http://127.0.0.1:{port}") == 5
