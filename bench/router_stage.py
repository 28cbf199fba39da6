"""Stage 2: router decisions per second through the broker, a raw passthrough, and explain."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from bench import rawkafka
from bench.e2e_stage import Decisions
from bench.machine import RssPeak, cpu_seconds
from bench.payloads import interaction_records
from bench.system import System
from shared.settings import CommonSettings
from shared.topics import INTERACTIONS

log = logging.getLogger("bench")
GROUP = "refdesk-router-bench"
PACED_RATE = 100.0
"""The end-to-end target's rate, at which the Kafka client's own cost per record is measured."""


def explain_rate(seconds: float) -> dict[str, Any]:
    """routing.decide (rules and learned net) per CPU-second over the labelled set, and the
    rules alone, in alternating slices (bench_explain's loop)."""
    from bench.bench_explain import TARGET, TARGET_SHARE, compare
    from services.router.learned import default_model_path, load_model
    from services.router.policy import default_policy_path, load_policy

    policy = load_policy(default_policy_path())
    model = load_model(default_model_path())
    got, alone = compare(policy, model, seconds)
    return {
        "rate": got,
        "rules_only": alone,
        "target": TARGET,
        "target_share": TARGET_SHARE,
        "model_version": model.version,
    }


async def _commit_at_end(bootstrap: str) -> None:
    """Give the bench group committed offsets at the topic's end: the router reads only the fill."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        count = CommonSettings().topic_partitions  # as the services created the topic
        parts = [TopicPartition(INTERACTIONS.name, p) for p in range(count)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in ends.items()})
    finally:
        await consumer.stop()


def run(root: Path, system: System, *, n: int, quick: bool) -> dict[str, Any]:
    """Fill refdesk.interactions with n interactions, start a router, time n decisions."""
    bootstrap = system.kafka.bootstrap
    records = interaction_records(n, tag=0xA0)
    wanted = {r[3] for r in records}
    stack = system.stack("router-bench", ("router",), {"REFDESK_ROUTER_GROUP": GROUP})

    async def go() -> dict[str, Any]:
        await _commit_at_end(bootstrap)
        await rawkafka.fill(bootstrap, INTERACTIONS.name, records)
        decisions = Decisions(bootstrap)
        await decisions.start()
        started = time.monotonic()
        proc = stack.start("router")
        cpu_first = cpu_last = 0.0
        first = 0
        try:
            with RssPeak({"router": proc.pid}) as rss:
                deadline = started + 60 + n / 10
                while time.monotonic() < deadline and proc.poll() is None:
                    got = wanted.intersection(decisions.arrived)
                    if got and not cpu_first:
                        cpu_first = cpu_seconds(proc.pid)
                        first = len(got)
                    if len(got) == n:
                        cpu_last = cpu_seconds(proc.pid)
                        break
                    await asyncio.sleep(0.05)
            done = wanted.intersection(decisions.arrived)
            stamps = sorted(decisions.kafka_ts[i] for i in done)
            arrivals = sorted(decisions.arrived[i] for i in done)
        finally:
            await decisions.stop()
            await asyncio.to_thread(stack.stop_all)
        # Rate and CPU count the decisions after the first to arrive: the CPU snapshot is taken
        # when they arrive, and a batch consumer's first poll batch arrives all at once (for a
        # consumer deciding one message at a time this is the first decision alone).
        first = max(min(first, len(stamps)), 1)
        span_s = (stamps[-1] - stamps[first - 1]) / 1e3 if len(stamps) > first else float("nan")
        after = len(done) - first
        return {
            "n": n,
            "decided": len(done),
            "first": first,
            "rate": after / span_s if span_s else 0.0,
            "from_start_s": (arrivals[-1] - started) if arrivals else float("nan"),
            "cpu_us": (cpu_last - cpu_first) / max(after, 1) * 1e6 if cpu_last else float("nan"),
            "rss_peak": rss.peak["router"],
        }

    async def passthrough() -> dict[str, Any]:
        await rawkafka.create_topics(bootstrap, ["bench.pt.in", "bench.pt.out", "bench.pt2.out"], 3)
        await rawkafka.fill(bootstrap, "bench.pt.in", records)
        awaited = await rawkafka.passthrough(bootstrap, "bench.pt.in", "bench.pt.out", n)
        pipelined = await rawkafka.passthrough(
            bootstrap, "bench.pt.in", "bench.pt2.out", n, pipelined=True
        )
        paced = await rawkafka.paced_hop(
            bootstrap, records, rate=PACED_RATE, duration=10.0 if quick else 30.0
        )
        return {"awaited": awaited, "pipelined": pipelined, "paced": paced}

    import uvloop

    log.info("router: %d interactions", n)
    router = uvloop.run(go())
    log.info("  router: %.0f decisions/s (%d of %d decided)", router["rate"], router["decided"], n)
    raw = uvloop.run(passthrough())
    log.info(
        "  passthrough: %.0f/s awaited, %.0f/s pipelined; at %.0f/s: %.0f µs a hop, %.0f µs a send",
        raw["awaited"]["rate"],
        raw["pipelined"]["rate"],
        PACED_RATE,
        raw["paced"]["hop_us"],
        raw["paced"]["produce_us"],
    )
    explain = explain_rate(1.0 if quick else 3.0)
    log.info("  explain: %.0f decisions/s", explain["rate"])
    return {"router": router, "passthrough": raw, "explain": explain}
