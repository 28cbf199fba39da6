"""The desk console under load: 10,000 open conversations (routed through the real topics),
50 signed-in staff reading the queue and conversations, replies accepted, a patron's message
reaching an open console, and a staff reply reaching the SMTP server.

Targets (issue "The desk console"): queue and conversation view p99 <= 100 ms with 50 staff at
work (paced reads, each console's stream and polls open; their saturation is shown beside);
a reply accepted p99 <= 50 ms; ingest -> console p50 <= 300 ms, p99 <= 1 s at 10/s; staff reply ->
SMTP DATA p50 <= 300 ms.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.payloads import BASE, TWILIO_TOKEN, interaction_records, twilio_signature
from bench.rawkafka import fill
from bench.system import System
from services.status.consumers import GROUP as STATUS_GROUP
from services.status.consumers import TOPICS as STATUS_TOPICS
from shared.events import derived_id
from shared.lag import measure

log = logging.getLogger("bench.console")
ADMIN = {"Authorization": "Bearer dev-dkim-token"}
SERVICES = ("ingest", "router", "notifier", "status")


def pct(values: list[float], q: float) -> float:
    """The q-quantile of latencies in ms (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    """n, p50 and p99 in ms."""
    return {"n": len(values), "p50": pct(values, 0.5), "p99": pct(values, 0.99)}


async def open_count(status: httpx.AsyncClient) -> int:
    """Open conversations, as the queue gauge counts them."""
    text = (await status.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("refdesk_queue_open_conversations{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def caught_up(bootstrap: str, deadline: float) -> None:
    """Wait until the status service has read everything on its topics (its group's lag,
    measured from the broker, is 0 twice in a row). The open count alone is not enough: the
    services also replay what the broker's earlier stages left, so the count can pass the
    stage's own number while the stage's own interactions are still unread."""
    quiet = 0
    while quiet < 2:
        lag = sum((await measure(bootstrap, {STATUS_GROUP: STATUS_TOPICS})).values())
        quiet = quiet + 1 if lag == 0 else 0
        if lag and time.monotonic() > deadline:
            raise TimeoutError(f"the status service is still {lag} messages behind")
        await asyncio.sleep(1.0)


async def staff_tokens(status: httpx.AsyncClient, n: int, tag: str) -> list[dict[str, str]]:
    """N supervisors with bearer tokens (they see every department)."""
    headers = []
    for i in range(n):
        staff_id = f"bench{tag}{i:02d}"
        body = {
            "id": staff_id,
            "name": f"Bench Staff {i}",
            "email": f"{staff_id}@example.edu",
            "departments": ["reference"],
            "role": "supervisor",
        }
        await status.post("/admin/staff", json=body, headers=ADMIN)
        issued = await status.post(f"/admin/staff/{staff_id}/tokens", json={}, headers=ADMIN)
        headers.append({"Authorization": f"Bearer {issued.json()['token']}"})
    return headers


KEEP_ALIVE = httpx.Limits(keepalive_expiry=4.0)
"""uvicorn closes a connection idle for 5 s; a read sent on it as it closes would fail, so
the staff's clients drop theirs after 4 s (as a browser retries such a read)."""
THINK_S = 2.0
"""Mean pause between one staff member's reads. A librarian on shift opens the queue or a
conversation every few tens of seconds; 2 s is ten times that pace or more."""
POLL_S = 30.0
"""What every open console also asks, every 30 s: Who's Online (/dashboard/state) and the
shift heartbeat (static/console/presence.js)."""


async def paced_readers(
    base: str, tokens: list[dict[str, str]], ids: list[str], seconds: float
) -> dict[str, list[float]]:
    """Staff at work: each has the console open (its live stream and its polls every 30 s)
    and reads the queue, then a conversation, in turn, with pauses drawn from an exponential
    distribution of mean THINK_S. Open loop: a read is due at its scheduled time whatever the
    earlier ones did, and its latency counts from then (a slow answer cannot slow the load)."""
    times: dict[str, list[float]] = {"queue": [], "conversation": [], "poll": []}
    everyone_in = asyncio.Event()
    clock = {"start": 0.0, "stop": 0.0, "connected": 0.0}

    async def drain(stream: httpx.Response) -> None:
        async for _ in stream.aiter_lines():
            pass

    async def timed(kind: str, due: float, request: Any) -> None:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        answer = await request()
        times[kind].append((time.monotonic() - due) * 1000)
        answer.raise_for_status()

    async def one(headers: dict[str, str], rng: random.Random) -> None:
        async with (
            httpx.AsyncClient(
                base_url=base, headers=headers, timeout=60, limits=KEEP_ALIVE
            ) as client,
            client.stream("GET", "/console/events") as stream,
        ):
            stream.raise_for_status()
            pending = [asyncio.create_task(drain(stream))]
            # the reads start 1 s after the last console connected (a shift's sign-ins do not
            # all land in the same second)
            clock["connected"] += 1
            if clock["connected"] == len(tokens):
                clock["start"] = time.monotonic() + 1.0
                clock["stop"] = clock["start"] + seconds
                everyone_in.set()
            await everyone_in.wait()
            start, stop = clock["start"], clock["stop"]
            due, turn = start + rng.expovariate(1 / THINK_S), 0
            while due < stop:
                if turn % 2 == 0:
                    request = functools.partial(client.get, "/conversations", params={"limit": 50})
                    pending.append(asyncio.create_task(timed("queue", due, request)))
                else:
                    cid = rng.choice(ids)
                    request = functools.partial(client.get, f"/conversations/{cid}")
                    pending.append(asyncio.create_task(timed("conversation", due, request)))
                due, turn = due + rng.expovariate(1 / THINK_S), turn + 1
            poll = start + rng.uniform(0, POLL_S)
            while poll < stop:
                state = functools.partial(client.get, "/dashboard/state")
                beat = functools.partial(client.post, "/shift/heartbeat")
                pending.append(asyncio.create_task(timed("poll", poll, state)))
                pending.append(asyncio.create_task(timed("poll", poll, beat)))
                poll += POLL_S
            pending[0].cancel()
            await asyncio.gather(*pending[1:])

    await asyncio.gather(*(one(h, random.Random(i)) for i, h in enumerate(tokens)))
    return times


async def readers(
    base: str, tokens: list[dict[str, str]], ids: list[str], seconds: float
) -> dict[str, Any]:
    """Saturation: each staff member reads the queue, then a conversation, with no pause at
    all (closed loop): how many reads a second the service answers, and how long each waits
    when 50 are always queued."""
    times: dict[str, list[float]] = {"queue": [], "conversation": []}
    began = time.monotonic()
    stop = began + seconds

    async def one(headers: dict[str, str]) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                answer = await client.get("/conversations", params={"limit": 50})
                times["queue"].append((time.perf_counter() - t0) * 1000)
                answer.raise_for_status()
                t0 = time.perf_counter()
                answer = await client.get(f"/conversations/{random.choice(ids)}")
                times["conversation"].append((time.perf_counter() - t0) * 1000)
                answer.raise_for_status()

    await asyncio.gather(*(one(h) for h in tokens))
    reads = len(times["queue"]) + len(times["conversation"])
    return {
        "reads_per_s": reads / (time.monotonic() - began),
        "queue": summary(times["queue"]),
        "conversation": summary(times["conversation"]),
    }


async def replies(
    status: httpx.AsyncClient, headers: dict[str, str], ids: list[str]
) -> tuple[list[float], dict[str, float]]:
    """One reply to each conversation, one at a time: accept latency, and when each was sent."""
    accepted, sent_at = [], {}
    for cid in ids:
        t0 = time.perf_counter()
        answer = await status.post(
            f"/conversations/{cid}/replies", json={"text": f"Bench reply {cid}"}, headers=headers
        )
        accepted.append((time.perf_counter() - t0) * 1000)
        if answer.status_code == 202:
            sent_at[answer.json()["message_id"]] = time.monotonic()
    return accepted, sent_at


def smtp_latency(system: System, sent_at: dict[str, float]) -> list[float]:
    """Staff reply accepted -> its SMTP DATA at the sink, by the reply's Message-ID."""
    wanted = {derived_id("notifier", "message-id", key): t for key, t in sent_at.items()}
    out = []
    with system.sink.lock:
        received = list(system.sink.received)
    for stamp, raw in received:
        mid = str(message_from_bytes(raw).get("Message-ID", ""))
        for needle, t0 in wanted.items():
            if needle in mid:
                out.append((stamp - t0) * 1000)
    return out


async def live_latency(
    system: System, ports: dict[str, int], headers: dict[str, str], rate: float, seconds: float
) -> list[float]:
    """SMS at `rate`/s through ingest; time from ingest's 200 to the console's SSE event."""
    status_url = f"http://127.0.0.1:{ports['status']}"
    seen: dict[str, float] = {}

    async def listen() -> None:
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", f"{status_url}/console/events", headers=headers) as stream,
        ):
            async for line in stream.aiter_lines():
                if line.startswith("data:") and '"message"' in line:
                    data = json.loads(line[5:])
                    seen.setdefault(data["conversation_id"], time.monotonic())

    listener = asyncio.create_task(listen())
    await asyncio.sleep(1.0)
    accepted: dict[str, float] = {}
    url = f"{BASE}/webhooks/sms"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['ingest']}") as ingest:
        n = int(rate * seconds)
        start = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            phone = f"+1682555{i:04d}"
            form = {
                "MessageSid": f"SM{derived_id('bench-live', str(start), str(i)).replace('-', '')}",
                "AccountSid": "AC" + "0" * 32,
                "From": phone,
                "To": "+18175550100",
                "Body": f"is the library open late tonight {i}",
            }
            sig = twilio_signature(url, form, TWILIO_TOKEN)
            answer = await ingest.post(
                "/webhooks/sms",
                content=urlencode(form),
                headers={
                    "X-Twilio-Signature": sig,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            if answer.status_code == 200:
                accepted[phone] = time.monotonic()
    await asyncio.sleep(5.0)
    listener.cancel()
    out = []
    async with httpx.AsyncClient(base_url=status_url, headers=headers, timeout=30) as status:
        for phone, t0 in accepted.items():
            rows = (await status.get("/conversations", params={"contact": phone})).json()["items"]
            if rows and rows[0]["conversation_id"] in seen:
                out.append((seen[rows[0]["conversation_id"]] - t0) * 1000)
    return out


def run(root: Path, system: System, *, quick: bool) -> dict[str, Any]:
    """Start the services, fill the desk, measure."""
    n_open = 2000 if quick else 10_000
    n_staff = 20 if quick else 50
    stack = system.stack("console", SERVICES)
    stack.start_all(SERVICES)
    ports = dict(stack.ports)
    base = f"http://127.0.0.1:{ports['status']}"

    async def go() -> dict[str, Any]:
        tag = f"{int(time.time()) % 100000:05d}"
        records = interaction_records(n_open, int(tag))
        await fill(system.kafka.bootstrap, "refdesk.interactions", records)
        ids = [r[0].decode() for r in records]
        async with httpx.AsyncClient(base_url=base, timeout=30) as status:
            deadline = time.monotonic() + 300
            while await open_count(status) < n_open and time.monotonic() < deadline:
                await asyncio.sleep(2.0)
            # after the earlier stages, status may first finish what they left on the broker
            await caught_up(system.kafka.bootstrap, deadline + 600)
            filled = await open_count(status)
            log.info("desk holds %d open conversations", filled)
            tokens = await staff_tokens(status, n_staff, tag)
            paced = await paced_readers(base, tokens, ids, 20 if quick else 60)
            saturated = await readers(base, tokens, ids, 10 if quick else 20)
            email_ids = [cid for cid, r in zip(ids, records, strict=True) if b'"email"' in r[1]]
            accepted, sent_at = await replies(status, tokens[0], email_ids[:200])
        await asyncio.sleep(5.0)
        live = await live_latency(system, ports, tokens[1], 10.0, 10 if quick else 30)
        return {
            "open": filled,
            "staff": n_staff,
            "think_s": THINK_S,
            "queue": summary(paced["queue"]),
            "conversation": summary(paced["conversation"]),
            "polls": summary(paced["poll"]),
            "saturated": saturated,
            "reply_accepted": summary(accepted),
            "reply_to_smtp": summary(smtp_latency(system, sent_at)),
            "ingest_to_console": summary(live),
        }

    try:
        return asyncio.run(go())
    finally:
        stack.stop_all()


def targets(c: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    """(what, measured ms, goal ms; None: shown for reference)."""
    pace = f"{c['staff']} staff, a read each every {c.get('think_s', THINK_S):g} s on average"
    rows: list[tuple[str, float, float | None]] = [
        (f"queue p99 ({c['open']:,} open, {pace})", c["queue"]["p99"], 100),
        ("conversation view p99", c["conversation"]["p99"], 100),
        ("reply accepted p99", c["reply_accepted"]["p99"], 50),
        ("ingest -> console p50 at 10/s", c["ingest_to_console"]["p50"], 300),
        ("ingest -> console p99 at 10/s", c["ingest_to_console"]["p99"], 1000),
        ("staff reply -> SMTP DATA p50", c["reply_to_smtp"]["p50"], 300),
    ]
    saturated = c.get("saturated")
    if saturated:
        rows += [
            (
                f"the same {c['staff']} staff without pauses ({saturated['reads_per_s']:,.0f} "
                "reads/s answered): queue p99",
                saturated["queue"]["p99"],
                None,
            ),
            ("... conversation view p99", saturated["conversation"]["p99"], None),
        ]
    return rows
