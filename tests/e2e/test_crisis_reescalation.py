"""A crisis nobody acknowledges reaches the supervisor on shift as an email, through real
processes: the status replica's sweep asks for it, the notifier builds and sends it."""

from __future__ import annotations

import asyncio
import random
import uuid
from email.message import EmailMessage
from typing import Any

import httpx

from refdesk_cli.stack import Stack
from tests.e2e.conftest import System
from tests.eventually import eventually
from tests.integration.ingest.conftest import post_sms, sms_form

SUPERVISOR = {"Authorization": "Bearer dev-lokafor-token"}
"""Linda Okafor: a supervisor of the reference desk and the CARE Team (development roster)."""


async def test_an_unacknowledged_crisis_is_emailed_to_the_supervisor_on_shift(
    e2e_system: System,
) -> None:
    # a status replica of its own that re-escalates after 2 s (the default is 5 minutes)
    replica = Stack(
        run_dir=e2e_system.stack.run_dir / "reescalation",
        env={
            **e2e_system.stack.env,
            "REFDESK_STATUS_GROUP": f"refdesk-status-{uuid.uuid4().hex[:8]}",
            "REFDESK_STATUS_CRISIS_ACK_TIMEOUT_S": "2",
            "REFDESK_STATUS_SWEEP_INTERVAL_S": "0.5",
        },
        ports={"status": 0},
    )
    replica.start("status")
    try:
        await asyncio.to_thread(replica.wait_ready, "status")
        async with httpx.AsyncClient(base_url=replica.url("status"), timeout=10) as status:
            assert (await status.post("/shift/login", headers=SUPERVISOR)).status_code == 200
            sender = f"+1817555{random.randrange(10**4):04d}"
            crisis = "i cant do this anymore, i have the pills and i'm taking them all tonight"
            async with httpx.AsyncClient(base_url=e2e_system.stack.url("ingest")) as ingest:
                assert (await post_sms(ingest, sms_form(crisis, sender=sender))).status_code == 200

            async def escalated() -> dict[str, Any] | None:
                rows = (await status.get("/conversations", headers=SUPERVISOR)).json()["items"]
                mine = [r for r in rows if crisis[:20] in (r["preview"] or "") and r["crisis"]]
                return mine[0] if mine else None

            row = await eventually(escalated, "the crisis is in the CARE Team's queue")
            cid = str(row["conversation_id"])

        def reminders() -> list[EmailMessage]:
            return [
                m
                for m in e2e_system.mail.messages
                if m["To"] == "linda.okafor@example.edu" and cid in str(m["Subject"])
            ]

        # rounds go on every 2 s here until someone acknowledges: the first is the one read
        mail = (await eventually(reminders, "the re-escalation reaches the supervisor"))[0]
    finally:
        replica.stop_all()
    assert str(mail["Subject"]).startswith("URGENT: crisis alert not acknowledged after")
    body = _text(mail)
    assert "has not been acknowledged" in body
    assert "Channel:      SMS (text message)" in body
    assert "cm.maxient.com" in body  # the CARE Team's incident report form
    assert crisis[:20] not in body  # the patron's words stay in the console


def _text(mail: EmailMessage) -> str:
    part: Any = mail.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""
