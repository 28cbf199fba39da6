"""Whether a staff reply by SMS reached the patron, end to end on the running system: the
notifier asks the SMS API to report to ingest's status callback, Twilio's signed report goes
through ingest and the broker to the status service, and the console's transcript shows the
text as not delivered, with the carrier's reason, whatever order the reports come in."""

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
from tests.integration.ingest.conftest import BASE, fresh_phone, sms_form, twilio_headers

pytestmark = [pytest.mark.short_faults, pytest.mark.timeout(600)]
CALLBACK = "/webhooks/sms/status"


@pytest.fixture
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root = Path(tmp_path_factory.mktemp("sms-reports"))
    running = start_system(root, REFDESK_SMS_STATUS_CALLBACK_URL=BASE + CALLBACK)
    try:
        yield running
    finally:
        running.stop()


async def test_a_text_the_carrier_did_not_deliver_shows_as_not_delivered(system: System) -> None:
    marker = uuid.uuid4().hex[:8]
    phone = fresh_phone()
    form = sms_form(f"is the library open on saturday? {marker}", sender=phone)
    async with (
        httpx.AsyncClient(base_url=system.stack.url("ingest"), timeout=30) as ingest,
        httpx.AsyncClient(base_url=system.stack.url("status"), timeout=30) as status,
    ):
        texted_in = await ingest.post(
            "/webhooks/sms", content=urlencode(form).encode(), headers=twilio_headers(form)
        )
        assert texted_in.status_code == 200, texted_in.text

        cid = await answer_on_the_desk(status, phone, f"Yes, 9 to 3. {marker}")

        def created() -> list[dict[str, str]]:
            return [r for r in system.sms.requests if marker in r.get("Body", "")]

        [request] = await eventually(created, "the reply at the SMS API", timeout=60)
        assert request["StatusCallback"] == BASE + CALLBACK
        [sid] = [m["sid"] for m in system.sms.created if marker in m["body"]]

        async def reply_line() -> dict[str, Any] | None:
            got = await status.get(f"/conversations/{cid}", headers=ADMIN)
            lines = [ln for ln in got.json()["messages"] if marker in (ln.get("text") or "")]
            return next((ln for ln in lines if ln.get("direction") == "out"), None)

        async def delivery_is(state: str) -> bool:
            line = await reply_line()
            return line is not None and (line.get("delivery") or {}).get("state") == state

        await eventually(lambda: delivery_is("sent"), "the reply shown as sent", timeout=60)

        # Twilio reports, signed with the account's token: queued, then undelivered (30007),
        # then a late "sent" that must not undo the final word
        for status_word, code in (("queued", ""), ("undelivered", "30007"), ("sent", "")):
            report = {
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status_word,
                "SmsStatus": status_word,
                "ErrorCode": code,
                "AccountSid": "AC" + "0" * 32,
                "From": "+18175550100",
                "To": phone,
                "ApiVersion": "2010-04-01",
            }
            answer = await ingest.post(
                CALLBACK,
                content=urlencode(report).encode(),
                headers=twilio_headers(report, path=CALLBACK),
            )
            assert answer.status_code == 200, answer.text

        await eventually(
            lambda: delivery_is("undelivered"), "the reply shown as not delivered", timeout=60
        )
        line = await reply_line()
        assert line is not None
        assert "carrier" in (line["delivery"]["reason"] or "").lower()
