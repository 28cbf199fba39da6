"""`python -m bench.status_apply`: the status consumer's CPU per interaction for applying events.

Lost-book texts as the consumer sees them (the patron's message, the routing decision, the
circulation email requested, its outcome), applied through `apply_batch` and committed in poll
batches of one topic each (25 interactions a batch by default) to a fresh SQLite database. CPU
is the process's (the event loop and aiosqlite's thread), measured after a warm-up of two
batches per topic. Compare trees by running it from each checkout, alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel

from bench.machine import loadavg
from services.status.handlers import Assigning, apply_batch
from shared.db import create_engine, migrate, session_factory
from shared.events import (
    Action,
    Channel,
    DeliveryState,
    InteractionReceived,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Patron,
    Priority,
    RoutingDecided,
)

T0 = datetime(2026, 9, 14, 15, 0, tzinfo=UTC)
WARM_BATCHES = 2


def lost_book(cid: str, at: datetime) -> list[tuple[str, BaseModel]]:
    """The four events of a lost-book text, with their event ids."""
    later = at + timedelta(seconds=1)
    return [
        (
            f"i-{cid}",
            InteractionReceived(
                interaction_id=f"i-{cid}",
                conversation_id=cid,
                channel=Channel.SMS,
                provider="twilio",
                provider_message_id=f"SM{cid}",
                patron=Patron(contact="+18175550123"),
                text="I lost my library book",
                received_at=at,
            ),
        ),
        (
            f"r-{cid}",
            RoutingDecided(
                decision_id=f"r-{cid}",
                interaction_id=f"i-{cid}",
                conversation_id=cid,
                channel=Channel.SMS,
                department="nw-circulation",
                overnight=False,
                policy_version="bench",
                action=Action.EMAIL_CIRCULATION,
                priority=Priority.NORMAL,
                decided_at=later,
            ),
        ),
        (
            f"n-{cid}",
            NotificationRequested(
                idempotency_key=f"mail-{cid}",
                kind=NotificationKind.CIRCULATION_EMAIL,
                channel=Channel.EMAIL,
                recipient="circ@example.edu",
                conversation_id=cid,
                requested_at=later,
                context={"question": "lost book", "channel": "sms", "conversation_ref": cid},
            ),
        ),
        (
            f"d-{cid}",
            NotificationDelivered(
                idempotency_key=f"mail-{cid}",
                conversation_id=cid,
                kind=NotificationKind.CIRCULATION_EMAIL,
                channel=Channel.EMAIL,
                state=DeliveryState.SENT,
                at=later + timedelta(seconds=1),
            ),
        ),
    ]


def batches(groups: int, per_batch: int) -> list[list[tuple[str, BaseModel]]]:
    """`groups` x 4 poll batches: each group's messages, then its decisions, requests and
    outcomes, as four topics' batches would arrive."""
    out: list[list[tuple[str, BaseModel]]] = []
    for group in range(groups):
        at = T0 + timedelta(minutes=group)
        events = [lost_book(f"c-{group}-{i}", at) for i in range(per_batch)]
        out.extend([interaction[topic] for interaction in events] for topic in range(4))
    return out


async def measure(groups: int, per_batch: int, root: Path) -> float:
    """CPU milliseconds per interaction over the measured batches."""
    engine = create_engine(f"sqlite+aiosqlite:///{root / 'status.db'}")
    await migrate(engine, "status")
    sessions = session_factory(engine)
    todo = batches(groups + WARM_BATCHES, per_batch)
    warm = 4 * WARM_BATCHES
    try:
        started = 0.0
        for index, batch in enumerate(todo):
            if index == warm:
                started = time.process_time()
            async with sessions() as session:
                await apply_batch(session, batch, assigning=Assigning())
                await session.commit()
        return (time.process_time() - started) * 1000 / (groups * per_batch)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.status_apply", description=__doc__)
    parser.add_argument("--groups", type=int, default=60, help="measured groups of 4 batches")
    parser.add_argument("--per-batch", type=int, default=25, help="interactions per batch")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {loadavg()}")
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="refdesk-status-apply-") as tmp:
            ms = asyncio.run(measure(args.groups, args.per_batch, Path(tmp)))
        interactions = args.groups * args.per_batch
        print(f"run {run}: {ms:.3f} ms of CPU per interaction ({interactions} interactions)")


if __name__ == "__main__":
    main()
