"""An HTTP/1.1 load generator for one process: open-loop at a fixed rate, or closed-loop.

Open loop: request i is due at t0 + i/rate whatever happened to earlier requests, and its
latency is measured from that scheduled time, so a slow server cannot slow the offered load
down (no coordinated omission). A request that finds no idle keep-alive connection opens a
new one (up to max_conns), so queueing happens in the server, where it belongs.

Run: python -m bench.loadgen SPEC.json OUT.json
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import resource
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bench.machine import cpu_seconds
from bench.payloads import RENEW, lost_book, message_sid, sms_request

Request = Callable[[int], bytes]


def cpu_s() -> float:
    """User + system CPU seconds of this process."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


KEEPALIVE_S = 4.0
"""How long an idle connection is reused: under uvicorn's keep-alive timeout (5 s), as an HTTP
client's pool keeps it, so a request is never written to a connection the server has closed."""


class Conn:
    """One keep-alive connection; one request at a time (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used_at = time.monotonic()

    async def send(self, data: bytes) -> int:
        """Send a request and read the whole response; returns the status code."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        self.used_at = time.monotonic()
        return int(head[9:12])

    def close(self) -> None:
        """Drop the connection."""
        self.writer.close()


class Pool:
    """Idle connections, opened on demand up to a cap; requests past the cap wait in order."""

    def __init__(self, port: int, max_conns: int) -> None:
        self.port, self.max_conns = port, max_conns
        self.idle: list[Conn] = []
        self.waiters: deque[asyncio.Future[Conn]] = deque()
        self.total = 0
        self.opened = 0

    async def _open(self) -> Conn:
        self.total += 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 16)
        except Exception:
            self.total -= 1
            raise
        self.opened += 1
        return Conn(reader, writer)

    async def acquire(self) -> Conn:
        """An idle connection, a new one, or the next one released."""
        while self.idle:
            conn = self.idle.pop()
            if time.monotonic() - conn.used_at < KEEPALIVE_S and not conn.reader.at_eof():
                return conn
            conn.close()  # the server may have closed it already
            self.total -= 1
        if self.total < self.max_conns:
            return await self._open()
        fut: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        return await fut

    def release(self, conn: Conn) -> None:
        """Hand a connection to the first waiter, or keep it idle."""
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self.idle.append(conn)

    def discard(self, conn: Conn) -> None:
        """Forget a broken connection (a waiter gets a fresh one)."""
        conn.close()
        self.total -= 1
        if self.waiters:
            asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        try:
            self.release(await self._open())
        except Exception:
            if self.waiters:
                self.waiters.popleft().cancel()


async def exchange(pool: Pool, data: bytes) -> int:
    """One request over a pooled connection; status 0 when the connection failed."""
    try:
        conn = await pool.acquire()
    except Exception:
        return 0
    try:
        status = await conn.send(data)
    except Exception:
        pool.discard(conn)
        return 0
    pool.release(conn)
    return status


async def open_loop(pool: Pool, reqs: list[bytes], rate: float, timeout: float) -> dict[str, Any]:
    """Offer reqs at a fixed rate; latency from each request's scheduled start."""
    n = len(reqs)
    sched, end, status, lag = [0.0] * n, [math.nan] * n, [0] * n, [0.0] * n
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        status[i] = await exchange(pool, reqs[i])
        end[i] = time.monotonic()

    cpu0 = cpu_s()
    t0 = time.monotonic() + 0.02
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sched[i] = due
        lag[i] = time.monotonic() - due
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    offered_until = time.monotonic()
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout)
    cpu1 = cpu_s()
    for task in tasks:
        task.cancel()
    return {
        "sched": sched,
        "end": end,
        "status": status,
        "cpu_s": cpu1 - cpu0,
        "offer_s": offered_until - t0,
        "lag_max_ms": max(lag, default=0) * 1e3,
        "lag_p99_ms": sorted(lag)[int(0.99 * (n - 1))] * 1e3 if n else 0.0,
        "conns": pool.opened,
    }


async def closed_loop(
    pool: Pool, make: Request, concurrency: int, duration: float
) -> dict[str, Any]:
    """`concurrency` clients, each sending its next request when the last is answered."""
    counter = itertools.count()
    starts: list[float] = []
    ends: list[float] = []
    codes: list[int] = []
    deadline = time.monotonic() + duration

    async def client() -> None:
        while time.monotonic() < deadline:
            data = make(next(counter))
            started = time.monotonic()
            code = await exchange(pool, data)
            starts.append(started)
            ends.append(time.monotonic())
            codes.append(code)

    cpu0, t0 = cpu_s(), time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {
        "sched": starts,
        "end": ends,
        "status": codes,
        "cpu_s": cpu_s() - cpu0,
        "offer_s": time.monotonic() - t0,
        "window": [t0, deadline],
        "conns": pool.opened,
    }


def request_maker(spec: dict[str, Any]) -> Request:
    """Request i of the run the spec describes."""
    host = f"127.0.0.1:{spec['port']}"
    tag, base, mod = int(spec["tag"]), str(spec["phone_base"]), int(spec.get("phone_mod", 10_000))
    lost = spec["kind"] == "lostbook"
    tcc = int(spec.get("tcc_base", 2_000_000))

    def make(i: int) -> bytes:
        text = lost_book(tcc + i) if lost else RENEW
        return sms_request(host, sid=message_sid(tag, i), sender=f"{base}{i % mod:04d}", text=text)

    return make


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up (results discarded), then the measured phase."""
    make = request_maker(spec)
    pool = Pool(int(spec["port"]), int(spec.get("max_conns", 512)))
    warm = int(spec.get("warmup", 0) * spec.get("warmup_rate", 50))
    if warm:
        wreqs = [make(10_000_000 + k) for k in range(warm)]
        await open_loop(pool, wreqs, float(spec.get("warmup_rate", 50)), spec.get("timeout", 30))
    pid = spec.get("server_pid")
    if spec["mode"] == "open":
        reqs = [make(i) for i in range(int(spec["rate"] * spec["duration"]))]
        server0 = cpu_seconds(pid) if pid else 0.0
        result = await open_loop(pool, reqs, float(spec["rate"]), float(spec.get("timeout", 30)))
    else:
        server0 = cpu_seconds(pid) if pid else 0.0
        result = await closed_loop(pool, make, int(spec["concurrency"]), float(spec["duration"]))
    result["server_cpu_s"] = cpu_seconds(pid) - server0 if pid else None
    for conn in pool.idle:
        conn.close()
    return result


def main() -> None:
    """Read the spec, run, write the results."""
    import uvloop

    spec = json.loads(open(sys.argv[1]).read())
    result = uvloop.run(run(spec))
    with open(sys.argv[2], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
