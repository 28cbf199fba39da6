"""The desk console's API through real processes and the real broker: an email ticket read and
answered (the reply reaches the SMTP server threaded under the patron's Message-ID and the
transcript shows it sent), and transcripts that survive a status restart and are rebuilt by
a new consumer group from the topics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from refdesk_cli.stack import Stack
from tests.e2e.conftest import System
from tests.eventually import eventually
from tests.integration.ingest.conftest import mailgun_form

DESK = {"Authorization": "Bearer dev-mgarcia-token"}


async def conversation(client: httpx.AsyncClient, cid: str) -> dict[str, Any] | None:
    answer = await client.get(f"/conversations/{cid}", headers=DESK)
    return answer.json() if answer.status_code == 200 else None


async def test_an_email_ticket_is_read_answered_threaded_and_kept(e2e_system: System) -> None:
    marker = uuid.uuid4().hex[:10]
    text = f"Hello, I need three peer-reviewed articles on urban heat islands (ref {marker})."
    form = mailgun_form(text=text, subject=f"Articles for ENGL 1302 {marker}")
    patron_mid = form["Message-Id"].strip("<>")
    async with httpx.AsyncClient(base_url=e2e_system.stack.url("ingest")) as ingest:
        assert (await ingest.post("/webhooks/email", data=form)).status_code == 200

    status = httpx.AsyncClient(base_url=e2e_system.stack.url("status"), timeout=10)
    async with status:

        async def listed() -> dict[str, Any] | None:
            rows = (await status.get("/conversations", headers=DESK)).json()["items"]
            return next((r for r in rows if marker in (r["preview"] or "")), None)

        row = await eventually(listed, "the ticket is on the desk with its preview")
        cid = row["conversation_id"]
        assert row["channel_label"] == "Email"
        reply = await status.post(
            f"/conversations/{cid}/replies",
            json={
                "text": f"Hi Ana, try Academic Search Complete with 'urban heat island'. {marker}"
            },
            headers=DESK,
        )
        assert reply.status_code == 202, reply.text

        def threaded(m: Any) -> bool:
            return marker in str(m.get("Subject", "")) and m.get("In-Reply-To") is not None

        mails = await eventually(
            lambda: _mail(e2e_system, threaded), "the reply reaches the SMTP server"
        )
        mail = mails[0]
        assert mail["Subject"].startswith("Re: ")
        assert mail["In-Reply-To"].strip("<>") == patron_mid
        assert patron_mid in mail["References"]

        async def sent() -> dict[str, Any] | None:
            view = await conversation(status, cid)
            outs = [m for m in (view or {}).get("messages", []) if m["kind"] == "staff_reply"]
            return outs[0] if outs and outs[0]["delivery"]["state"] == "sent" else None

        line = await eventually(sent, "the transcript shows the reply as sent")
        assert marker in line["text"] and line["author"] == "mgarcia"

        # a status restart keeps the transcript
        e2e_system.stack.stop("status")
        e2e_system.stack.start("status")
        await asyncio.to_thread(e2e_system.stack.wait_ready, "status")
        view = await conversation(status, cid)
        assert view is not None
        assert [m["direction"] for m in view["messages"]][:1] == ["in"]

    # a new replica database and consumer group rebuilds it from the topics
    rebuilt = Stack(
        run_dir=e2e_system.stack.run_dir / "rebuilt",
        env={
            **e2e_system.stack.env,
            "REFDESK_STATUS_GROUP": f"refdesk-status-{uuid.uuid4().hex[:8]}",
        },
        ports={"status": 0},
    )
    rebuilt.start("status")
    try:
        await asyncio.to_thread(rebuilt.wait_ready, "status")
        async with httpx.AsyncClient(base_url=rebuilt.url("status"), timeout=10) as fresh:

            async def restored() -> dict[str, Any] | None:
                view = await conversation(fresh, cid)
                kinds = [m["kind"] for m in (view or {}).get("messages", [])]
                return view if "message" in kinds and "staff_reply" in kinds else None

            view = await eventually(restored, "the rebuilt replica shows the transcript")
        assert any(marker in (m["text"] or "") for m in view["messages"] if m["direction"] == "in")
    finally:
        rebuilt.stop_all()
    # the patron's and the librarian's words appear in no log line at INFO or above
    for log in [*e2e_system.stack.run_dir.glob("logs/*.log"), *rebuilt.run_dir.glob("logs/*.log")]:
        assert marker not in log.read_text(errors="replace"), log.name


async def _mail(system: System, predicate: Callable[[Any], bool]) -> list[Any]:
    return [m for m in system.mail.messages if predicate(m)]


STREAMS = 25
"""More open consoles than a status replica's database pool lends connections at once (15)."""


async def test_open_consoles_do_not_starve_the_desk_of_database_connections(
    e2e_system: System,
) -> None:
    """A live stream checks who is asking and then needs no database connection: a shift with
    more consoles open (each reading its stream, as the page does) than the pool holds still
    gets its queue, and every stream opens."""
    url = e2e_system.stack.url("status")
    ready = 0

    async def console() -> None:
        nonlocal ready
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", f"{url}/console/events", headers=DESK) as stream,
        ):
            async for line in stream.aiter_lines():
                ready += line == "event: ready"

    consoles = [asyncio.create_task(console()) for _ in range(STREAMS)]
    try:
        await eventually(lambda: ready == STREAMS, f"{STREAMS} consoles open", timeout=20)
        async with httpx.AsyncClient(base_url=url, timeout=10) as status:
            queue = await status.get("/conversations", headers=DESK)
            assert queue.status_code == 200, queue.text
    finally:
        for task in consoles:
            task.cancel()
        await asyncio.gather(*consoles, return_exceptions=True)
