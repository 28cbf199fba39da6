"""A refdesk batch subscriber polls again at once after an empty poll (FastStream's own batch
subscriber sleeps as long as the poll waited, so a record arriving then waits too)."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber import usecase

from shared.consumer import batch_subscriber, poll_without_pause


class FakeConsumer:
    """aiokafka's `getmany`, answering from a script and noting how it was asked."""

    def __init__(self, *answers: dict[str, list[Any]]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[Any]]:
        self.asked.append((timeout_ms, max_records))
        return self.answers.pop(0)


@pytest.fixture
def subscriber() -> Any:
    broker = KafkaBroker("127.0.0.1:1")

    @batch_subscriber(broker, "refdesk.test", group_id="g", max_records=7, wait_ms=30)
    async def handle(_msg: Any) -> None:
        return None

    (registered,) = broker.subscribers
    return registered


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """FastStream's pause after an empty poll, recorded instead of slept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(usecase.anyio, "sleep", sleep)
    return slept


async def test_an_empty_poll_returns_at_once(subscriber: Any, no_sleep: list[float]) -> None:
    consumer = FakeConsumer({})
    assert await subscriber.get_msg(consumer) == ()
    assert no_sleep == []
    assert consumer.asked == [(30, 7)]


async def test_a_poll_returns_every_partitions_records_in_order(
    subscriber: Any, no_sleep: list[float]
) -> None:
    consumer = FakeConsumer({"p0": ["a", "b"], "p1": ["c"]})
    assert await subscriber.get_msg(consumer) == ("a", "b", "c")
    assert no_sleep == []


async def test_faststreams_own_batch_poll_pauses(no_sleep: list[float]) -> None:
    """What the override removes (if FastStream stops pausing, the override can go)."""
    broker = KafkaBroker("127.0.0.1:1")
    plain = broker.subscriber("refdesk.test", group_id="g", batch=True, batch_timeout_ms=30)
    assert await plain.get_msg(FakeConsumer({})) == ()
    assert no_sleep == [0.03]


def test_only_batch_subscribers_are_changed() -> None:
    broker = KafkaBroker("127.0.0.1:1")
    with pytest.raises(TypeError):
        poll_without_pause(broker.subscriber("refdesk.test", group_id="g"))
