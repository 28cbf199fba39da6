"""SMS webhook -> interaction -> routing decision -> notification command -> email at the SMTP
server, and a staff login and status change -> presence event, through the real broker and real
processes."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx

from tests.e2e.conftest import System
from tests.integration.ingest.conftest import sms_form, twilio_headers
from tests.kafka_helpers import collect

LOST_BOOK = (
    "I lost a library book, what happens now? I'm Ana Gomez, TCC ID 2223334, the book is 1984"
)


async def wait_for_mail(system: System, predicate, timeout: float = 60.0):
    for _ in range(int(timeout / 0.25)):
        found = [m for m in system.mail.messages if predicate(m)]
        if found:
            return found
        await asyncio.sleep(0.25)
    return []


async def test_an_sms_about_a_lost_book_becomes_an_email_to_circulation(e2e_system: System) -> None:
    form = sms_form(LOST_BOOK, sender="+18175550142")
    async with httpx.AsyncClient(base_url=e2e_system.stack.url("ingest")) as client:
        answer = await client.post(
            "/webhooks/sms", content=urlencode(form), headers=twilio_headers(form)
        )
    assert answer.status_code == 200

    mails = await wait_for_mail(
        e2e_system, lambda m: "2223334" in m.get_body(("plain",)).get_content()
    )
    assert len(mails) == 1
    mail = mails[0]
    assert mail["To"] == "tcc.circulation@tccd.edu"
    body = mail.get_body(("plain",)).get_content()
    assert "Ana Gomez" in body and "1984" in body
    decisions = await collect(
        e2e_system.kafka.bootstrap,
        "refdesk.routing",
        until=lambda f: len(f) >= 1,
        where=lambda e: e["data"]["action"] == "email_circulation",
    )
    assert decisions[0]["data"]["action"] == "email_circulation"
    assert decisions[0]["data"]["department"] == "circulation-managers"


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
    for secret in ("2223334", "Ana Gomez", "8175550142", "I lost a library book", "1984"):
        assert secret not in text, f"{secret!r} found in service logs"
