"""The reports API: who may read it, small staff cells, the CSV, the access log, and editing a
closed question's tags within the day (published as an event the statistics rebuild from)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, FakePublisher, arrive, bearer

from services.status.handlers import Assigning, apply
from services.status.models import Conversation, TranscriptAccess
from services.status.stats import api as stats_api
from services.status.stats.models import DeskStat
from shared.events import Channel, ConversationClosed, ConversationTagged
from shared.topics import DESK, INTERACTIONS

DAY = {"from": (T0 - timedelta(days=1)).date().isoformat(), "to": T0.date().isoformat()}


async def closed_by(
    sessions: async_sessionmaker[AsyncSession], closers: dict[str, int], *, read_scale: int = 2
) -> None:
    """Given conversations that arrived and were closed by these staff, so many each."""
    n = 0
    for staff_id, count in closers.items():
        for _ in range(count):
            cid = f"c-{staff_id}-{n}"
            await arrive(sessions, cid, channel=Channel.CHAT, minutes_ago=60)
            async with sessions() as session:
                await apply(
                    session,
                    event_id=f"close-{cid}",
                    assigning=Assigning(),
                    data=ConversationClosed(
                        conversation_id=cid,
                        channel=Channel.CHAT,
                        closed_at=T0 - timedelta(minutes=30),
                        closed_by=staff_id,
                        read_scale=read_scale,
                        topic="research",
                    ),
                )
                await session.commit()
            n += 1


async def test_plain_staff_get_403_problem_json(client: httpx.AsyncClient) -> None:
    for path in ("/reports/summary", "/reports/summary.csv", "/reports/annual?fiscal_year=2025"):
        response = await client.get(path, headers=bearer("mgarcia"))
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 403
    assert (await client.get("/reports/summary")).status_code == 401


async def test_small_staff_cells_are_shown_as_under_five_except_to_admins(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await closed_by(sessions, {"mgarcia": 6, "jnguyen": 3, "tbrooks": 1})
    params = {**DAY, "group_by": "staff"}
    supervisor = await client.get("/reports/summary", params=params, headers=bearer("lokafor"))
    rows = {g["key"]: g for g in supervisor.json()["groups"]}
    assert rows["mgarcia"]["questions"] == 6 and not rows["mgarcia"]["suppressed"]
    assert rows["mgarcia"]["resolution_p50_s"] == 30 * 60
    for small in ("jnguyen", "tbrooks"):
        assert rows[small]["questions"] == "< 5" and rows[small]["suppressed"]
        assert rows[small]["resolution_p50_s"] is None and rows[small]["closed"] is None
    assert supervisor.json()["totals"]["questions"] == 10
    admin = await client.get("/reports/summary", params=params, headers=bearer("dkim"))
    rows = {g["key"]: g for g in admin.json()["groups"]}
    assert (rows["jnguyen"]["questions"], rows["tbrooks"]["questions"]) == (3, 1)
    # other groupings are not staff breakdowns: nothing is suppressed
    by_topic = await client.get(
        "/reports/summary", params={**DAY, "group_by": "channel"}, headers=bearer("lokafor")
    )
    # every channel is a row, a channel nobody used too (a sheet looking up SMS finds 0)
    groups = by_topic.json()["groups"]
    assert [(g["key"], g["questions"], g["suppressed"]) for g in groups] == [
        ("chat", 10, False),
        ("sms", 0, False),
        ("email", 0, False),
    ]


async def test_one_small_cell_alone_is_not_left_to_subtraction(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """With one cell hidden, the total less the others gave it away (an outside review read a
    librarian's 1 so): the smallest shown cell is hidden too, and with two small cells none
    more is."""
    await closed_by(sessions, {"mgarcia": 7, "rpatel": 6, "tbrooks": 1})
    params = {**DAY, "group_by": "staff"}
    response = await client.get("/reports/summary", params=params, headers=bearer("lokafor"))
    rows = {g["key"]: g for g in response.json()["groups"]}
    assert [(k, rows[k]["questions"], rows[k]["suppressed"]) for k in rows] == [
        ("mgarcia", 7, False),
        ("rpatel", "hidden", True),
        ("tbrooks", "< 5", True),
    ]
    assert rows["rpatel"]["closed"] is None and response.json()["totals"]["questions"] == 14
    admin = await client.get("/reports/summary", params=params, headers=bearer("dkim"))
    assert [g["questions"] for g in admin.json()["groups"]] == [7, 6, 1]


async def test_csv_by_extension_and_by_accept_header(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await closed_by(sessions, {"mgarcia": 6, "jnguyen": 2, "tbrooks": 1})
    params = {**DAY, "group_by": "staff"}
    by_path = await client.get("/reports/summary.csv", params=params, headers=bearer("lokafor"))
    by_accept = await client.get(
        "/reports/summary", params=params, headers={**bearer("lokafor"), "Accept": "text/csv"}
    )
    for response in (by_path, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        assert response.text == by_path.text
    rows = list(csv.reader(io.StringIO(by_path.text)))
    assert rows[0][:4] == ["staff", "label", "questions", "closed"]
    assert len({len(r) for r in rows}) == 1  # rectangular
    body = {r[0]: r for r in rows[1:]}
    assert body["mgarcia"][2] == "6" and body["jnguyen"][2] == "< 5"
    assert (body["mgarcia"][1], body["jnguyen"][1]) == ("Maria Garcia", "James Nguyen")
    assert body["total"][1] == "All questions" and body["total"][2] == "9"
    assert by_path.text.endswith("\r\n")


async def test_every_report_read_is_in_the_access_log(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await client.get("/reports/summary", headers=bearer("lokafor"))
    await client.get("/reports/summary.csv", headers=bearer("dkim"))
    await client.get("/reports/annual?fiscal_year=2025", headers=bearer("lokafor"))
    await client.get("/reports/summary", headers=bearer("mgarcia"))  # refused: not logged
    async with sessions() as session:
        rows = (await session.scalars(select(TranscriptAccess))).all()
    assert sorted((r.staff_id, r.action, r.conversation_id) for r in rows) == [
        ("dkim", "report", None),
        ("lokafor", "report", None),
        ("lokafor", "report", None),
    ]


async def test_bad_parameters_are_422(client: httpx.AsyncClient) -> None:
    sup = bearer("lokafor")
    assert (await client.get("/reports/summary?group_by=patron", headers=sup)).status_code == 422
    reversed_range = "/reports/summary?from=2025-03-04&to=2025-03-01"
    assert (await client.get(reversed_range, headers=sup)).status_code == 422
    assert (await client.get("/reports/annual", headers=sup)).status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        "/reports/summary?to=0001-01-01",
        "/reports/summary?to=0001-01-27",
        "/reports/summary?from=9999-12-31",
        "/reports/summary.csv?from=0001-01-01&to=0001-01-02",
        "/conversations?to=9999-12-31",
        "/conversations?from=0001-01-01",
        "/conversations?from=2025-03-04&to=2025-03-01",
    ],
)
async def test_days_beyond_the_desks_calendar_are_422_not_500(
    client: httpx.AsyncClient, query: str
) -> None:
    answer = await client.get(query, headers=bearer("lokafor"))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


async def test_the_reports_page_says_what_it_could_not_read(client: httpx.AsyncClient) -> None:
    signed = await client.post(
        "/dashboard/login", data={"staff_id": "lokafor", "token": "dev-lokafor-token"}
    )
    assert signed.status_code == 303
    for query, said in [
        ("from=garbage", "The From date is not a date like 2026-09-14"),
        ("to=0001-01-01", "Dates run from 1970-01-01 to 9000-12-31"),
        ("from=2025-03-04&to=2025-03-01", "The From date is after the To date"),
    ]:
        page = await client.get(f"/dashboard/reports?{query}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert f"{said}: showing the last four weeks." in page.text
        assert "Signed in as <strong>Linda Okafor</strong> (supervisor)" in page.text


async def test_the_refused_reports_page_names_the_staff_member_not_their_id(
    client: httpx.AsyncClient,
) -> None:
    signed = await client.post(
        "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    )
    assert signed.status_code == 303
    page = await client.get("/dashboard/reports")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "Reports are for supervisors" in page.text
    assert "signed in as <strong>Maria Garcia</strong>, with the role staff" in page.text
    assert "mgarcia" not in page.text


async def test_a_supervisor_signing_in_for_the_reports_starts_no_shift(
    client: httpx.AsyncClient,
) -> None:
    """A supervisor who signed in to read the reports became Online at the desk (and the CARE
    Team), so the router counted both as staffed while nobody watched the queue. Signed in
    from the reports page, nobody's status changes; signed in at the desk, the shift starts."""
    page = await client.get("/dashboard/reports")
    assert page.status_code == 200 and "Sign in to the desk statistics" in page.text
    assert '<input type="hidden" name="then" value="reports">' in page.text
    signed = await client.post(
        "/dashboard/login",
        data={"staff_id": "lokafor", "token": "dev-lokafor-token", "then": "reports"},
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard/reports"
    status = (await client.get("/staff/me", headers=bearer("lokafor"))).json()
    assert status["status"] == "Offline"
    assert (await client.get("/dashboard/reports")).status_code == 200
    again = await client.post(
        "/dashboard/login", data={"staff_id": "lokafor", "token": "dev-lokafor-token"}
    )
    assert again.headers["location"] == "/dashboard"
    status = (await client.get("/staff/me", headers=bearer("lokafor"))).json()
    assert status["status"] == "Online"
    # plain staff may not read reports: signed in there, their shift starts as at the desk
    # (they went on to the console and worked it Offline)
    staff = await client.post(
        "/dashboard/login",
        data={"staff_id": "mgarcia", "token": "dev-mgarcia-token", "then": "reports"},
    )
    assert staff.status_code == 303
    assert (await client.get("/staff/me", headers=bearer("mgarcia"))).json()["status"] == "Online"


async def close_via_api(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], cid: str
) -> None:
    await arrive(sessions, cid, channel=Channel.SMS, minutes_ago=5)
    closed = await client.post(
        f"/conversations/{cid}/close",
        json={"read_scale": 2, "topic": "research"},
        headers=bearer("mgarcia"),
    )
    assert closed.status_code == 200, closed.text


async def test_the_closer_edits_tags_within_a_day_and_the_edit_is_an_event(
    sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    publisher: FakePublisher,
    clock: Clock,
) -> None:
    await close_via_api(client, sessions, "c-tag")
    clock.advance(3600)
    edited = await client.patch(
        "/conversations/c-tag/tags", json={"read_scale": 4}, headers=bearer("mgarcia")
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["read_scale"], edited.json()["topic"]) == (4, "research")
    [event] = publisher.on(DESK.name)
    assert isinstance(event, ConversationTagged) and event.read_scale == 4
    # the consumer applies what was published: the statistics and the queue agree
    async with sessions() as session:
        for n, data in enumerate([*publisher.on(INTERACTIONS.name), event]):
            await apply(session, event_id=f"pub-{n}", data=data, assigning=Assigning())
        await session.commit()
        row = await session.get(DeskStat, "c-tag")
        conv = await session.get(Conversation, "c-tag")
    assert row is not None and (row.read_scale, row.topic) == (4, "research")
    assert row.closed_by == "mgarcia" and row.closed_at == T0
    assert conv is not None and conv.read_scale == 4
    cleared = await client.patch(
        "/conversations/c-tag/tags", json={"topic": None}, headers=bearer("mgarcia")
    )
    assert (cleared.json()["read_scale"], cleared.json()["topic"]) == (4, None)


async def test_tag_edits_by_others_and_after_a_day_are_refused(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient, clock: Clock
) -> None:
    await arrive(sessions, "c-open", channel=Channel.CHAT)
    refused = await client.patch(
        "/conversations/c-open/tags", json={"read_scale": 1}, headers=bearer("lokafor")
    )
    assert refused.status_code == 409  # open: tags come with the close
    await close_via_api(client, sessions, "c-tag2")
    other = await client.patch(
        "/conversations/c-tag2/tags", json={"read_scale": 1}, headers=bearer("jnguyen")
    )
    assert other.status_code == 403
    assert other.headers["content-type"].startswith("application/problem+json")
    supervisor = await client.patch(
        "/conversations/c-tag2/tags", json={"read_scale": 5}, headers=bearer("lokafor")
    )
    assert supervisor.status_code == 200
    bad = await client.patch(
        "/conversations/c-tag2/tags", json={"topic": "gossip"}, headers=bearer("mgarcia")
    )
    assert bad.status_code == 422
    clock.advance(24 * 3600 + 1)
    late = await client.patch(
        "/conversations/c-tag2/tags", json={"read_scale": 3}, headers=bearer("mgarcia")
    )
    assert late.status_code == 409 and "24 hours" in late.json()["detail"]


@pytest.mark.parametrize(
    ("accept", "csv_wanted"),
    [
        ("text/csv", True),
        ("text/csv, */*;q=0.1", True),
        ("application/json, text/csv;q=0", False),
        ("application/json;q=0.5, text/csv", True),
        ("text/csv;q=0.5, application/json", False),
        ("text/csv, application/json", False),  # a tie keeps the JSON
        ("*/*", False),
        ("", False),
    ],
)
def test_csv_is_answered_only_to_a_reader_that_prefers_it(accept: str, csv_wanted: bool) -> None:
    """`Accept: application/json, text/csv;q=0` was answered CSV (a substring test)."""
    assert stats_api.prefers_csv(accept) is csv_wanted


async def test_one_channel_at_a_time(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """ "How many questions did we answer by text last week, and how many were about
    citations?": `channel=sms` had been ignored, answering every channel's figures."""
    await arrive(sessions, "sms-1", channel=Channel.SMS, minutes_ago=30)
    await arrive(sessions, "sms-2", channel=Channel.SMS, minutes_ago=20)
    await arrive(sessions, "chat-1", channel=Channel.CHAT, minutes_ago=10)
    params = {**DAY, "group_by": "channel"}
    everything = await client.get("/reports/summary", params=params, headers=bearer("lokafor"))
    texts = await client.get(
        "/reports/summary", params={**params, "channel": "sms"}, headers=bearer("lokafor")
    )
    assert everything.json()["totals"]["questions"] == 3
    body = texts.json()
    assert body["channel"] == "sms" and body["totals"]["questions"] == 2
    assert {g["key"]: g["questions"] for g in body["groups"]} == {"chat": 0, "sms": 2, "email": 0}
    refused = await client.get(
        "/reports/summary", params={**params, "channel": "fax"}, headers=bearer("lokafor")
    )
    assert refused.status_code == 422
    # the export says which channel it covers, in its name and its total row
    sheet = await client.get(
        "/reports/summary.csv", params={**params, "channel": "sms"}, headers=bearer("lokafor")
    )
    assert "refdesk-channel-sms-" in sheet.headers["content-disposition"]
    assert "total,All text (SMS) questions," in sheet.text


async def test_a_misspelt_parameter_is_refused_not_ignored(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    """`chanel=sms` answered every channel's figures as if sms had been asked for; the page's
    export form sends `channel=` (empty) for every channel, which is every channel."""
    await arrive(sessions, "sms-1", channel=Channel.SMS, minutes_ago=30)
    await arrive(sessions, "chat-1", channel=Channel.CHAT, minutes_ago=10)
    sup = bearer("lokafor")
    for path in ("/reports/summary", "/reports/summary.csv"):
        typo = await client.get(path, params={**DAY, "chanel": "sms"}, headers=sup)
        assert typo.status_code == 422, typo.text
        assert typo.headers["content-type"] == "application/problem+json"
        assert "unknown query parameter chanel" in typo.json()["detail"]
        both = await client.get(
            path, params=[*DAY.items(), ("channel", "sms"), ("channel", "chat")], headers=sup
        )
        assert both.status_code == 422, both.text  # it had answered for chat alone
        assert "channel given more than once" in both.json()["detail"]
    every = await client.get("/reports/summary", params={**DAY, "channel": ""}, headers=sup)
    assert every.status_code == 200 and every.json()["totals"]["questions"] == 2
    annual = await client.get("/reports/annual?fiscal_year=2025&year=2025", headers=sup)
    assert annual.status_code == 422 and "year" in annual.json()["detail"]
    assert (await client.get("/reports/annual?fiscal_year=2025", headers=sup)).status_code == 200
    # who may not read the reports learns nothing of their parameters
    assert (await client.get("/reports/summary?foo=1")).status_code == 401
    staff = await client.get("/reports/summary?foo=1", headers=bearer("mgarcia"))
    assert staff.status_code == 403
