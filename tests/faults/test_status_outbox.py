"""Staff actions taken while the broker is away, end to end on the running system: a status
replica restarted during the outage serves the console from its database, a librarian's two
replies and the close are answered as done and kept in the status outbox; that replica is
killed and another started before the broker returns, which connects in the background and
relays what the outbox kept: the patron gets each reply once, in the order written, then the
survey, and the patron's next text reaches the desk through the same replica."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.eventually import eventually
from tests.faults.faults import ADMIN, answer_on_the_desk
from tests.faults.system import System, start_system
from tests.integration.ingest.conftest import fresh_phone, sms_form, twilio_headers

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(600)]

WAITING = re.compile(r"^refdesk_status_outbox_waiting (\S+)$", re.MULTILINE)


@pytest.fixture
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(Path(tmp_path_factory.mktemp("status-outbox")))
    try:
        yield running
    finally:
        running.stop()


async def waiting_in_outbox(status: httpx.AsyncClient) -> float:
    """The status replica's gauge of staff-action events not yet published."""
    found = WAITING.search((await status.get("/metrics")).text)
    assert found is not None, "refdesk_status_outbox_waiting is not exported"
    return float(found.group(1))


async def test_replies_and_a_close_made_while_the_broker_is_away_reach_the_patron_once(
    system: System,
) -> None:
    marker = uuid.uuid4().hex[:8]
    phone = fresh_phone()
    async with httpx.AsyncClient(base_url=system.stack.url("ingest"), timeout=30) as ingest:

        async def texts(body: str) -> None:
            form = sms_form(body, sender=phone)
            answer = await ingest.post(
                "/webhooks/sms", content=urlencode(form).encode(), headers=twilio_headers(form)
            )
            assert answer.status_code == 200, answer.text

        def to_patron() -> list[str]:
            return [r["Body"] for r in system.sms.requests if r.get("To") == phone]

        await texts(f"can I renew a laptop over the phone? {marker}")
        async with httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status:
            cid = await answer_on_the_desk(status, phone, f"first {marker}")
        await eventually(
            lambda: any(f"first {marker}" in body for body in to_patron()),
            "the first reply at the SMS API",
            timeout=60,
        )

        await asyncio.to_thread(system.kafka.kill)
        system.kill("status")
        await asyncio.to_thread(system.restart, "status")  # ready with its database alone

        async with httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status:

            async def lines() -> list[dict[str, Any]]:
                got = await status.get(f"/conversations/{cid}", headers=ADMIN)
                assert got.status_code == 200, got.text
                return list(got.json()["messages"])

            for word in ("second", "third"):
                sent = await status.post(
                    f"/conversations/{cid}/replies",
                    json={"text": f"{word} {marker}"},
                    headers=ADMIN,
                )
                assert sent.status_code == 202, sent.text
            seen = (await lines())[-1]["id"]
            closed = await status.post(
                f"/conversations/{cid}/close",
                json={"topic": "circulation", "survey": True, "seen": seen},
                headers=ADMIN,
            )
            assert closed.status_code in (200, 202), closed.text

            await eventually(
                lambda: _above_zero(status), "the actions counted in the outbox", timeout=60
            )
            assert not any(w in body for body in to_patron() for w in ("second", "third"))

        # the replica that took the actions is killed before the broker returns: what it
        # saved in the outbox is all there is to publish them from
        system.kill("status")
        await asyncio.to_thread(system.restart, "status")
        await asyncio.to_thread(system.kafka.start)
        await asyncio.to_thread(system.kafka.wait_ready)

        async with httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status:

            def survey_sent() -> bool:
                return any("rate us" in body for body in to_patron())

            await eventually(survey_sent, "the survey at the SMS API", timeout=180, every=1.0)
            await eventually(
                lambda: _is_zero(status), "the outbox empty after the relay", timeout=60
            )

            bodies = to_patron()
            order = [
                next(i for i, body in enumerate(bodies) if f"{word} {marker}" in body)
                for word in ("first", "second", "third")
            ]
            survey = next(i for i, body in enumerate(bodies) if "rate us" in body)
            assert order == sorted(order) and order[-1] < survey, bodies
            for word in ("first", "second", "third"):
                assert sum(f"{word} {marker}" in body for body in bodies) == 1, bodies
            assert sum("rate us" in body for body in bodies) == 1, bodies

            # the replica restarted during the outage now consumes: the patron's next text
            # (a new conversation, the last one closed) reaches the desk through it
            await texts(f"one more thing: is there a late fee? {marker}")

            async def on_the_desk() -> bool:
                found = await status.get(
                    "/conversations", params={"contact": phone, "state": "open"}, headers=ADMIN
                )
                assert found.status_code == 200, found.text
                return any("late fee" in row["preview"] for row in found.json()["items"])

            await eventually(on_the_desk, "a text after the outage on the desk", timeout=120)


async def _above_zero(status: httpx.AsyncClient) -> bool:
    return await waiting_in_outbox(status) > 0


async def _is_zero(status: httpx.AsyncClient) -> bool:
    return await waiting_in_outbox(status) == 0
