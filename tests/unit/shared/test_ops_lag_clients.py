"""Measuring lag closes every Kafka client it made, whether or not the broker answered (a broker
outage had left one unclosed AIOKafkaConsumer per service every 15 s)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from refdesk_cli.kafka_local import free_port
from shared import lag


class FakeClient:
    """A Kafka client whose start fails when told to; notes whether it was closed."""

    made: list[FakeClient] = []
    failing: set[str] = set()

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.closed = False
        FakeClient.made.append(self)

    async def start(self) -> None:
        if self.kind in FakeClient.failing:
            raise KafkaConnectionError(f"{self.kind}: unable to bootstrap")

    async def stop(self) -> None:
        self.closed = True

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> list[FakeClient]:
    FakeClient.made, FakeClient.failing = [], set()
    monkeypatch.setattr(lag, "AIOKafkaAdminClient", lambda **_kw: FakeClient("admin"))
    monkeypatch.setattr(lag, "AIOKafkaConsumer", lambda **_kw: FakeClient("consumer"))

    async def no_lags(*_args: Any) -> dict[tuple[str, str], int]:
        return {}

    monkeypatch.setattr(lag, "_lags", no_lags)
    return FakeClient.made


@pytest.mark.parametrize("failing", [set(), {"admin"}, {"consumer"}, {"admin", "consumer"}])
async def test_every_client_is_closed_whichever_start_fails(
    clients: list[FakeClient], failing: set[str]
) -> None:
    FakeClient.failing = failing
    if failing:
        with pytest.raises(KafkaConnectionError):
            await lag.measure("127.0.0.1:1", {"g": ["t"]})
    else:
        assert await lag.measure("127.0.0.1:1", {"g": ["t"]}) == {}
    assert sorted(c.kind for c in clients) == ["admin", "consumer"]
    assert [c.kind for c in clients if not c.closed] == []


async def test_a_broker_that_refuses_leaves_no_unclosed_client() -> None:
    """The real clients against a port nobody listens on: no "Unclosed AIOKafka..." report."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context["message"])))
    try:
        for _ in range(2):
            with pytest.raises(KafkaConnectionError):
                await lag.measure(f"127.0.0.1:{free_port()}", {"g": ["t"]})
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [m for m in reported if "Unclosed" in m] == []
