"""A campus system reading refdesk's public stream: copy this and change `handle`.

Needs only aiokafka (pip install aiokafka). Run:

    python examples/public_consumer.py --bootstrap kafka.tccd.edu:9092 --group my-system

Every event is a CloudEvents 1.0 JSON object; the `type` says what `data` holds (see
docs/subscribing.md and docs/schemas/). Rules for a well-behaved consumer:
- use your own consumer group id, never one of refdesk's;
- ignore types you do not know and fields you do not know (additive changes keep the type);
- de-duplicate by the event `id`: a redelivered event keeps its id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer

TOPIC = "refdesk.public"
WANTED = {
    "edu.tccd.refdesk.public.interaction.received.v1",
    "edu.tccd.refdesk.public.conversation.routed.v1",
    "edu.tccd.refdesk.public.conversation.closed.v1",
    "edu.tccd.refdesk.public.department.presence.v1",
}


def handle(event: dict[str, Any]) -> None:
    """Do something with one event; here: print one JSON line."""
    print(
        json.dumps(
            {"id": event["id"], "type": event["type"], "time": event["time"], "data": event["data"]}
        ),
        flush=True,
    )


async def consume(
    bootstrap: str,
    group: str,
    seconds: float | None,
    from_start: bool,
    caught_up: bool = False,
) -> int:
    """Read the public stream until stopped (or for `seconds`, or with `caught_up` until the
    end the stream had when this consumer joined); how many events were handled."""
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_start else "latest",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    seen: set[str] = set()
    handled = 0
    ends: dict[Any, int] = {}
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = json.loads(record.value)
                    except (TypeError, ValueError):
                        continue  # not JSON: nothing refdesk publishes
                    if event.get("type") not in WANTED or event.get("id") in seen:
                        continue
                    seen.add(event["id"])  # a real system keeps this in its own store
                    handle(event)
                    handled += 1
            if batch:
                await consumer.commit()  # after handling: at-least-once
            if caught_up and consumer.assignment():
                ends = ends or await consumer.end_offsets(list(consumer.assignment()))
                if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                    break  # a one-off job (a nightly export, say) ends here
    finally:
        await consumer.stop()
    return handled


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and consume."""
    parser = argparse.ArgumentParser(description="Read refdesk.public")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", required=True, help="your own consumer group id")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument(
        "--from-start",
        action="store_true",
        help="a new group starts at the oldest retained event, not the newest",
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="stop once every event published before the consumer joined is handled",
    )
    args = parser.parse_args(argv)
    handled = asyncio.run(
        consume(args.bootstrap, args.group, args.seconds, args.from_start, args.until_caught_up)
    )
    print(f"handled {handled} events", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
