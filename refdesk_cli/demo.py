"""`refdesk demo`: one realistic shift from the seed's procedures, against the running stack.

The shift: staff log in (Online); two email tickets that arrived overnight (the ticket
platform's webhook stamps them 03:00 desk time); a renewal question for NW Circulation; a
lost-book bill for the circulation managers; a citing question for the Writing Center; a
patron in crisis; an SMS question whose ticket staff then close, which sends the survey.
At the desk, staff answer one conversation on each channel from the console's API (the
overnight email, the renewal chat once NW Circulation has it, the SMS), and the SMS ticket is
closed there too. The outcome of each is read back from refdesk.interactions,
refdesk.routing and refdesk.notifications, and delivery from the mail folder and the SMS/chat
outboxes; each conversation's console address is printed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from refdesk_cli.replay import post
from refdesk_cli.webhooks import Secrets, build
from shared.events import derived_id

DESK_TZ = ZoneInfo("America/Chicago")
STAFF = ("mgarcia", "tbrooks", "rpatel", "lokafor")


@dataclass
class Step:
    """One thing that happens during the shift, and what the desk procedures expect."""

    label: str
    item: dict[str, Any]
    expect_action: str
    expect_department: str
    marker: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    conversation_id: str | None = None
    decision: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[str, bool] = field(default_factory=dict)
    """notification idempotency key -> found in the mail folder or outbox."""
    status: int | None = None
    """ingest's HTTP status for the message."""
    detail: str = ""
    reply: tuple[str, str] | None = None
    """(staff id, text) a staff member answers with from the console, if any."""
    replied: int | None = None
    """the console API's HTTP status for that reply."""

    @property
    def ok(self) -> bool:
        """The decision is what the procedures expect and every notification was delivered."""
        d = self.decision or {}
        return (
            d.get("action") == self.expect_action
            and d.get("department") == self.expect_department
            and (self.reply is None or self.replied == 202)
            and all(self.delivered.values())
        )


def last_overnight(now: datetime) -> datetime:
    """03:00 desk time most recently before now: outside desk hours on every day."""
    local = now.astimezone(DESK_TZ)
    at = local.replace(hour=3, minute=0, second=0, microsecond=0)
    return at if at < local else at - timedelta(days=1)


def shift(now: datetime) -> list[Step]:
    """The demo's steps (the SMS close is sent later, once its conversation id is known)."""
    night = last_overnight(now).isoformat()
    m = [uuid.uuid4().hex[:10] for _ in range(5)]
    phone = f"+1817555{int(m[0], 16) % 10_000:04d}"
    return [
        # Email tickets forwarded as raw messages, dated when the patron sent them: 03:00,
        # when the desk is closed.
        Step(
            "overnight email: sources",
            {
                "kind": "email",
                "from": "Jordan Lee <jordan.lee@my.tccd.edu>",
                "subject": "Sources for my paper",
                "message_id": f"demo-{m[0]}@mail.tccd.edu",
                "date": night,
                "text": "Do you have any books on the history of jazz in Fort Worth?"
                " I need two sources for my MUSI 1306 paper.",
            },
            "answer",
            "reference",
            reply=(
                "mgarcia",
                "Good morning Jordan, try the catalogue search 'jazz Texas history': two good"
                " books are on the 2nd floor (ML3508.8). I can also show you JSTOR for articles.",
            ),
        ),
        Step(
            "overnight email: JSTOR",
            {
                "kind": "email",
                "from": "Sam Ortiz <sam.ortiz@my.tccd.edu>",
                "subject": "JSTOR",
                "message_id": f"demo-{m[1]}@mail.tccd.edu",
                "date": night,
                "text": "How do I get into JSTOR from home? It keeps asking me to log in.",
            },
            "answer",
            "reference",
        ),
        Step(
            "chat: renewal",
            _chat(f"demo-renew-{m[2]}", "Can I renew my book? It's due tomorrow."),
            "transfer",
            "nw-circulation",
            reply=(
                "tbrooks",
                "Hi, this is NW Circulation. I've renewed it: it's now due in 3 weeks.",
            ),
        ),
        Step(
            "email: lost book bill",
            {
                "kind": "email",
                "from": "Ana Gomez <ana.gomez@my.tccd.edu>",
                "subject": "Lost book",
                "message_id": f"demo-{m[3]}@mail.tccd.edu",
                "text": "I lost a library book and now I have a bill."
                " I'm Ana Gomez, TCC ID 2223334, the book is 1984 by George Orwell.",
            },
            "email_circulation",
            "circulation-managers",
        ),
        Step(
            "chat: citing",
            _chat(f"demo-cite-{m[4]}", "How do I cite a government report in APA 7?"),
            "transfer",
            "writing-center",
        ),
        Step(
            "chat: crisis",
            _chat(
                f"demo-crisis-{m[4]}",
                "I don't feel safe and I've been thinking about hurting myself",
            ),
            "escalate_crisis",
            "care-team",
        ),
        Step(
            "sms: hours, closed with survey",
            {
                "kind": "sms",
                "from": phone,
                "body": "what time does the library close today?",
                "sid": f"SM{uuid.uuid4().hex}",
            },
            "answer",
            "reference",
            reply=("mgarcia", "We close at 9 pm tonight (Mon-Thu 8 am-9 pm)."),
        ),
    ]


