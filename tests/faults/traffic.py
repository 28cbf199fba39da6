"""Webhook traffic whose every interaction can be followed end to end by id.

Chat messages carry a per-conversation `sequence` (and each conversation is sent in order),
so loss, duplication and reordering are visible; SMS "HOURS" texts exercise the SMS lane.
Each chat message asks about a lost book, which the policy always routes to circulation by
email, so every interaction has one notification whose key the test can derive.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from services.notifier.messages import make_message_id
from services.notifier.sms import outbox_path
from shared.events import derived_id
from tests.faults.system import System, ledger_summary
from tests.integration.ingest.conftest import signed, sms_form, twilio_headers
from tests.kafka_helpers import group_lag, read_topic

LOST_BOOK = (
    "I lost a library book, what happens now? I'm Ana Gomez, TCC ID 2223334, the book is 1984"
)
DOMAIN = "refdesk.tccd.edu"


@dataclass
class Item:
    """One webhook the provider keeps retrying until it is answered 2xx."""

    channel: str  # "chat" or "sms"
    conversation: str
    seq: int
    interaction_id: str
    expected_key: str
    body: bytes
    webhook_id: str = ""
    statuses: list[int | str] = field(default_factory=list)

    def request(self) -> tuple[str, bytes, dict[str, str]]:
        """Path, body and headers of one attempt (signatures are fresh on each attempt)."""
        if self.channel == "chat":
            headers = {
                **signed(self.body, msg_id=self.webhook_id),
                "content-type": "application/json",
            }
            return "/webhooks/chat", self.body, headers
        form = dict(json.loads(self.body))
        return "/webhooks/sms", urlencode(form).encode(), twilio_headers(form)

    @property
    def lane(self) -> str:
        return "email" if self.channel == "chat" else "sms"


def chat_item(run: str, conv: int, seq: int) -> Item:
    conversation = f"chat-{run}-{conv}"
    body = json.dumps(
        {
            "type": "chat.message",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {
                "conversation_id": conversation,
                "message_id": f"m{seq}",
                "sequence": seq,
                "author": "patron",
                "text": f"{LOST_BOOK} (ref {conversation} s{seq})",
                "channel": "chat",
                "patron": {
                    "name": "Ana Gomez",
                    "email": "ana.gomez@my.tccd.edu",
                    "role": "student",
                },
            },
        }
    ).encode()
    iid = derived_id("chat", conversation, f"m{seq}")
    return Item(
        "chat",
        conversation,
        seq,
        iid,
        derived_id(iid, "circulation-email"),
        body,
        webhook_id=f"msg_{conversation}_{seq}",
    )


def sms_item(phone_index: int, seq: int) -> Item:
    phone = f"+1817555{phone_index % 10_000:04d}"
    form = sms_form("HOURS", sid=f"SM{uuid.uuid4().hex}", sender=phone)
    iid = derived_id("sms", form["MessageSid"])
    return Item("sms", phone, seq, iid, derived_id(iid, "keyword"), json.dumps(form).encode())


def make_traffic(
    total: int, *, sms_every: int = 10, per_conversation: int = 20
) -> list[list[Item]]:
    """`total` interactions as conversations, each a list to send in order."""
    run = uuid.uuid4().hex[:6]
    phone_base = int(uuid.uuid4().int % 9_000)
    convs: list[list[Item]] = []
    n_sms = total // sms_every
    n_chat = total - n_sms
    for c in range(0, n_chat, per_conversation):
        convs.append([chat_item(run, c, s) for s in range(min(per_conversation, n_chat - c))])
    for p in range(0, n_sms, 5):
        convs.append([sms_item(phone_base + p, s) for s in range(min(5, n_sms - p))])
    return convs


@dataclass
class Progress:
    answered: int = 0


async def send_one(client: httpx.AsyncClient, base: str, item: Item) -> None:
    """POST until answered 2xx, as a provider retries (same webhook id / message SID)."""
    while True:
        path, content, headers = item.request()
        try:
            response = await client.post(base + path, content=content, headers=headers)
            item.statuses.append(response.status_code)
            if response.status_code < 300:
                return
        except httpx.HTTPError as exc:
            item.statuses.append(type(exc).__name__)
        await asyncio.sleep(0.5)


async def drive(
    system: System,
    convs: list[list[Item]],
    *,
    concurrency: int = 12,
    during: Callable[[Progress], Awaitable[None]] | None = None,
    base: str | None = None,
    keepalive: bool = True,
) -> Progress:
    """Send every conversation (in order within each) while `during` injects faults: to ingest,
    or to `base` (a balancer in front of its replicas; `keepalive=False` opens a connection per
    request, so a balancer spreads the requests)."""
    progress = Progress()
    queue: asyncio.Queue[list[Item]] = asyncio.Queue()
    for conv in convs:
        queue.put_nowait(conv)
    base = base or system.stack.url("ingest")
    limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            for item in queue.get_nowait():
                await send_one(client, base, item)
                progress.answered += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        faults = [asyncio.create_task(during(progress))] if during else []
        await asyncio.gather(*workers, *faults)
    return progress


# ---- checking -----------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    sent: int
    received: int
    lost: int
    duplicated: int
    duplicate_decisions: int
    reordered: int
    email_copies: Counter[str]
    sms_copies: Counter[str]
    missing: list[str]

    def row(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


async def check(system: System, items: list[Item], fault: str) -> Outcome:
    """Follow every interaction: in the topic, one decision, its commands, each delivered."""
    bootstrap = system.bootstrap
    interactions, routing, notifications = await asyncio.gather(
        read_topic(bootstrap, "refdesk.interactions"),
        read_topic(bootstrap, "refdesk.routing"),
        read_topic(bootstrap, "refdesk.notifications"),
    )
    in_topic: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for e in interactions:
        data = e.get("data") or {}
        if "interaction_id" in data:
            in_topic[data["interaction_id"]].append((e["_offset"], data.get("sequence") or 0))
    decisions: dict[str, set[str]] = defaultdict(set)
    for e in routing:
        data = e.get("data") or {}
        if "decision_id" in data:
            decisions[data["interaction_id"]].add(data["decision_id"])
    commands: dict[str, dict[str, str]] = defaultdict(dict)
    for e in notifications:
        data = e.get("data") or {}
        if data.get("interaction_id"):
            commands[data["interaction_id"]][data["idempotency_key"]] = data["channel"]
    email = Counter(str(m["Message-ID"]) for m in list(system.smtp.handler.messages))
    sms = Counter(r["token"] for r in list(system.sms.requests))
    chat_folder = system.stack.run_dir / "outbox" / "chat"

    def delivered(key: str, channel: str) -> bool:
        if channel == "email":
            return email[make_message_id(key, DOMAIN)] > 0
        if channel == "sms":
            return sms[key] > 0
        return outbox_path(chat_folder, key).exists()

    received, missing, keys = 0, [], {}
    for item in items:
        mine = commands.get(item.interaction_id, {})
        keys.update(mine)
        ok = (
            item.interaction_id in in_topic
            and len(decisions.get(item.interaction_id, ())) >= 1
            and item.expected_key in mine
            and all(delivered(k, ch) for k, ch in mine.items())
        )
        if ok:
            received += 1
        else:
            missing.append(item.interaction_id)
    dup_decisions = sum(max(0, len(decisions.get(i.interaction_id, ())) - 1) for i in items)
    dup_sends = sum(
        max(0, email[make_message_id(k, DOMAIN)] - 1)
        if ch == "email"
        else max(0, sms[k] - 1)
        if ch == "sms"
        else 0
        for k, ch in keys.items()
    )
    reordered = 0
    by_conv: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for item in items:
        if item.channel == "chat" and in_topic.get(item.interaction_id):
            by_conv[item.conversation].append(min(in_topic[item.interaction_id]))
    for seen in by_conv.values():
        seqs = [s for _, s in sorted(seen)]
        reordered += int(seqs != sorted(seqs))
    return Outcome(
        fault,
        len(items),
        received,
        len(items) - received,
        dup_sends + dup_decisions,
        dup_decisions,
        reordered,
        email,
        sms,
        missing,
    )


async def settle(
    system: System, items: list[Item], fault: str, *, timeout: float = 600.0
) -> Outcome:
    """Check until nothing is missing (or `timeout`); then, once the system is quiet, once more
    for late duplicates."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    outcome = await check(system, items, fault)
    while outcome.lost and loop.time() < deadline:
        await asyncio.sleep(1)
        outcome = await check(system, items, fault)
    await quiet(system, until=loop.time() + 60)
    return await check(system, items, fault)


QUIET_GROUPS = (
    ("refdesk-router", "refdesk.interactions"),
    ("refdesk-notifier", "refdesk.notifications"),
)


async def quiet(system: System, *, until: float) -> None:
    """Wait until nothing can still change the outcome: the router and the notifier have
    committed to the end of their inputs (a batch redelivered after a kill is done) and the
    notifier has nothing pending (a send leased by a killed notifier was retried). Returns at
    `until` regardless: the check that follows reports what is still missing."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            lags = [await group_lag(system.bootstrap, g, t) for g, t in QUIET_GROUPS]
            if not any(lags) and (await ledger_summary(system))["pending"] == 0:
                return
        except Exception:  # a service or the broker still coming back
            pass
        await asyncio.sleep(1)


def flatten(convs: list[list[Item]]) -> list[Item]:
    return [item for conv in convs for item in conv]
