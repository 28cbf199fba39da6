"""Whether a staff reply by email reached the patron, end to end on the running system: the
notifier sends the reply through a real SMTP server, the patron's mail system reports it
undeliverable (an RFC 3464 delivery status report naming refdesk's Message-ID) and the
patron's mailbox answers with an out-of-office reply; both come back through ingest's raw-MIME
webhook. The console's transcript shows the reply as not delivered, with the reason, and both
as automatic lines; the router records them without a decision (no crisis net misreads the
mail system's "I'm sorry to have to inform you") and nothing answers them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.topics import NOTIFICATIONS
from tests.eventually import eventually
from tests.faults.faults import ADMIN, answer_on_the_desk
from tests.faults.system import System, start_system
from tests.integration.ingest.conftest import signed
from tests.kafka_helpers import caught_up

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(600)]
DESK = "askdesk@tccd.edu"
MIME = {"content-type": "message/rfc822"}


@pytest.fixture
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(Path(tmp_path_factory.mktemp("email-bounces")))
    try:
        yield running
    finally:
        running.stop()


def patron_email(patron: str, marker: str) -> bytes:
    return f"""\
From: Ana Gomez <{patron}>
To: {DESK}
Subject: Is the library open on Saturday? {marker}
Message-ID: <{uuid.uuid4().hex}@mail.example.edu>
Content-Type: text/plain

Is the library open on Saturday? {marker}
""".encode()


def bounce(patron: str, message_id: str) -> bytes:
    """A Postfix delivery status report of refdesk's email to `patron`."""
    return f"""\
From: MAILER-DAEMON@mx.example.edu (Mail Delivery System)
To: {DESK}
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uuid.uuid4().hex}@mx.example.edu>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

<{patron}>: host mx.example.edu said: 550 5.1.1 User unknown

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.edu

Final-Recipient: rfc822; {patron}
Action: failed
Status: 5.1.1

--B1
Content-Type: text/rfc822-headers

From: TCC Library Ask Desk <{DESK}>
To: {patron}
Message-ID: {message_id}

--B1--
""".encode()


def out_of_office(patron: str, message_id: str) -> bytes:
    return f"""\
From: Ana Gomez <{patron}>
To: {DESK}
Subject: Automatic reply: Re: Is the library open on Saturday?
Message-ID: <{uuid.uuid4().hex}@mail.example.edu>
In-Reply-To: {message_id}
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away until January 12 with limited access to email.
""".encode()


async def metric(client: httpx.AsyncClient, name: str) -> float:
    """The value of one sample on a service's /metrics (0 when absent)."""
    text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


async def test_a_bounced_reply_shows_as_not_delivered_and_nothing_answers_the_mail_system(
    system: System,
) -> None:
    marker = uuid.uuid4().hex[:8]
    patron = f"ana.{marker}@my.tccd.edu"
    async with (
        httpx.AsyncClient(base_url=system.stack.url("ingest"), timeout=30) as ingest,
        httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status,
        httpx.AsyncClient(base_url=system.stack.url("router"), timeout=30) as router,
    ):

        async def post(raw: bytes) -> None:
            answer = await ingest.post(
                "/webhooks/email/mime", content=raw, headers={**MIME, **signed(raw)}
            )
            assert answer.status_code == 200, answer.text

        await post(patron_email(patron, marker))

        cid = await answer_on_the_desk(status, patron, f"Yes, 9 to 3. {marker}")

        def mailed() -> list[Any]:
            return [
                m
                for m in system.smtp.handler.messages
                if patron in str(m["To"])
                and marker in m.get_body(("plain",)).get_content()
                and "Yes, 9 to 3" in m.get_body(("plain",)).get_content()
            ]

        [sent] = await eventually(mailed, "the reply at the SMTP server", timeout=60)
        message_id = str(sent["Message-ID"])
        # a mail system's report comes minutes later, when ingest has long read which emails
        # refdesk sent; here it would come at once
        await eventually(
            lambda: caught_up(system.kafka.bootstrap, "refdesk-ingest", NOTIFICATIONS.name),
            "ingest reading which emails refdesk sent",
            timeout=60,
        )
        before = len(system.smtp.handler.messages)
        recorded = "refdesk_router_automatic_recorded_total"
        already = await metric(router, recorded)

        await post(bounce(patron, message_id))
        await post(out_of_office(patron, message_id))

        async def transcript() -> list[dict[str, Any]]:
            got = await status.get(f"/conversations/{cid}", headers=ADMIN)
            return list(got.json()["messages"])

        async def shown() -> list[dict[str, Any]] | None:
            lines = await transcript()
            reply_line = next(
                (
                    ln
                    for ln in lines
                    if ln.get("direction") == "out" and marker in (ln.get("text") or "")
                ),
                None,
            )
            automatic = [ln for ln in lines if ln.get("automatic")]
            state = ((reply_line or {}).get("delivery") or {}).get("state")
            return lines if state == "undelivered" and len(automatic) == 2 else None

        lines = await eventually(shown, "the reply marked not delivered", timeout=60)
        reply_line = next(
            ln for ln in lines if ln.get("direction") == "out" and marker in (ln.get("text") or "")
        )
        assert reply_line["delivery"]["reason"] == "the address does not exist"
        assert sorted(ln["automatic"] for ln in lines if ln.get("automatic")) == [
            "auto_reply",
            "bounce",
        ]

        async def both_recorded() -> bool:
            return await metric(router, recorded) >= already + 2

        await eventually(both_recorded, "the router recording both without a decision", timeout=60)
        await asyncio.sleep(3)  # anything the router had asked for would be sent by now
        assert len(system.smtp.handler.messages) == before  # nobody answered a mail system
