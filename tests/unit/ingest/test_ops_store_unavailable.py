"""Ingest's database unreachable: a signed webhook is answered 503 naming the message store,
with Retry-After, and logged by the error's type only (it had been a bare 500, and a failure
after the broker's ack had been answered "Broker unavailable")."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError, ResourceClosedError
from sqlalchemy.ext.asyncio import create_async_engine

from refdesk_cli.kafka_local import free_port
from services.ingest.errors import StoreUnavailable, store_failure
from services.ingest.store import IngestStore
from tests.fakes import FakeBroker
from tests.unit.ingest.test_ingest_http import serving, sms_form, twilio_signed

NUMBER = "+18175550177"


def operational_error(*_args: Any, **_kwargs: Any) -> None:
    """What SQLAlchemy raises when SQLite or PostgreSQL cannot be reached: its message
    quotes the statement's parameters (here a patron's number)."""
    raise OperationalError(
        "SELECT * FROM threads WHERE contact = ?", (NUMBER,), sqlite3.OperationalError("gone")
    )


async def refused_connection(*_args: Any, **_kwargs: Any) -> None:
    """A real asyncpg connection refused (an OSError, which SQLAlchemy does not wrap)."""
    engine = create_async_engine(f"postgresql+asyncpg://u:p@127.0.0.1:{free_port()}/ingest")
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


async def post_sms(client: httpx.AsyncClient) -> httpx.Response:
    form = sms_form("renew my book please", From=NUMBER)
    return await client.post(
        "/webhooks/sms", data=form, headers=twilio_signed("/webhooks/sms", form)
    )


def assert_store_unavailable(answer: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["title"] == "Message store unavailable"
    assert "nothing was recorded" in answer.json()["detail"]
    (warning,) = [r for r in caplog.records if r.getMessage() == "message store unavailable"]
    assert warning.levelno == logging.WARNING
    assert getattr(warning, "error", None) in ("OperationalError", "ConnectionRefusedError")
    assert NUMBER not in caplog.text and "7550177" not in caplog.text


@pytest.mark.parametrize("failure", [operational_error, refused_connection])
async def test_a_store_that_cannot_be_read_is_503_message_store_unavailable(
    tmp_path: Path,
    broker: FakeBroker,
    store: IngestStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Any,
) -> None:
    async def failing(*args: Any, **kwargs: Any) -> Any:
        result = failure(*args, **kwargs)
        if result is not None:
            await result
        raise AssertionError("the failure did not fail")

    monkeypatch.setattr(store, "sms_state", failing)
    caplog.set_level(logging.WARNING)
    async with serving(tmp_path, broker, store) as client:
        answer = await post_sms(client)
    assert_store_unavailable(answer, caplog)
    assert broker.published == []


async def test_a_store_that_fails_after_the_ack_is_not_called_the_broker(
    tmp_path: Path,
    broker: FakeBroker,
    store: IngestStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing(*_args: Any, **_kwargs: Any) -> None:
        operational_error()

    monkeypatch.setattr(store, "record_sms", failing)
    caplog.set_level(logging.WARNING)
    async with serving(tmp_path, broker, store) as client:
        answer = await post_sms(client)
    assert_store_unavailable(answer, caplog)


async def test_a_broker_that_is_down_is_still_the_broker(
    tmp_path: Path, broker: FakeBroker, store: IngestStore
) -> None:
    broker.down = True  # the fake's ConnectionError is an OSError, but not the database's
    async with serving(tmp_path, broker, store) as client:
        answer = await post_sms(client)
    assert answer.status_code == 503
    assert answer.json()["title"] == "Broker unavailable"


def test_what_counts_as_the_store_failing() -> None:
    assert store_failure(StoreUnavailable("OperationalError"))
    try:
        operational_error()
    except OperationalError as exc:
        assert store_failure(exc)
    # a connection the database ended, met before the store replaced it: 503, not 500
    assert store_failure(ResourceClosedError("This Connection is closed"))
    assert not store_failure(ConnectionRefusedError("raised outside the database's code"))
    assert not store_failure(TimeoutError())
    assert not store_failure(ValueError("a bug"))


async def test_an_unexpected_failure_is_a_500_the_request_counter_sees(
    tmp_path: Path, broker: FakeBroker, store: IngestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook answered 500 was counted nowhere, so the alert on ingest's unavailable
    answers stopped firing while every text failed (an outside probe)."""

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ValueError("a defect")

    monkeypatch.setattr(store, "sms_state", broken)
    before = REGISTRY.get_sample_value(
        "refdesk_webhook_requests_total", {"channel": "sms", "outcome": "error"}
    )
    async with serving(tmp_path, broker, store) as client:
        with pytest.raises(ValueError):  # the test client re-raises what the server answered 500
            await post_sms(client)
    after = REGISTRY.get_sample_value(
        "refdesk_webhook_requests_total", {"channel": "sms", "outcome": "error"}
    )
    assert (after or 0) - (before or 0) == 1


async def test_a_store_that_stops_answering_is_503_within_the_wait_then_recovers(
    tmp_path: Path, broker: FakeBroker, store: IngestStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that hangs instead of refusing (a partition, a frozen server) held every
    webhook for as long as it hung (an outside probe). The lookup is given `wait_s`; the
    provider retries a 503, and the retry is accepted once the database answers."""
    store.wait_s = 0.3
    release = threading.Event()
    held = asyncio.create_task(store._reader(lambda _conn: release.wait(10)))
    caplog.set_level(logging.WARNING)
    try:
        async with serving(tmp_path, broker, store) as client:
            answer = await post_sms(client)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["title"] == "Message store unavailable"
            (warning,) = [
                r for r in caplog.records if r.getMessage() == "message store unavailable"
            ]
            assert getattr(warning, "error", None) == "TimeoutError"
            assert broker.published == []
            release.set()
            await held
            retried = await post_sms(client)
            assert retried.status_code == 200, retried.text
            assert len(broker.published) == 1
    finally:
        release.set()
        await held
