"""Replay: a fresh status database with its consumer group rewound rebuilds the same queue."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.eventually import eventually
from tests.faults import report
from tests.faults.faults import queue_ids
from tests.faults.system import System
from tests.faults.test_short import assert_clean
from tests.faults.traffic import drive, flatten, make_traffic, settle

pytestmark = pytest.mark.timeout(600)
STABLE = (
    "conversation_id",
    "channel",
    "department",
    "priority",
    "overnight",
    "crisis",
    "opened_at",
)


def stable(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    """The queue in desk order, without what depends on the clock (age) or on staff actions."""
    return [tuple(row[k] for k in STABLE) for row in rows]


async def test_rewound_status_rebuilds_the_same_queue(system: System) -> None:
    convs = make_traffic(300)
    await drive(system, convs)
    outcome = await settle(
        system, flatten(convs), "replay: traffic before the rebuild", timeout=300
    )
    assert_clean(outcome)
    chats = {item.conversation for conv in convs for item in conv if item.channel == "chat"}

    async def all_queued() -> bool:
        return chats <= {row["conversation_id"] for row in await queue_ids(system)}

    await eventually(all_queued, "every conversation in the queue", timeout=120, every=1.0)
    before = stable(await queue_ids(system))

    await asyncio.to_thread(system.stack.stop, "status")
    for suffix in ("", "-wal", "-shm"):
        (system.stack.run_dir / f"status.db{suffix}").unlink(missing_ok=True)
    rewound = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.faults.rewind",
            "--bootstrap",
            system.bootstrap,
            "--group",
            "refdesk-status",
            "refdesk.interactions",
            "refdesk.routing",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "refdesk.routing 0 -> 0" in rewound.stdout
    await asyncio.to_thread(system.restart, "status")

    async def rebuilt() -> bool:
        return stable(await queue_ids(system)) == before

    await eventually(rebuilt, "the rebuilt queue equal to the original", timeout=180, every=1.0)
    report.add(
        {
            "fault": "replay: status rebuilt from a rewound group",
            "sent": len(before),
            "received": len(before),
            "lost": 0,
            "duplicated": 0,
        },
        full=False,
    )
