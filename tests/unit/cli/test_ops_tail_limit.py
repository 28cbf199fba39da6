"""`refdesk tail --limit N` prints N records, however many one fetch brings."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from refdesk_cli import tail as tail_module

TOPIC = "refdesk.interactions"


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=f"conv-{partition}".encode(),
        value=b'{"type": "edu.tccd.refdesk.test", "data": {}}',
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=[],
    )


class FakeConsumer:
    """One fetch of nine records over two partitions (more than asked for), then nothing."""

    def __init__(self, *_topics: str, **_options: Any) -> None:
        self.fetches = [
            {
                TopicPartition(TOPIC, 0): [record(0, n) for n in range(5)],
                TopicPartition(TOPIC, 1): [record(1, n) for n in range(4)],
            }
        ]
        self.stopped = False

    async def start(self) -> None:
        return None

    async def getmany(
        self, *, timeout_ms: int, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        return self.fetches.pop(0) if self.fetches else {}

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(
    ("limit", "idle_timeout", "printed_count"),
    [(1, None, 1), (3, None, 3), (5, None, 5), (6, None, 6), (9, None, 9), (None, 0.0, 9)],
)
async def test_the_limit_counts_records_not_fetches(
    monkeypatch: pytest.MonkeyPatch,
    limit: int | None,
    idle_timeout: float | None,
    printed_count: int,
) -> None:
    """One fetch brings 9 records: --limit N prints N of them; no limit prints every one."""
    monkeypatch.setattr(tail_module, "AIOKafkaConsumer", FakeConsumer)
    printed: list[str] = []
    count = await tail_module.tail(
        "127.0.0.1:1",
        TOPIC,
        from_beginning=True,
        limit=limit,
        idle_timeout=idle_timeout,
        show_student_data=False,
        out=printed.append,
    )
    assert (count, len(printed)) == (printed_count, printed_count)
