"""`refdesk tail TOPIC`: print a topic's CloudEvents, one readable line each.

Fields the wire contract marks as student data (shared/events.py descriptions) are masked
unless --show-student-data is given: the terminal is not a place for patrons' messages.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from shared import events

MASK = "***"
EXTRA_SENSITIVE = {"context", "value"}  # template values and dead letters' original bytes


def student_fields() -> set[str]:
    """Names of event fields described as student data in the wire contract."""
    names = set(EXTRA_SENSITIVE)
    models: list[type[BaseModel]] = [
        *events.EVENT_TYPES.values(),
        events.Patron,
        events.StaffGuidance,
        events.RuleHit,
    ]
    for model in models:
        for name, info in model.model_fields.items():
            if info.description and "student data" in info.description:
                names.add(name)
    return names


def redact(value: Any, fields: set[str]) -> Any:
    """A copy of a JSON value with the named fields masked at any depth."""
    if isinstance(value, dict):
        return {
            k: (MASK if k in fields and v not in (None, "", [], {}) else redact(v, fields))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, fields) for v in value]
    return value


def describe(raw: bytes | None, *, key: str | None, fields: set[str] | None) -> str:
    """One line for one record: time, short type, subject/key and the data."""
    try:
        event = json.loads(raw or b"")
    except ValueError:
        return f"(not JSON, {len(raw or b'')} bytes) key={key}"
    if not isinstance(event, dict) or "type" not in event:
        return f"(not a CloudEvent) key={key}"
    data = event.get("data")
    if fields is not None:
        data = redact(data, fields)
    kind = str(event["type"]).removeprefix("edu.tccd.refdesk.")
    subject = event.get("subject") or key or "-"
    return f"{event.get('time', '?')}  {kind:28} {subject}  {json.dumps(data, ensure_ascii=False)}"


async def tail(
    bootstrap: str,
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
    show_student_data: bool,
    out: Callable[[str], None],
) -> int:
    """Print records until Ctrl-C, `limit` records, or `idle_timeout` seconds without one."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"refdesk-tail-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    fields = None if show_student_data else student_fields()
    await consumer.start()
    count = 0
    last = time.monotonic()
    try:
        while limit is None or count < limit:
            # a fetch can bring many records: ask for no more than the limit leaves, and stop
            # at it within the fetch too (the limit counts records, not fetches)
            wanted = None if limit is None else limit - count
            batch = await consumer.getmany(timeout_ms=500, max_records=wanted)
            records = [r for rs in batch.values() for r in rs][:wanted]
            for record in records:
                key = record.key.decode("utf-8", "replace") if record.key else None
                out(describe(record.value, key=key, fields=fields))
                count += 1
                last = time.monotonic()
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                break
    finally:
        await consumer.stop()
    return count


def run(bootstrap: str, topic: str, **kwargs: Any) -> int:
    """tail() from synchronous code."""
    return asyncio.run(tail(bootstrap, topic, **kwargs))
