"""SMS webhook -> interaction -> routing decision -> notification command -> email at the SMTP
server, and a staff login and status change -> presence event, through the real broker and real
processes."""

from __future__ import annotations

import random
from email.message import EmailMessage
from urllib.parse import urlencode

import httpx

from tests.e2e.conftest import System
from tests.eventually import eventually
from tests.integration.ingest.conftest import sms_form, twilio_headers
from tests.kafka_helpers import collect

# This test's own patron: the demo (test_demo.py) sends Ana Gomez's lost book, TCC ID 2223334,
# through the same system and mail sink, so this one must not look for her.
TCC_ID = f"{random.randrange(10**6, 10**7):07d}"
SENDER = f"+1817555{random.randrange(10**4):04d}"
PATRON = "Rosa Delgado"
ITEM = "Beloved"
LOST_BOOK = (
    f"I lost a library book, what happens now? I'm {PATRON}, TCC ID {TCC_ID}, the book is {ITEM}"
)


async def test_an_sms_about_a_lost_book_becomes_an_email_to_circulation(e2e_system: System) -> None:
    form = sms_form(LOST_BOOK, sender=SENDER)
    async with httpx.AsyncClient(base_url=e2e_system.stack.url("ingest")) as client:
        answer = await client.post(
            "/webhooks/sms", content=urlencode(form), headers=twilio_headers(form)
        )
    assert answer.status_code == 200

    def ours() -> list[EmailMessage]:
        return [m for m in e2e_system.mail.messages if TCC_ID in _text(m)]

    [mail] = await eventually(ours, f"the circulation email for TCC ID {TCC_ID}")
    assert mail["To"] == "tcc.circulation@tccd.edu"
    body = _text(mail)
    assert PATRON in body and ITEM in body
    conversation = str(mail["Subject"]).rsplit(" - ", 1)[-1]  # "... - {conversation_ref}"
    decisions = await collect(
        e2e_system.kafka.bootstrap,
        "refdesk.routing",
        until=lambda f: len(f) >= 1,
        where=lambda e: e["data"]["conversation_id"] == conversation,
    )
    assert decisions[0]["data"]["action"] == "email_circulation"
    assert decisions[0]["data"]["department"] == "circulation-managers"


def _text(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    return str(part.get_content()) if part is not None else ""


async def test_a_staff_login_and_status_change_publish_presence(e2e_system: System) -> None:
    async with httpx.AsyncClient(base_url=e2e_system.stack.url("status")) as client:
        staff_id, token = "tbrooks", {"Authorization": "Bearer dev-tbrooks-token"}
        login = await client.post("/shift/login", headers=token)
        assert login.status_code == 200, login.text
        away = await client.put(
            f"/staff/{staff_id}/status", json={"status": "Away", "note": "lunch"}, headers=token
        )
        assert away.status_code == 200, away.text
    events = await collect(
        e2e_system.kafka.bootstrap,
        "refdesk.presence",
        until=lambda f: len(f) >= 2,
        where=lambda e: e.get("data", {}).get("staff_id") == staff_id,
    )
    assert [e["data"]["status"] for e in events][-2:] == ["Online", "Away"]
    assert all(e["_key"] == staff_id for e in events)
    assert "nw-circulation" in events[-1]["data"]["departments"]


async def test_every_service_answers_health_and_metrics(e2e_system: System) -> None:
    async with httpx.AsyncClient() as client:
        for name in e2e_system.stack.ports:
            base = e2e_system.stack.url(name)
            assert (await client.get(f"{base}/healthz")).status_code == 200
            assert (await client.get(f"{base}/readyz")).json()["ready"] is True
            metrics = await client.get(f"{base}/metrics")
            assert metrics.status_code == 200 and "refdesk_" in metrics.text


def test_logs_hold_no_student_data(e2e_system: System) -> None:
    """Runs after the path above (file order): nothing the patron wrote reached a log line."""
    logs = e2e_system.stack.run_dir / "logs"
    text = "\n".join(p.read_text(errors="replace") for p in logs.glob("*.log"))
    assert text, "the services wrote no logs"
    for secret in (TCC_ID, PATRON, SENDER.removeprefix("+1"), "I lost a library book", ITEM):
        assert secret not in text, f"{secret!r} found in service logs"
