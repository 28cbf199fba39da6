"""Records requests and the access log through the admin API: a patron's whole record for a
contact however typed, each answer in the access log with the request it answers; the access
log read, filtered and paged without SQL, as JSON and CSV; admins only."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import console_scenes as scene
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, FakePublisher, bearer

from services.status.conversations.retention import purge_expired
from services.status.handlers import Assigning, apply
from services.status.models import TranscriptAccess
from shared.events import Channel, ConversationClosed, ConversationErased, StaffNoteAdded
from shared.topics import DESK

ADMIN = bearer("dkim")
REASON = "FERPA request 2026-014"


async def log_rows(sessions: async_sessionmaker[AsyncSession]) -> list[TranscriptAccess]:
    async with sessions() as session:
        found = await session.execute(select(TranscriptAccess).order_by(TranscriptAccess.id))
        return list(found.scalars())


async def ask(client: httpx.AsyncClient, contact: str, reason: str = REASON) -> httpx.Response:
    return await client.post(
        "/admin/records", json={"contact": contact, "reason": reason}, headers=ADMIN
    )


async def test_a_records_request_answers_every_conversation_of_the_number_whole(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)  # last week's closed thread and today's open one, one number
    await scene.crisis(sessions)  # another patron: not in the answer
    answer = await ask(client, "(817) 555-0142")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["contact"], body["reason"], body["answered_by"]) == (
        "+18175550142",
        REASON,
        "dkim",
    )
    ids = [c["conversation_id"] for c in body["conversations"]]
    assert ids == ["sms-rooms", scene.SMS]  # oldest first
    closed, today = body["conversations"]
    assert (closed["state"], today["state"]) == ("closed", "open")
    assert closed["patron"]["contact"] == "+18175550142"
    texts = [m["text"] for m in today["messages"]]
    assert scene.SMS_TEXT in texts
    assert closed["closed_by"] == "mgarcia" and today["department_name"] == "Reference Desk"
    assert {h["service"] for h in body["held_elsewhere"]} >= {"ingest", "notifier", "Kafka"}
    assert "up to 8 days on the topics" in str(body["held_elsewhere"])
    assert body["more"] is False
    rows = await log_rows(sessions)
    assert [(r.staff_id, r.action, r.conversation_id, r.detail) for r in rows] == [
        ("dkim", "records", "sms-rooms", REASON),
        ("dkim", "records", scene.SMS, REASON),
    ]


async def test_a_request_that_finds_nothing_is_in_the_access_log_too(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    answer = await ask(client, "nobody@example.edu", reason="subpoena 26-CV-118")
    assert answer.status_code == 200 and answer.json()["conversations"] == []
    [row] = await log_rows(sessions)
    assert (row.action, row.conversation_id, row.detail) == ("records", None, "subpoena 26-CV-118")


async def test_a_purged_conversation_is_answered_without_its_transcript(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Retention removed the transcript and the contact: the request cannot find it by the
    number any more, which is what retention is for."""
    await scene.sms(sessions)
    async with sessions() as session:
        await purge_expired(session=session, now=T0, retention_days=1)
        await session.commit()
    ids = [
        c["conversation_id"] for c in (await ask(client, "+18175550142")).json()["conversations"]
    ]
    assert ids == [scene.SMS]  # last week's closed thread is gone from the answer


@pytest.mark.parametrize(("who", "status"), [("mgarcia", 403), ("lokafor", 403), (None, 401)])
async def test_only_admins_may_ask(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    who: str | None,
    status: int,
) -> None:
    await scene.sms(sessions)
    headers = bearer(who) if who else {}
    answer = await client.post(
        "/admin/records", json={"contact": "+18175550142", "reason": REASON}, headers=headers
    )
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "0142" not in answer.text
    log = await client.get("/admin/access-log", headers=headers)
    assert log.status_code == status
    assert await log_rows(sessions) == []


