"""Fault injection shared by the scenarios: kill and restart services while traffic flows."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from tests.eventually import eventually
from tests.faults.system import System
from tests.faults.traffic import Progress
from tests.kafka_helpers import read_topic

STAFF_TOKEN = {"Authorization": "Bearer dev-lokafor-token"}
"""A supervisor: the whole queue, whichever department each conversation was routed to."""
ADMIN = {"Authorization": "Bearer dev-dkim-token"}
"""A supervisor who sees every department's conversations."""


async def answer_on_the_desk(status: httpx.AsyncClient, contact: str, text: str) -> str:
    """Wait for the patron's conversation to reach the desk (found by their phone or email),
    answer it through the console API as staff do, and return its id."""

    async def listed() -> str | None:
        found = await status.get("/conversations", params={"contact": contact}, headers=ADMIN)
        rows = found.json()["items"]
        return rows[0]["conversation_id"] if rows else None

    cid = await eventually(listed, "the patron's message on the desk", timeout=60)
    reply = await status.post(f"/conversations/{cid}/replies", json={"text": text}, headers=ADMIN)
    assert reply.status_code == 202, reply.text
    return str(cid)


def kill_at(
    system: System, plan: list[tuple[int, str]], log: list[str]
) -> Callable[[Progress], Awaitable[None]]:
    """A `during` hook: at each `answered` threshold, kill -9 that service and restart it."""

    async def run(progress: Progress) -> None:
        for threshold, name in plan:
            while progress.answered < threshold:
                await asyncio.sleep(0.1)
            await asyncio.to_thread(system.kill, name)
            log.append(name)
            await asyncio.to_thread(system.restart, name)

    return run


async def queue_ids(system: System) -> list[dict[str, Any]]:
    """The status service's open queue (as staff see it)."""
    async with httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as client:
        answer = await client.get("/queue", headers=STAFF_TOKEN)
        answer.raise_for_status()
        return list(answer.json()["items"])


def poison_bodies(tag: str) -> list[bytes]:
    """What no consumer can process: not JSON, and a CloudEvent whose data is invalid."""
    invalid = {
        "specversion": "1.0",
        "id": f"poison-{tag}",
        "source": "tests/faults",
        "type": "edu.tccd.refdesk.interaction.received.v1",
        "time": datetime.now(UTC).isoformat(),
        "data": {"poison": tag},
    }
    return [f"not json {{ poison {tag}".encode(), json.dumps(invalid).encode()]


async def publish_raw(bootstrap: str, topic: str, bodies: list[bytes], key: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for body in bodies:
            await producer.send_and_wait(topic, body, key=key.encode())
    finally:
        await producer.stop()


async def dead_letters(bootstrap: str, topic: str, tag: str) -> list[dict[str, Any]]:
    """The DLQ records of a topic whose original value carries `tag`."""
    found = await read_topic(bootstrap, f"{topic}.dlq")
    return [e["data"] for e in found if tag in (e.get("data") or {}).get("value", "")]


def new_tag() -> str:
    return uuid.uuid4().hex[:10]
