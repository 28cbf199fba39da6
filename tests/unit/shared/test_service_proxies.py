"""A request's client address comes from a proxy's X-Forwarded-For only when
REFDESK_FORWARDED_ALLOW_IPS names that proxy (an outside review: uvicorn believed it from any
process on 127.0.0.1 by default, which could give each sign-in attempt a new address)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from shared import service
from shared.settings import CommonSettings


class Recorded:
    """The uvicorn config `serve` would run, never started."""

    config: uvicorn.Config

    def __init__(self, config: uvicorn.Config, **_kw: Any) -> None:
        Recorded.config = config

    def run(self) -> None:
        return None


async def client_seen(settings: CommonSettings, monkeypatch: pytest.MonkeyPatch) -> str:
    """The client address the app sees for a request from 127.0.0.1 claiming 203.0.113.7."""
    monkeypatch.setattr(service, "_Server", Recorded)
    service.serve(FastAPI(), settings, port=0)
    seen: list[str] = []

    async def app(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen.append(scope["client"][0])

    Recorded.config.app = app
    Recorded.config.load()
    scope = {
        "type": "http",
        "scheme": "http",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"x-forwarded-for", b"203.0.113.7")],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(_message: Message) -> None:
        return None

    await Recorded.config.loaded_app(scope, receive, send)
    return seen[0]


async def test_a_forwarded_address_is_not_believed_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await client_seen(CommonSettings(run_dir=tmp_path), monkeypatch) == "127.0.0.1"


async def test_the_proxy_named_is_believed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = CommonSettings(run_dir=tmp_path, forwarded_allow_ips="127.0.0.1")
    assert await client_seen(settings, monkeypatch) == "203.0.113.7"