@pytest.mark.parametrize(
    "body",
    [
        {"contact": "+18175550142"},
        {"contact": "+18175550142", "reason": "  "},
        {"contact": "+18175550142", "reason": "x" * 301},
        {"reason": REASON},
        {"contact": "", "reason": REASON},
    ],
)
async def test_a_request_without_a_reason_or_a_contact_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], body: dict[str, str]
) -> None:
    answer = await client.post("/admin/records", json=body, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await log_rows(sessions) == []


async def _a_morning_of_reads(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    await scene.crisis(sessions)
    for who, cid in [("mgarcia", scene.SMS), ("jnguyen", scene.SMS), ("mgarcia", scene.CRISIS)]:
        assert (await client.get(f"/conversations/{cid}", headers=bearer(who))).status_code == 200


async def test_the_access_log_is_read_newest_first_filtered_and_paged(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _a_morning_of_reads(client, sessions)
    every = (await client.get("/admin/access-log", headers=ADMIN)).json()
    reads = [(i["staff_id"], i["action"], i["conversation_id"]) for i in every["items"]]
    assert reads == [
        ("mgarcia", "read", scene.CRISIS),
        ("jnguyen", "read", scene.SMS),
        ("mgarcia", "read", scene.SMS),
    ]
    assert every["items"][0]["staff_name"] == "Maria Garcia" and every["next_before"] is None
    one = await client.get(
        "/admin/access-log", params={"conversation_id": scene.SMS}, headers=ADMIN
    )
    assert [i["staff_id"] for i in one.json()["items"]] == ["jnguyen", "mgarcia"]
    hers = await client.get("/admin/access-log", params={"staff_id": "mgarcia"}, headers=ADMIN)
    assert len(hers.json()["items"]) == 2
    first = (await client.get("/admin/access-log", params={"limit": 2}, headers=ADMIN)).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][1]["id"]
    rest = await client.get(
        "/admin/access-log", params={"limit": 2, "before": first["next_before"]}, headers=ADMIN
    )
    assert [i["conversation_id"] for i in rest.json()["items"]] == [scene.SMS]
    assert rest.json()["next_before"] is None
    day = (T0 - timedelta(hours=6)).date().isoformat()  # desk time: the morning's day
    dated = await client.get("/admin/access-log", params={"from": day, "to": day}, headers=ADMIN)
    assert len(dated.json()["items"]) == 3
    later = await client.get("/admin/access-log", params={"from": "2030-01-01"}, headers=ADMIN)
    assert later.json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"chanel": "sms"},
        {"from": "2026-99-01"},
        {"limit": "0"},
        {"limit": "501"},
        {"from": "2026-03-05", "to": "2026-03-04"},
        [("action", "read"), ("action", "search")],
    ],
)
async def test_the_access_log_refuses_what_it_cannot_read(
    client: httpx.AsyncClient, params: object
) -> None:
    answer = await client.get("/admin/access-log", params=params, headers=ADMIN)  # type: ignore[arg-type]
    assert answer.status_code == 422, answer.text


