"""A patron's STOP and YES, end to end on the running system: signed Twilio webhooks through
ingest, the router's consent commands, the notifier's opt-out list and the SMS API fake. After
STOP a librarian's reply never reaches the SMS API and the console says why; after YES
texted alone (Twilio's third opt-in word, which Twilio itself resumes texts on) the next reply
goes out, and the transcript says the number opted back in."""

from __future__ import annotations

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


@pytest.fixture
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(Path(tmp_path_factory.mktemp("sms-opt-out")))
    try:
        yield running
    finally:
        running.stop()


async def test_stop_holds_every_reply_back_until_yes(system: System) -> None:
    marker = uuid.uuid4().hex[:8]
    phone = fresh_phone()
    async with (
        httpx.AsyncClient(base_url=system.stack.url("ingest"), timeout=30) as ingest,
        httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status,
    ):

        async def texts(body: str) -> None:
            form = sms_form(body, sender=phone)
            answer = await ingest.post(
                "/webhooks/sms", content=urlencode(form).encode(), headers=twilio_headers(form)
            )
            assert answer.status_code == 200, answer.text

        def reached(word: str) -> list[dict[str, str]]:
            return [r for r in system.sms.requests if f"{word} {marker}" in r.get("Body", "")]

        async def lines(cid: str) -> list[dict[str, Any]]:
            got = await status.get(f"/conversations/{cid}", headers=ADMIN)
            assert got.status_code == 200, got.text
            return list(got.json()["messages"])

        async def replies(cid: str, text: str) -> None:
            sent = await status.post(
                f"/conversations/{cid}/replies", json={"text": text}, headers=ADMIN
            )
            assert sent.status_code == 202, sent.text

        await texts(f"is the library open on sunday? {marker}")
        cid = await answer_on_the_desk(status, phone, f"first {marker}")
        await eventually(lambda: reached("first"), "the first reply at the SMS API", timeout=60)

        await texts("STOP")

        async def said(kind: str) -> bool:
            return any(line.get("kind") == kind for line in await lines(cid))

        await eventually(lambda: said("sms_opt_out"), "the opt-out in the transcript", timeout=60)
        await replies(cid, f"second {marker}")

        async def refused() -> dict[str, Any] | None:
            for line in await lines(cid):
                if f"second {marker}" in (line.get("text") or ""):
                    delivery = line.get("delivery") or {}
                    return delivery if delivery.get("state") == "failed" else None
            return None

        delivery = await eventually(refused, "the second reply refused", timeout=60)
        assert delivery["reason"] == "the patron replied STOP", delivery
        assert reached("second") == []

        await texts("Yes")
        await eventually(lambda: said("sms_opt_in"), "the opt-in in the transcript", timeout=60)
        await replies(cid, f"third {marker}")
        await eventually(lambda: reached("third"), "the third reply at the SMS API", timeout=60)
        assert reached("second") == [] and len(reached("first")) == 1
