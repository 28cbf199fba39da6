"""The admins' records pages (HTTP, no browser): the records form refuses what is missing in
words, answers a request as a page (no-store, nothing of it in the address) or a JSON
download, each answer in the access log; the access log page narrows, pages and says what it
ignored; neither is for anyone but admins, nor answers a form another site posted."""

from __future__ import annotations

import json
import re

import console_scenes as scene
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, FakePublisher

from services.status.auth import COOKIE
from services.status.console.staff_page import FORM_TOKEN_FIELD
from shared.events import Channel, ConversationClosed
from shared.topics import DESK

REASON = "FERPA request 2026-014"
WHAT = '<td><span class="cell-label">What: </span>'


async def sign_in(client: httpx.AsyncClient, staff_id: str = "dkim") -> None:
    answer = await client.post(
        "/dashboard/login", data={"staff_id": staff_id, "token": f"dev-{staff_id}-token"}
    )
    assert answer.status_code == 303


async def form_token(client: httpx.AsyncClient) -> str:
    page = (await client.get("/dashboard/records")).text
    found = re.search(rf'name="{FORM_TOKEN_FIELD}" value="([0-9a-f]+)"', page)
    assert found is not None
    return found[1]


async def post(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    token = await form_token(client)
    return await client.post("/dashboard/records", data={FORM_TOKEN_FIELD: token, **fields})


async def test_a_records_request_is_answered_as_a_page_and_written_to_the_log(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    answer = await post(client, contact="817 555 0142", reason=REASON)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    page = answer.text
    assert "2 conversations for (817) 555-0142" in page
    assert scene.SMS_TEXT in page and "do you have study rooms at SE?" in page
    assert f"for “{REASON}”" in page
    log = (await client.get("/dashboard/records/access-log")).text
    assert log.count(f"{WHAT}Records request</td>") == 2 and REASON in log
    assert "0142" not in str(answer.request.url)  # the contact went in the body


async def test_the_answer_downloads_as_json(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    answer = await post(client, contact="+18175550142", reason=REASON, format="json")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment;")
    body = json.loads(answer.text)
    assert [c["conversation_id"] for c in body["conversations"]] == ["sms-rooms", scene.SMS]


async def test_a_chat_found_by_what_its_visitor_typed_is_marked_for_checking(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A chat visitor typed another patron's address, and a records request for that patron
    counted the stranger's chat among theirs (an outside review): it is listed, marked as
    unverified, for the admin to check before releasing it."""
    from status_fakes import given, patron_writes

    from shared.events import Channel

    address = "pat.records@example.edu"
    await given(
        sessions,
        patron_writes("email-own", channel=Channel.EMAIL, contact=address),
        patron_writes("chat-typed", channel=Channel.CHAT, contact=address),
    )
    await sign_in(client)
    page = (await post(client, contact=address, reason=REASON)).text
    assert "2 conversations for" in page
    assert page.count("typed by the chat visitor, not verified") == 1
    body = json.loads((await post(client, contact=address, reason=REASON, format="json")).text)
    verified = {
        c["conversation_id"]: c["patron"]["contact_verified"] for c in body["conversations"]
    }
    assert verified == {"email-own": True, "chat-typed": False}


async def test_a_request_without_its_reason_is_refused_in_words(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sign_in(client)
    answer = await post(client, contact="+18175550142", reason="")
    assert answer.status_code == 422
    assert "Say which request this answers" in answer.text
    assert 'value="+18175550142"' in answer.text  # what was typed is kept
    assert "data-row-id" not in (await client.get("/dashboard/records/access-log")).text


@pytest.mark.parametrize("who", ["mgarcia", "lokafor"])
async def test_the_records_pages_are_for_admins(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], who: str
) -> None:
    await sign_in(client, who)
    for path in ("/dashboard/records", "/dashboard/records/access-log"):
        answer = await client.get(path)
        assert answer.status_code == 403 and "Records requests are for admins" in answer.text
    answer = await client.post("/dashboard/records", data={"contact": "+18175550142"})
    assert answer.status_code == 403


async def test_signed_out_the_records_pages_send_to_the_sign_in_form(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/dashboard/records")
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"


async def test_a_records_form_another_site_posted_answers_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    token = await form_token(client)
    answer = await client.post(
        "/dashboard/records",
        data={FORM_TOKEN_FIELD: token, "contact": "+18175550142", "reason": REASON},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and "another site" in answer.text
    assert scene.SMS_TEXT not in answer.text
    forged = await client.post(
        "/dashboard/records",
        data={FORM_TOKEN_FIELD: "0" * 64, "contact": "+18175550142", "reason": REASON},
    )
    assert forged.status_code == 403 and scene.SMS_TEXT not in forged.text
    assert client.cookies.get(COOKIE)


async def test_the_access_log_page_narrows_pages_and_says_what_it_ignored(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await sign_in(client, "mgarcia")
    await client.get(f"/dashboard/c/{scene.SMS}")
    client.cookies.clear()
    await sign_in(client)
    page = (await client.get("/dashboard/records/access-log")).text
    assert f"{WHAT}Read the conversation</td>" in page and "Maria Garcia" in page
    narrowed = await client.get(
        "/dashboard/records/access-log", params={"staff_id": "jnguyen", "from": "2025-99-01"}
    )
    assert "Nothing in the access log matches these filters." in narrowed.text
    assert "The From date “2025-99-01” was ignored" in narrowed.text
    assert 'href="/admin/access-log.csv?staff_id=jnguyen"' in narrowed.text


async def test_an_erasure_from_the_page_needs_the_box_ticked_and_says_what_it_did(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    found = await post(client, contact="+18175550142", reason=REASON)
    assert "1 of these conversations is still open: close it on the console first" in found.text
    assert 'action="/dashboard/records/erase"' not in found.text
    await scene._apply(
        sessions,
        ConversationClosed(
            conversation_id=scene.SMS, channel=Channel.SMS, closed_at=T0, closed_by="mgarcia"
        ),
    )
    found = await post(client, contact="+18175550142", reason=REASON)
    assert "Erase 2 conversations" in found.text
    token = await form_token(client)
    fields = {FORM_TOKEN_FIELD: token, "contact": "+18175550142", "reason": REASON}
    unticked = await client.post("/dashboard/records/erase", data=fields)
    assert unticked.status_code == 422 and "tick the box" in unticked.text
    assert publisher.on(DESK.name) == []
    done = await client.post("/dashboard/records/erase", data={**fields, "confirm": "yes"})
    assert done.status_code == 200
    assert "Erased 2 conversations" in done.text
    assert "0 conversations for (817) 555-0142" in done.text
    assert len(publisher.on(DESK.name)) == 2
    log = (await client.get("/dashboard/records/access-log", params={"action": "erase"})).text
    assert log.count("data-row-id") == 2


async def test_an_erasure_posted_from_another_site_erases_nothing(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await scene.sms(sessions)
    await sign_in(client)
    token = await form_token(client)
    answer = await client.post(
        "/dashboard/records/erase",
        data={
            FORM_TOKEN_FIELD: token,
            "contact": "+18175550142",
            "reason": REASON,
            "confirm": "yes",
        },
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 403 and publisher.on(DESK.name) == []


async def test_the_access_log_page_reads_edge_values_without_a_500(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await sign_in(client)
    answer = await client.get(
        "/dashboard/records/access-log",
        params={
            "conversation_id": "\x00",
            "staff_id": "a\x00",
            "to": "9999-12-31",
            "before": "9" * 18,
        },
    )
    assert answer.status_code == 200
    bad = await post(client, contact="+1817555\x000142", reason=REASON)
    assert bad.status_code == 422 and "conversation id" in bad.text