async def test_the_access_log_as_csv_runs_no_formula(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await _a_morning_of_reads(client, sessions)
    assert (await ask(client, "+18175550142", reason='=HYPERLINK("http://x")')).status_code == 200
    answer = await client.get("/admin/access-log.csv", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["id", "at", "staff_id", "staff_name", "action", "conversation_id", "detail"]
    assert rows[1][4] == "records" and rows[1][6].startswith("'=")
    assert len(rows) == 1 + 2 + 3


async def test_a_closed_conversation_read_by_its_staff_is_in_the_log_with_its_close(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The conversation's own history of disclosures, as a privacy officer reads it."""
    await scene.sms(sessions)
    await scene._apply(
        sessions,
        ConversationClosed(
            conversation_id=scene.SMS, channel=Channel.SMS, closed_at=T0, closed_by="mgarcia"
        ),
    )
    await client.get(f"/conversations/{scene.SMS}", headers=bearer("mgarcia"))
    await ask(client, "817.555.0142")
    items = (
        await client.get("/admin/access-log", params={"conversation_id": scene.SMS}, headers=ADMIN)
    ).json()["items"]
    assert [(i["staff_id"], i["action"], i["detail"]) for i in items] == [
        ("dkim", "records", REASON),
        ("mgarcia", "read", None),
    ]


async def close_today(sessions: async_sessionmaker[AsyncSession]) -> None:
    await scene._apply(
        sessions,
        ConversationClosed(
            conversation_id=scene.SMS, channel=Channel.SMS, closed_at=T0, closed_by="mgarcia"
        ),
    )


async def erase(client: httpx.AsyncClient, contact: str, **more: object) -> httpx.Response:
    body = {"contact": contact, "reason": "erasure request 2026-003", "confirm": True, **more}
    return await client.post("/admin/records/erase", json=body, headers=ADMIN)


async def test_an_erasure_removes_every_closed_conversation_of_the_patron_at_once(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    """A community member asked that their conversations be deleted: the only way had been to
    wait a year for retention, or SQL on every database (a privacy review)."""
    await scene.sms(sessions)
    await scene.crisis(sessions)  # another patron's: untouched
    await close_today(sessions)
    answer = await erase(client, "817-555-0142")
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["erased"]) == sorted(["sms-rooms", scene.SMS])
    published = publisher.on(DESK.name)
    assert {e.conversation_id for e in published} == {"sms-rooms", scene.SMS}  # type: ignore[attr-defined]
    assert all(isinstance(e, ConversationErased) for e in published)
    assert [k for t, _, k in publisher.sent if t == DESK.name] == [
        e.conversation_id
        for e in published  # type: ignore[attr-defined]
    ]
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert (view["purged"], view["messages"], view["patron"]["contact"]) == (True, [], None)
    assert (await ask(client, "+18175550142")).json()["conversations"] == []
    other = (await client.get(f"/conversations/{scene.CRISIS}", headers=ADMIN)).json()
    assert other["messages"]
    rows = [r for r in await log_rows(sessions) if r.action == "erase"]
    assert sorted(r.conversation_id or "" for r in rows) == sorted(["sms-rooms", scene.SMS])
    assert {r.detail for r in rows} == {"erasure request 2026-003"}
    # the events applied again by the consumer find nothing left, and a replay stays out
    async with sessions() as session:
        for n, event in enumerate(published):
            await apply(session, event_id=f"erased-{n}", data=event, assigning=Assigning())
        await session.commit()
    await scene._apply(
        sessions,
        scene.message(
            scene.SMS, Channel.SMS, scene.SMS_TEXT, minutes_ago=12, contact="+18175550142"
        ),
    )
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert view["messages"] == []


async def test_an_open_conversation_is_never_erased_from_under_the_desk(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await scene.sms(sessions)  # today's thread is open
    answer = await erase(client, "+18175550142")
    assert answer.status_code == 409
    assert "still open: close it on the console first" in answer.json()["detail"]
    assert publisher.on(DESK.name) == []
    view = (await client.get("/conversations/sms-rooms", headers=ADMIN)).json()
    assert view["messages"]  # the closed one too: nothing was erased
    assert [r for r in await log_rows(sessions) if r.action == "erase"] == []


async def test_with_the_broker_away_nothing_is_erased(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await scene.sms(sessions)
    await close_today(sessions)
    publisher.fail = True
    answer = await erase(client, "+18175550142")
    assert answer.status_code == 503
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert view["messages"] and view["purged"] is False
    publisher.fail = False
    assert (await erase(client, "+18175550142")).status_code == 200  # asked again: erased


@pytest.mark.parametrize(
    ("headers", "more", "status"),
    [
        (bearer("lokafor"), {}, 403),
        (bearer("mgarcia"), {}, 403),
        (ADMIN, {"confirm": False}, 422),
        (ADMIN, {"confirm": "yes"}, 422),
    ],
)
async def test_an_erasure_is_for_admins_who_confirm_it(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    headers: dict[str, str],
    more: dict[str, object],
    status: int,
) -> None:
    await scene.sms(sessions)
    await close_today(sessions)
    body = {"contact": "+18175550142", "reason": "erasure request 2026-003", "confirm": True}
    answer = await client.post("/admin/records/erase", json={**body, **more}, headers=headers)
    assert answer.status_code == status
    assert publisher.on(DESK.name) == []


def sms_erased(*, at: datetime) -> ConversationErased:
    """The erasure of today's SMS thread (opened 12 minutes before T0), as admin dkim asked."""
    return ConversationErased(
        conversation_id=scene.SMS,
        channel=Channel.SMS,
        opened_at=T0 - timedelta(minutes=12),
        staff_id="dkim",
        reason="erasure request 2026-003",
        erased_at=at,
    )


async def test_a_status_rebuilt_from_the_topics_keeps_an_erasure_whatever_the_order(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The erasure applied before the conversation's own events (another topic): the replayed
    messages from before it stay out; the patron's message after it opens it again."""
    event = sms_erased(at=T0 - timedelta(minutes=1))
    await scene._apply(sessions, event)
    await scene.sms(sessions)  # the replay: its messages are from before the erasure
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert (view["state"], view["messages"], view["patron"]["contact"]) == ("closed", [], None)
    await scene._apply(
        sessions,
        scene.message(
            scene.SMS, Channel.SMS, "one more question", minutes_ago=0, contact="+18175550142"
        ),
    )
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert view["state"] == "open"
    assert [m["text"] for m in view["messages"] if m["direction"] == "in"] == ["one more question"]


async def test_an_erasure_in_the_same_batch_as_the_conversations_lines_leaves_none(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Lines an earlier event of the batch made are not written after the erasure."""
    await scene.sms(sessions)
    await close_today(sessions)
    note = StaffNoteAdded(
        note_id="n-1", conversation_id=scene.SMS, staff_id="mgarcia", text="call back", at=T0
    )
    erased = sms_erased(at=T0 + timedelta(minutes=1))
    async with sessions() as session:
        await apply(session, event_id="b-1", data=note, assigning=Assigning())
        await apply(session, event_id="b-2", data=erased, assigning=Assigning())
        await session.commit()
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert (view["purged"], view["messages"]) == (True, [])


async def test_an_erasure_applied_before_the_close_it_followed_still_erases(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A rebuild applies the erasure (refdesk.desk) before the close (refdesk.interactions):
    the conversation read as open, and its replayed close then left it closed with its
    timeline (a real-broker test in a loaded run)."""
    await scene.sms(sessions)  # today's thread, open: its close comes after the erasure
    erased = sms_erased(at=T0 + timedelta(minutes=1))
    await scene._apply(sessions, erased)
    await close_today(sessions)  # closed at T0, before the erasure
    view = (await client.get(f"/conversations/{scene.SMS}", headers=ADMIN)).json()
    assert (view["state"], view["purged"], view["messages"]) == ("closed", True, [])


async def test_nothing_is_added_to_a_purged_conversation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A note written after the purge (the console still offered the note box) was kept for
    good where no records request could find it: a name and a TCC ID in it (an outside probe)."""
    await scene.sms(sessions)
    await close_today(sessions)
    assert (await erase(client, "+18175550142")).status_code == 200
    note = await client.post(
        f"/conversations/{scene.SMS}/notes",
        json={"text": "Ana Other, TCC ID 0123456, called back"},
        headers=bearer("mgarcia"),
    )
    assert note.status_code == 409
    assert "nothing more can be added" in note.json()["detail"]
    view = (await client.get(f"/conversations/{scene.SMS}", headers=bearer("mgarcia"))).json()
    assert view["messages"] == [] and not view["permitted"]["note"]
    assert view["permitted"]["view"]
    client.cookies.clear()
    assert (
        await client.post(
            "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
        )
    ).status_code == 303
    page = (await client.get(f"/dashboard/c/{scene.SMS}")).text
    assert "Patron (details removed)" in page and "nothing more can be added to it" in page
    assert 'id="note-form"' not in page and "Chat visitor" not in page


@pytest.mark.parametrize(
    "typed",
    ["chat-crisis", "Ana Probe <+18175550142>", "tel:+18175550142", "817-555-0142"],
)
async def test_a_request_finds_a_chat_by_its_id_and_a_contact_however_pasted(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], typed: str
) -> None:
    """A chat whose platform gave no address was found by nothing, and the page then said the
    desk held nothing for it (an outside probe)."""
    await scene.sms(sessions)
    await scene.crisis(sessions)
    ids = [c["conversation_id"] for c in (await ask(client, typed)).json()["conversations"]]
    assert ids == ([scene.CRISIS] if typed == "chat-crisis" else ["sms-rooms", scene.SMS])


async def test_an_email_pasted_with_its_name_is_found(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.overnight_email(sessions)
    body = (await ask(client, "Alex Rivera <ALEX.RIVERA@my.tccd.edu>")).json()
    assert [c["conversation_id"] for c in body["conversations"]] == [scene.EMAIL]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"to": "9999-12-31"}, 200),
        ({"before": str(2**63)}, 422),
        ({"before": str(2**31)}, 422),
        ({"conversation_id": "a\x00b"}, 422),
        ({"staff_id": "a\x00"}, 422),
    ],
)
async def test_the_access_log_answers_edge_values_without_a_500(
    client: httpx.AsyncClient, params: dict[str, str], status: int
) -> None:
    answer = await client.get("/admin/access-log", params=params, headers=ADMIN)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("field", ["contact", "reason"])
async def test_a_nul_in_a_request_is_refused_in_words(
    client: httpx.AsyncClient, field: str
) -> None:
    body = {"contact": "+18175550142", "reason": REASON, field: "abc\x00def"}
    answer = await client.post("/admin/records", json=body, headers=ADMIN)
    assert answer.status_code == 422


async def test_a_csv_that_does_not_hold_every_row_names_the_next_file(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A file of the newest 500 had stopped there without a word (an outside probe)."""
    await _a_morning_of_reads(client, sessions)
    first = await client.get("/admin/access-log.csv", params={"limit": 2}, headers=ADMIN)
    rows = list(csv.reader(io.StringIO(first.text)))
    assert len(rows) == 1 + 2
    link = first.headers["link"]
    assert link.startswith("</admin/access-log.csv?limit=2&before=") and 'rel="next"' in link
    rest = await client.get(link[1 : link.index(">")], headers=ADMIN)
    assert len(list(csv.reader(io.StringIO(rest.text)))) == 1 + 1
    assert "link" not in rest.headers
    whole = await client.get("/admin/access-log.csv", headers=ADMIN)
    assert len(list(csv.reader(io.StringIO(whole.text)))) == 1 + 3 and "link" not in whole.headers
