"""Baselines (B) straight on aiokafka with refdesk's producer settings (acks=all, idempotent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from bench.loadgen import cpu_s

Record = tuple[bytes, bytes, list[tuple[str, bytes]], str]
logging.getLogger("aiokafka").setLevel(logging.ERROR)


def producer(bootstrap: str) -> AIOKafkaProducer:
    """A producer configured as shared.kafka.build_broker configures FastStream's."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=10_000,
        client_id="bench",
    )


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create bench topics (ignoring ones that exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


async def fill(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Write records to a topic as fast as the producer pipelines them, then flush."""
    prod = producer(bootstrap)
    await prod.start()
    try:
        futures = [
            await prod.send(topic, value, key=key, headers=headers)
            for key, value, headers, _ in records
        ]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def send_saturation(
    bootstrap: str, topic: str, records: list[Record], *, concurrency: int, duration: float
) -> dict[str, Any]:
    """`concurrency` tasks each awaiting send_and_wait in turn: acknowledged sends per second."""
    prod = producer(bootstrap)
    await prod.start()
    done = 0
    try:
        for key, value, headers, _ in records[:20]:  # warm up metadata and connections
            await prod.send_and_wait(topic, value, key=key, headers=headers)
        deadline = time.monotonic() + duration

        async def client(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < deadline:
                key, value, headers, _ = records[i % len(records)]
                await prod.send_and_wait(topic, value, key=key, headers=headers)
                done += 1
                i += concurrency

        cpu0, t0 = cpu_s(), time.monotonic()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
        elapsed, cpu = time.monotonic() - t0, cpu_s() - cpu0
    finally:
        await prod.stop()
    return {"rate": done / elapsed, "cpu_us": cpu / max(done, 1) * 1e6}


async def send_open(
    bootstrap: str, topic: str, records: list[Record], *, rate: float, duration: float
) -> dict[str, Any]:
    """send_and_wait offered at a fixed rate; latency from each send's scheduled time."""
    prod = producer(bootstrap)
    await prod.start()
    n = int(rate * duration)
    lat: list[float] = [float("nan")] * n
    try:
        for key, value, headers, _ in records[:20]:
            await prod.send_and_wait(topic, value, key=key, headers=headers)

        async def one(i: int, due: float) -> None:
            key, value, headers, _ = records[i % len(records)]
            await prod.send_and_wait(topic, value, key=key, headers=headers)
            lat[i] = time.monotonic() - due

        tasks = []
        cpu0 = cpu_s()
        t0 = time.monotonic() + 0.02
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.wait(tasks, timeout=30)
        cpu = cpu_s() - cpu0
    finally:
        await prod.stop()
    return {"lat": lat, "cpu_us": cpu / max(n, 1) * 1e6}


async def passthrough(
    bootstrap: str, src: str, dst: str, n: int, *, pipelined: bool = False
) -> dict[str, Any]:
    """Consume n records and produce each to dst, committing after its ack (one message at a
    time: the baseline of the router's target).

    pipelined=True sends a whole poll batch before awaiting the acks and commits once per
    batch: what a consumer that does not await each record could reach (the batch router's
    shape).
    """
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=50,
    )
    prod = producer(bootstrap)
    await consumer.start()
    await prod.start()
    done, first, last = 0, 0.0, 0.0
    cpu0 = 0.0
    try:
        while done < n:
            batch = await consumer.getmany(timeout_ms=500)
            if batch and not first:  # CPU from the first record: not the idle polls before it
                first, cpu0 = time.monotonic(), cpu_s()
            for tp, recs in batch.items():
                if pipelined:
                    futs = [
                        await prod.send(dst, r.value, key=r.key, headers=list(r.headers))
                        for r in recs
                    ]
                    await asyncio.gather(*futs)
                    await consumer.commit({tp: recs[-1].offset + 1})
                    done += len(recs)
                else:
                    for r in recs:
                        await prod.send_and_wait(dst, r.value, key=r.key, headers=list(r.headers))
                        await consumer.commit(
                            {TopicPartition(tp.topic, tp.partition): r.offset + 1}
                        )
                        done += 1
                last = time.monotonic()
        cpu = cpu_s() - cpu0
    finally:
        await prod.stop()
        await consumer.stop()
    return {
        "rate": done / max(last - first, 1e-9),
        "elapsed_s": last - first,
        "cpu_us": cpu / max(done, 1) * 1e6,
    }


def _hop_process(bootstrap: str, src: str, dst: str, n: int, out: Any) -> None:
    """A child process: the pipelined passthrough of n records; its result on `out`."""
    import uvloop

    out.put(uvloop.run(passthrough(bootstrap, src, dst, n, pipelined=True)))


async def paced_hop(
    bootstrap: str, records: list[Record], *, rate: float, duration: float
) -> dict[str, Any]:
    """The Kafka client's own cost per record at a steady `rate`, where poll batches hold one
    record: this process offers records with send_and_wait (open loop, as ingest publishes),
    and a child process consumes each, produces it on and commits (the pipelined passthrough,
    the shape of refdesk's consumers). CPU per record of each: what the client costs at that
    rate when nothing batches. A service that does work of its own between polls finds
    several records waiting at the next one, so its client costs less per record than this
    (`bench.profile` measures the share in the services themselves)."""
    import multiprocessing

    tag = uuid.uuid4().hex[:8]
    src, dst = f"bench.paced.{tag}.in", f"bench.paced.{tag}.out"
    await create_topics(bootstrap, [src, dst], 3)
    n = int(rate * duration)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    # the offering side's 20 warm-up sends reach the child too
    child = ctx.Process(target=_hop_process, args=(bootstrap, src, dst, n + 20, results))
    child.start()
    try:
        await asyncio.sleep(3.0)  # the child joins its group before the first record
        offered = await send_open(bootstrap, src, records, rate=rate, duration=duration)
        hop = await asyncio.to_thread(results.get, True, 60.0)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
    return {
        "rate": rate,
        "produce_us": offered["cpu_us"],
        "hop_us": hop["cpu_us"],
    }
