"""`shared.kafka.publish_in_order` names a publish the broker was slow to acknowledge: the
topics, how many records and how long, never the events themselves. The broker here is a
stand-in whose acknowledgements the test releases (the broker tier publishes for real)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import kafka
from shared.events import StaffNoteAdded, new_event


class HeldAcks:
    """`KafkaBroker.publish(..., no_confirm=True)`: a future per record, acknowledged after
    `delay` seconds (or failed with `error`)."""

    def __init__(self, delay: float, error: Exception | None = None) -> None:
        self.delay, self.error = delay, error
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, body: bytes, *, topic: str, **_: Any) -> asyncio.Future[None]:
        self.sent.append((topic, body))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle() -> None:
            if self.error is not None:
                ack.set_exception(self.error)
            else:
                ack.set_result(None)

        asyncio.get_running_loop().call_later(self.delay, settle)
        return ack


def records() -> list[tuple[str, Any, str]]:
    private = StaffNoteAdded(
        note_id="n-1",
        conversation_id="conv-1",
        staff_id="s-1",
        text="Maria Lopez 1234567 +16825550100",
        at=datetime.now(UTC),
    )
    return [
        ("refdesk.routing", new_event(private, source="test"), "conv-1"),
        ("refdesk.commands", new_event(private, source="test"), "conv-1"),
    ]


def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "the broker was slow to acknowledge"]


async def test_a_slow_acknowledgement_is_named_by_topic_count_and_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kafka, "SLOW_PUBLISH_S", 0.1)
    broker = HeldAcks(delay=0.15)
    with caplog.at_level(logging.WARNING, logger="shared.kafka"):
        await kafka.publish_in_order(broker, records())  # type: ignore[arg-type]
    [slow] = slow_records(caplog)
    assert slow.__dict__["topics"] == ["refdesk.commands", "refdesk.routing"]
    assert slow.__dict__["records"] == 2
    assert slow.__dict__["took_ms"] >= 150
    assert "Maria" not in str(slow.__dict__) and "1234567" not in str(slow.__dict__)
    assert [topic for topic, _ in broker.sent] == ["refdesk.routing", "refdesk.commands"]


async def test_a_prompt_acknowledgement_logs_nothing_and_a_slow_failure_is_named_and_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(kafka, "SLOW_PUBLISH_S", 0.1)
    with caplog.at_level(logging.WARNING, logger="shared.kafka"):
        await kafka.publish_in_order(HeldAcks(delay=0.0), records())  # type: ignore[arg-type]
        assert slow_records(caplog) == []
        failing = HeldAcks(delay=0.15, error=TimeoutError("no leader"))
        with pytest.raises(TimeoutError):
            await kafka.publish_in_order(failing, records())  # type: ignore[arg-type]
    assert len(slow_records(caplog)) == 1