def _chat(
    conversation_id: str,
    text: str,
    *,
    channel: str = "chat",
    at: str | None = None,
    patron: dict[str, str] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "chat",
        "type": "chat.message",
        "data": {
            "conversation_id": conversation_id,
            "message_id": f"{conversation_id}-m1",
            "sequence": 1,
            "author": "patron",
            "text": text,
            "channel": channel,
            "patron": patron
            or {"name": "Demo Patron", "email": "demo.patron@my.tccd.edu", "role": "student"},
        },
    }
    if at is not None:
        item["timestamp"] = at
    return item


def channel_of(step: Step) -> str:
    """The channel the patron used (platform events carry it in their data)."""
    return str(step.item.get("data", {}).get("channel") or step.item["kind"])


def provider_id(step: Step) -> str:
    """The provider message id ingest records for the step's message."""
    item = step.item
    if item["kind"] == "sms":
        return str(item["sid"])
    if item["kind"] == "email":
        return str(item["message_id"])
    return str(item["data"]["message_id"])


async def snapshot(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON record on a topic right now (read from the beginning to the end offsets)."""
    import json

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[dict[str, Any]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        found.append(json.loads(record.value or b""))
                    except ValueError:
                        continue
        return found
    finally:
        await consumer.stop()


def delivered(notification: dict[str, Any], *, mail_dir: Path, outbox_dir: Path) -> bool:
    """Whether the notifier's message for this command is in the mail folder or an outbox."""
    key = str(notification["idempotency_key"])
    channel = str(notification["channel"])
    if channel == "email":
        wanted = derived_id("notifier", "message-id", key)
        for path in mail_dir.glob("*.eml") if mail_dir.exists() else []:
            msg = message_from_bytes(path.read_bytes())
            if wanted in str(msg.get("Message-ID", "")):
                return True
        return False
    return (outbox_dir / channel / f"{key}.json").exists()


def _sent_in(step: Step, interactions: list[dict[str, Any]]) -> str | None:
    wanted = provider_id(step).strip("<>").lower()
    for event in interactions:
        data = event.get("data") or {}
        if str(data.get("provider_message_id", "")).strip("<>").lower() == wanted:
            return str(data["conversation_id"])
    return None


async def gather(steps: list[Step], *, bootstrap: str, mail_dir: Path, outbox_dir: Path) -> None:
    """Fill in each step's conversation, decision, notifications and deliveries."""
    interactions = await snapshot(bootstrap, "refdesk.interactions")
    routing = await snapshot(bootstrap, "refdesk.routing")
    commands = await snapshot(bootstrap, "refdesk.notifications")
    for step in steps:
        step.conversation_id = step.conversation_id or _sent_in(step, interactions)
        if step.conversation_id is None:
            continue
        decisions = [
            e["data"]
            for e in routing
            if e.get("data", {}).get("conversation_id") == step.conversation_id
        ]
        step.decision = decisions[0] if decisions else None
        step.notifications = [
            e["data"]
            for e in commands
            if e.get("data", {}).get("conversation_id") == step.conversation_id
        ]
        step.delivered = {
            n["idempotency_key"]: delivered(n, mail_dir=mail_dir, outbox_dir=outbox_dir)
            for n in step.notifications
        }


def _complete(steps: list[Step]) -> bool:
    survey = steps[-1]
    return all(s.decision is not None and all(s.delivered.values()) for s in steps) and any(
        n["kind"] == "survey" for n in survey.notifications
    )


def _staff(staff_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev-{staff_id}-token", "X-Requested-With": "refdesk"}


async def answer_at_the_desk(
    status: httpx.AsyncClient, steps: list[Step], *, settle_s: float
) -> None:
    """Staff answer the steps that have a reply from the console's API, then close the SMS
    ticket there (the router sends its survey)."""
    await asyncio.sleep(settle_s)  # the desk's queue has the routing decisions by now
    for step in steps:
        if step.reply is None or step.conversation_id is None:
            continue
        staff_id, text = step.reply
        answer = await status.post(
            f"/conversations/{step.conversation_id}/replies",
            json={"text": text},
            headers=_staff(staff_id),
        )
        step.replied = answer.status_code
        if answer.status_code >= 300:
            step.detail = f"reply: HTTP {answer.status_code} {answer.text[:200]}"
    sms = steps[-1]
    if sms.conversation_id is not None:
        closed = await status.post(
            f"/conversations/{sms.conversation_id}/close", headers=_staff("mgarcia")
        )
        if closed.status_code >= 300:
            sms.detail = f"close: HTTP {closed.status_code} {closed.text[:200]}"


def console_links(steps: list[Step], status_url: str) -> list[tuple[str, str]]:
    """Each conversation's page in the console."""
    return [
        (s.label, f"{status_url.rstrip('/')}/dashboard/c/{s.conversation_id}")
        for s in steps
        if s.conversation_id is not None
    ]


async def log_in(client: httpx.AsyncClient, staff: tuple[str, ...]) -> list[str]:
    """Start the demo staff's shifts with their development tokens; returns who is Online."""
    online = []
    for staff_id in staff:
        answer = await client.post(
            "/shift/login", headers={"Authorization": f"Bearer dev-{staff_id}-token"}
        )
        if answer.status_code == 200:
            online.append(staff_id)
    return online


async def run(
    *,
    urls: dict[str, str],
    bootstrap: str,
    mail_dir: Path,
    outbox_dir: Path,
    secrets: Secrets,
    wait_s: float = 90.0,
    settle_s: float = 3.0,
) -> list[Step]:
    """Play the shift and return each step with what happened to it."""
    steps = shift(datetime.now(UTC))
    async with httpx.AsyncClient(base_url=urls["status"], timeout=10) as status:
        await log_in(status, STAFF)
    await asyncio.sleep(settle_s)  # the router learns presence from the topic
    with httpx.Client(base_url=urls["ingest"], timeout=15) as ingest:
        for step in steps:
            answer = post(ingest, build(step.item, secrets))
            step.status = answer.status_code
            step.detail = "" if answer.status_code < 300 else answer.text[:200]
        sms = steps[-1]
        deadline = time.monotonic() + wait_s
        while sms.conversation_id is None and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            sms.conversation_id = _sent_in(sms, await snapshot(bootstrap, "refdesk.interactions"))
    await gather(steps, bootstrap=bootstrap, mail_dir=mail_dir, outbox_dir=outbox_dir)
    async with httpx.AsyncClient(base_url=urls["status"], timeout=10) as status:
        await answer_at_the_desk(status, steps, settle_s=settle_s)
    while True:
        await gather(steps, bootstrap=bootstrap, mail_dir=mail_dir, outbox_dir=outbox_dir)
        if _complete(steps) or time.monotonic() > deadline:
            return steps
        await asyncio.sleep(1.0)


def rows(steps: list[Step]) -> list[list[str]]:
    """The table: one row per step."""
    table = []
    for step in steps:
        d = step.decision or {}
        sent = (
            ", ".join(
                f"{n['kind']}:{n['channel']}"
                + ("" if step.delivered.get(n["idempotency_key"]) else " (pending)")
                for n in step.notifications
            )
            or "-"
        )
        table.append(
            [
                step.label,
                channel_of(step),
                str(step.status),
                "yes" if d.get("overnight") else "no",
                str(d.get("action", "?")),
                str(d.get("department", "?")),
                str(d.get("priority", "?")),
                sent,
                "OK" if step.ok else "UNEXPECTED",
            ]
        )
    return table


def as_json(steps: list[Step]) -> list[dict[str, Any]]:
    """What happened to each step, as data (no patron text)."""
    return [
        {
            "step": s.label,
            "channel": channel_of(s),
            "http_status": s.status,
            "conversation_id": s.conversation_id,
            "decision": s.decision,
            "notifications": [
                {
                    "kind": n["kind"],
                    "channel": n["channel"],
                    "delivered": s.delivered.get(n["idempotency_key"], False),
                }
                for n in s.notifications
            ],
            "ok": s.ok,
        }
        for s in steps
    ]


HEADERS = [
    "step",
    "channel",
    "http",
    "overnight",
    "action",
    "department",
    "priority",
    "notifications (delivered)",
    "result",
]
