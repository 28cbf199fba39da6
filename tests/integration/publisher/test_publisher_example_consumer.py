"""examples/public_consumer.py against the real broker: it prints public events, once each."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.events import CloudEvent, PublicDepartmentPresence, new_event
from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from shared.topics import PUBLIC

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "public_consumer.py"
pytestmark = pytest.mark.timeout(120)


async def test_the_example_consumer_prints_known_types_once(kafka_bootstrap: str) -> None:
    await ensure_topics(CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1))
    dept = f"dept-{uuid.uuid4().hex[:8]}"
    known = new_event(
        PublicDepartmentPresence(department=dept, online=2, changed_at=datetime.now(UTC)),
        source="tests/publisher",
    )
    future = CloudEvent[dict[str, object]](
        id=str(uuid.uuid4()),
        source="tests/publisher",
        time=datetime.now(UTC),
        type="edu.tccd.refdesk.public.department.presence.v9",
        data={"department": dept},
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in (known, known, future):  # a redelivery, and a type it does not know
            await producer.send_and_wait(
                PUBLIC.name, event.model_dump_json().encode(), key=dept.encode()
            )
    finally:
        await producer.stop()

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--bootstrap",
        kafka_bootstrap,
        "--group",
        f"test-example-{uuid.uuid4().hex}",
        "--from-start",
        "--until-caught-up",
        "--seconds",
        "60",  # a bound only: it stops once it has read what was published above
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    ours = [e for e in lines if e["data"].get("department") == dept]
    assert [e["id"] for e in ours] == [known.id]
    assert ours[0]["data"]["online"] == 2
    assert b"handled" in err
