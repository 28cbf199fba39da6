"""The admins' staff page over HTTP (no browser): the list, adding, changing, deactivating,
issuing and revoking tokens; everyone else refused on every route; forms from another site or
another session refused; the rules the admin API keeps (never oneself, known departments)
said in words next to the field; every action in the access log, never a token."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import FakePublisher, arrive, bearer

from refdesk_cli import staff_cmd
from services.status.app import create_app
from services.status.auth import COOKIE, hash_token
from services.status.models import Conversation, Presence, Staff, StaffToken, TranscriptAccess
from services.status.resources import Resources
from shared.events import Channel
from shared.topics import PRESENCE

NEW = {
    "id": "awilson",
    "name": "Ana Wilson",
    "email": "ana.wilson@example.edu",
    "campus": "campus-ne",
    "role": "staff",
    "departments": ["reference", "campus-ne"],
}


async def sign_in(client: httpx.AsyncClient, staff_id: str, token: str | None = None) -> None:
    answer = await client.post(
        "/dashboard/login",
        data={"staff_id": staff_id, "token": token or f"dev-{staff_id}-token"},
    )
    assert answer.status_code == 303, answer.text


def form_token(page: str) -> str:
    found = re.search(r'name="form_token" value="([0-9a-f]+)"', page)
    assert found, "the page has no form token"
    return found[1]


async def seen(client: httpx.AsyncClient, staff_id: str) -> str:
    """The record form's digest of what it was filled from, as the member page has it now."""
    page = (await client.get(f"/dashboard/staff/{staff_id}")).text
    found = re.search(r'name="seen" value="([0-9a-f]+)"', page)
    assert found, "the record form says nothing of what it was filled from"
    return found[1]


async def admin_token(client: httpx.AsyncClient) -> str:
    """Sign in as the seed admin (Daniel Kim); the token the page's forms carry."""
    await sign_in(client, "dkim")
    page = await client.get("/dashboard/staff")
    assert page.status_code == 200
    return form_token(page.text)


@pytest.fixture
async def other(resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser on the same desk (its own cookies)."""
    app = create_app(resources.settings)
    app.state.resources = resources
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as c:
        yield c


async def access_log(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(TranscriptAccess.staff_id, TranscriptAccess.action, TranscriptAccess.detail)
            .where(TranscriptAccess.action.not_in(("read", "search", "report")))
            .order_by(TranscriptAccess.id)
        )
        return [(a, b, c or "") for a, b, c in rows.all()]


async def staff_row(sessions: async_sessionmaker[AsyncSession], staff_id: str) -> Staff | None:
    async with sessions() as session:
        return await session.get(Staff, staff_id)


# ------------------------------------------------------------------------------------- reading


async def test_an_admin_sees_every_staff_member_with_names_not_ids(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "dkim")
    page = await client.get("/dashboard/staff")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    for name in ("Maria Garcia", "James Nguyen", "Tasha Brooks", "Ravi Patel", "Linda Okafor"):
        assert name in text
    # departments by the desk's names, roles in words, presence, tokens in use
    assert "Reference Desk, CARE Team" in text  # Linda Okafor
    assert "Reference Desk, Northeast Campus Library" in text  # James Nguyen
    assert "care-team" not in text.split("<table", 1)[1].split("</table>", 1)[0]
    assert "Supervisor" in text and "Admin" in text
    row = text.split('data-staff-id="dkim"', 1)[1].split("</tr>", 1)[0]
    assert "Online" in row  # signing in started his shift
    assert "1 in use" in row and "Today" in row  # the seed token; signed in just now
    assert 'href="/dashboard/staff/mgarcia"' in text
    # the add form: labelled fields, checkbox groups in fieldsets with legends
    assert '<label for="add-id">' in text and "<legend>Departments</legend>" in text
    assert 'name="departments" value="writing-center"' in text and "Writing Center" in text


async def test_the_console_links_the_page_for_admins_only(client: httpx.AsyncClient) -> None:
    await sign_in(client, "dkim")
    assert 'href="/dashboard/staff"' in (await client.get("/dashboard")).text
    assert 'href="/dashboard/staff"' in (await client.get("/dashboard/reports")).text
    for staff_id in ("lokafor", "mgarcia"):
        client.cookies.clear()
        await sign_in(client, staff_id)
        assert 'href="/dashboard/staff"' not in (await client.get("/dashboard")).text
    assert 'href="/dashboard/staff"' not in (await client.get("/dashboard/reports")).text


async def test_an_unknown_member_is_the_console_not_found_page(client: httpx.AsyncClient) -> None:
    await sign_in(client, "dkim")
    page = await client.get("/dashboard/staff/nobody")
    assert page.status_code == 404 and "No such staff member" in page.text
    assert "Back to the desk console" in page.text


# ------------------------------------------------------------------------------------ refusals

ROUTES = [
    ("GET", "/dashboard/staff"),
    ("POST", "/dashboard/staff"),
    ("GET", "/dashboard/staff/mgarcia"),
    ("POST", "/dashboard/staff/mgarcia"),
    ("GET", "/dashboard/staff/mgarcia/deactivate"),
    ("POST", "/dashboard/staff/mgarcia/deactivate"),
    ("POST", "/dashboard/staff/mgarcia/reactivate"),
    ("POST", "/dashboard/staff/mgarcia/tokens"),
    ("POST", "/dashboard/staff/mgarcia/tokens/1/revoke"),
]


@pytest.mark.parametrize("staff_id", ["mgarcia", "lokafor"])
async def test_staff_and_supervisors_are_refused_on_every_route(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], staff_id: str
) -> None:
    await sign_in(client, staff_id)
    # a form as an admin's page would post it, with the token of this session
    own = form_token_of_session(client, client.cookies.get(COOKIE) or "")
    form = {**NEW, "form_token": own, "role": "admin", "label": "mine", "name": "X"}
    for method, path in ROUTES:
        answer = await client.request(method, path, data=form if method == "POST" else None)
        assert answer.status_code == 403, (method, path)
        assert "Staff administration is for admins" in answer.text, (method, path)
        assert "form_token" not in answer.text
    assert await staff_row(sessions, "awilson") is None
    mgarcia = await staff_row(sessions, "mgarcia")
    assert mgarcia is not None and mgarcia.active and mgarcia.name == "Maria Garcia"
    async with sessions() as session:
        token = await session.get(StaffToken, 1)
        assert token is not None and token.revoked_at is None
    assert await access_log(sessions) == []


def form_token_of_session(client: httpx.AsyncClient, cookie: str) -> str:
    """The form token an admin page would carry for this cookie (what a forger lacks)."""
    from services.status.console.staff_page import form_token as token_of
    from services.status.settings import StatusSettings

    return token_of(cookie, StatusSettings(env="development").session_secret)


async def test_signed_out_visitors_are_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    for method, path in ROUTES:
        answer = await client.request(
            method, path, data={"name": "x"} if method == "POST" else None
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"


async def test_a_form_posted_from_another_site_or_session_is_refused(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    form = {**NEW, "form_token": token}
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        refused = await client.post("/dashboard/staff", data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert "This form came from another site" in refused.text
        assert "Nothing was changed" in refused.text
    for forged in ("", "0" * 64, token[:-1] + ("0" if token[-1] != "0" else "1")):
        refused = await client.post("/dashboard/staff", data={**form, "form_token": forged})
        assert refused.status_code == 403 and "This form has expired" in refused.text
    missing = {k: v for k, v in form.items() if k != "form_token"}
    refused = await client.post("/dashboard/staff", data=missing)
    assert refused.status_code == 403
    for path in (
        "/dashboard/staff/mgarcia/deactivate",
        "/dashboard/staff/mgarcia/tokens",
        "/dashboard/staff/mgarcia/tokens/1/revoke",
    ):
        refused = await client.post(
            path, data={"form_token": token, "label": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert refused.status_code == 403, path
    assert await staff_row(sessions, "awilson") is None
    assert (await staff_row(sessions, "mgarcia")).active  # type: ignore[union-attr]
    assert await access_log(sessions) == []
    # the same form from the page itself goes through
    done = await client.post(
        "/dashboard/staff",
        data=form,
        headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://status"},
    )
    assert done.status_code == 303


async def test_a_form_token_is_good_for_one_session_only(
    client: httpx.AsyncClient, other: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    await sign_in(other, "dkim")
    refused = await other.post("/dashboard/staff", data={**NEW, "form_token": token})
    assert refused.status_code == 403 and "expired" in refused.text
    assert await staff_row(sessions, "awilson") is None


# -------------------------------------------------------------------------------------- adding


async def test_an_admin_adds_a_staff_member(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    added = await client.post("/dashboard/staff", data={**NEW, "form_token": token})
    assert added.status_code == 303
    assert added.headers["location"] == "/dashboard/staff/awilson?done=added"
    page = await client.get(added.headers["location"])
    assert page.status_code == 200
    assert "Added Ana Wilson" in page.text and 'role="status"' in page.text
    assert "No tokens yet" in page.text
    row = await staff_row(sessions, "awilson")
    assert row is not None and row.active and row.role == "staff"
    assert row.departments == ["reference", "campus-ne"] and row.campus == "campus-ne"
    assert row.email == "ana.wilson@example.edu"
    listing = (await client.get("/dashboard/staff")).text
    assert "Ana Wilson" in listing and "Reference Desk, Northeast Campus Library" in listing
    assert await access_log(sessions) == [("dkim", "staff-add", "awilson")]


async def test_bad_input_comes_back_with_the_reasons_next_to_the_fields(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    bad = {
        "form_token": token,
        "id": "Ana Wilson!",
        "name": "",
        "email": "not-an-email",
        "campus": "x" * 40,
        "role": "overlord",
        "departments": ["reference", "../../x"],
    }
    page = await client.post("/dashboard/staff", data=bad)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "The staff member was not added: 6 things need fixing below." in text
    assert "Use 2 to 64 lowercase letters" in text
    assert "Enter the staff member&#39;s name." in text
    assert "Enter an email address like" in text
    assert "A campus is at most 32 characters" in text
    assert "Choose staff, supervisor or admin." in text
    assert "The desk has no department ../../x" in text
    # what was typed stays; focus goes to the first field with an error, which names it
    assert 'value="Ana Wilson!"' in text and 'value="not-an-email"' in text
    field = re.search(r'<input id="add-id"[^>]*>', text)
    assert field and "autofocus" in field[0] and 'aria-invalid="true"' in field[0]
    assert 'aria-describedby="id-error id-hint"' in field[0]
    assert text.count("autofocus") == 1
    assert await staff_row(sessions, "ana wilson!") is None
    assert await access_log(sessions) == []

    # only the name missing: focus goes to the name
    page = await client.post("/dashboard/staff", data={**NEW, "name": " ", "form_token": token})
    assert page.status_code == 422 and "1 thing needs fixing" in page.text
    field = re.search(r'<input id="add-name"[^>]*>', page.text)
    assert field and "autofocus" in field[0]
    assert 'name="departments" value="campus-ne" checked' in page.text  # the ticks stay


async def test_an_id_in_use_is_refused_in_words(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    page = await client.post("/dashboard/staff", data={**NEW, "id": "mgarcia", "form_token": token})
    assert page.status_code == 422
    assert "A staff member with the id mgarcia exists already" in page.text
    row = await staff_row(sessions, "mgarcia")
    assert row is not None and row.name == "Maria Garcia"


# ------------------------------------------------------------------------------------ changing


async def test_a_department_change_on_the_page_reaches_the_router(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], publisher: FakePublisher
) -> None:
    """As through the admin API: an Online librarian's new departments are published."""
    assert (await client.post("/shift/login", headers=bearer("mgarcia"))).is_success
    token = await admin_token(client)
    published = len(publisher.on(PRESENCE.name))
    changed = await client.post(
        "/dashboard/staff/mgarcia",
        data={
            "form_token": token,
            "seen": await seen(client, "mgarcia"),
            "name": "Maria Garcia",
            "email": "maria.garcia@example.edu",
            "role": "staff",
            "departments": ["reference", "writing-center"],
        },
    )
    assert changed.status_code == 303, changed.text
    [again] = publisher.on(PRESENCE.name)[published:]
    assert (again.staff_id, again.departments) == (  # type: ignore[attr-defined]
        "mgarcia",
        ["reference", "writing-center"],
    )


async def test_an_admin_changes_a_role_departments_and_name(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    page = (await client.get("/dashboard/staff/mgarcia")).text
    assert (
        'value="Maria Garcia"' in page and 'id="edit-role-staff" name="role" value="staff"' in page
    )
    changed = await client.post(
        "/dashboard/staff/mgarcia",
        data={
            "form_token": token,
            "seen": await seen(client, "mgarcia"),
            "name": "Maria Garcia-Lopez",
            "email": "maria.garcia@example.edu",
            "campus": "campus-se",
            "role": "supervisor",
            "departments": ["reference", "writing-center"],
        },
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == "/dashboard/staff/mgarcia?done=changed"
    page = (await client.get(changed.headers["location"])).text
    assert "Saved the changes to Maria Garcia-Lopez." in page
    row = await staff_row(sessions, "mgarcia")
    assert row is not None and row.role == "supervisor" and row.name == "Maria Garcia-Lopez"
    assert row.departments == ["reference", "writing-center"]
    assert await access_log(sessions) == [
        ("dkim", "staff-change", "mgarcia: departments, name, role")
    ]
    # the same again changes nothing, and says so
    same = await client.post(
        "/dashboard/staff/mgarcia",
        data={
            "form_token": token,
            "seen": await seen(client, "mgarcia"),
            "name": "Maria Garcia-Lopez",
            "email": "maria.garcia@example.edu",
            "campus": "campus-se",
            "role": "supervisor",
            "departments": ["writing-center", "reference"],
        },
    )
    assert same.headers["location"].endswith("done=unchanged")
    assert len(await access_log(sessions)) == 1
    # an unknown department is refused (the API refuses it too)
    bad = await client.post(
        "/dashboard/staff/mgarcia",
        data={
            "form_token": token,
            "seen": await seen(client, "mgarcia"),
            "name": "Maria Garcia-Lopez",
            "email": "maria.garcia@example.edu",
            "role": "supervisor",
            "departments": ["reference", "astrology"],
        },
    )
    assert bad.status_code == 422 and "The desk has no department astrology" in bad.text
    assert (await staff_row(sessions, "mgarcia")).departments == [  # type: ignore[union-attr]
        "reference",
        "writing-center",
    ]


async def test_a_form_filled_before_another_admins_change_saves_nothing(
    client: httpx.AsyncClient, other: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two admins had one member's page open; the first made them staff, the second then saved
    a name change from the older form, and the member was a supervisor again."""
    await client.patch("/admin/staff/lokafor", json={"role": "admin"}, headers=bearer("dkim"))
    mine, theirs = await admin_token(client), None
    await sign_in(other, "lokafor")
    theirs = form_token((await other.get("/dashboard/staff")).text)
    before = await seen(other, "mgarcia")  # the second admin's form, filled now
    record = {
        "name": "Maria Garcia",
        "email": "maria.garcia@example.edu",
        "campus": "campus-se",
        "departments": ["reference"],
    }
    first = await client.post(
        "/dashboard/staff/mgarcia",
        data={
            **record,
            "form_token": mine,
            "seen": await seen(client, "mgarcia"),
            "role": "supervisor",
        },
    )
    assert first.status_code == 303
    late = await other.post(
        "/dashboard/staff/mgarcia",
        data={**record, "form_token": theirs, "seen": before, "role": "staff", "name": "Maria G."},
    )
    assert late.status_code == 409 and "Another admin changed this record" in late.text
    assert 'value="Maria G."' in late.text  # what they typed is still in the form
    row = await staff_row(sessions, "mgarcia")
    assert row is not None and row.role == "supervisor" and row.name == "Maria Garcia"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_saves_at_the_same_moment_one_waits_and_is_told(
    client: httpx.AsyncClient, other: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Two admins saved fresh forms at the same moment; both were told "changed" and one
    name silently replaced the other (3 of a probe's 5 tries). The record is held while a
    save checks it (PostgreSQL; SQLite's single writer leaves the last save standing)."""
    await client.patch("/admin/staff/lokafor", json={"role": "admin"}, headers=bearer("dkim"))
    mine = await admin_token(client)
    await sign_in(other, "lokafor")
    theirs = form_token((await other.get("/dashboard/staff")).text)
    record = {
        "email": "maria.garcia@example.edu",
        "campus": "campus-se",
        "role": "staff",
        "departments": ["reference"],
    }
    for attempt in range(3):
        filled = await seen(client, "mgarcia")
        answers = await asyncio.gather(
            client.post(
                "/dashboard/staff/mgarcia",
                data={**record, "form_token": mine, "seen": filled, "name": f"Ana {attempt}"},
            ),
            other.post(
                "/dashboard/staff/mgarcia",
                data={**record, "form_token": theirs, "seen": filled, "name": f"Bea {attempt}"},
            ),
        )
        assert sorted(a.status_code for a in answers) == [303, 409], [a.text for a in answers]


async def test_an_admin_cannot_drop_their_own_admin_role_or_deactivate_themselves(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    own = {
        "form_token": token,
        "seen": await seen(client, "dkim"),
        "name": "Daniel Kim",
        "email": "daniel.kim@example.edu",
        "campus": "campus-connect",
        "role": "supervisor",
        "departments": ["reference"],
    }
    page = await client.post("/dashboard/staff/dkim", data=own)
    assert page.status_code == 409
    assert "You cannot give up your own admin role" in page.text
    field = re.search(r'<input type="radio" id="edit-role-staff"[^>]*>', page.text)
    assert field and "autofocus" in field[0]
    confirm = await client.get("/dashboard/staff/dkim/deactivate")
    assert confirm.status_code == 409 and "You cannot deactivate yourself" in confirm.text
    assert 'id="confirm-deactivate"' not in confirm.text
    member = (await client.get("/dashboard/staff/dkim")).text
    assert "/dashboard/staff/dkim/deactivate" not in member
    refused = await client.post("/dashboard/staff/dkim/deactivate", data={"form_token": token})
    assert refused.status_code == 409 and "You cannot deactivate yourself" in refused.text
    row = await staff_row(sessions, "dkim")
    assert row is not None and row.active and row.role == "admin"
    assert await access_log(sessions) == []
    # the rule is the admin API's too
    api = await client.patch("/admin/staff/dkim", json={"role": "staff"}, headers=bearer("dkim"))
    assert api.status_code == 409


# ---------------------------------------------------------------------------------- deactivating


async def test_deactivation_asks_first_then_signs_them_out_everywhere(
    client: httpx.AsyncClient,
    other: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
) -> None:
    await sign_in(other, "jnguyen")
    assert (await other.get("/dashboard/state")).status_code == 200
    await arrive(sessions, "c-held", channel=Channel.SMS, minutes_ago=5)
    assert (await client.post("/queue/c-held/claim", headers=bearer("jnguyen"))).is_success
    token = await admin_token(client)
    member = (await client.get("/dashboard/staff/jnguyen")).text
    assert 'href="/dashboard/staff/jnguyen/deactivate"' in member
    confirm = await client.get("/dashboard/staff/jnguyen/deactivate")
    assert confirm.status_code == 200 and "Deactivate James Nguyen?" in confirm.text
    assert "set Offline (they are Online now)" in confirm.text
    assert "Their 1 sign-in token is revoked." in confirm.text
    assert "The 1 open conversation they have goes back to the queue" in confirm.text
    assert "crisis" not in confirm.text.split('class="consequences"', 1)[1].split("</ul>", 1)[0]
    # a crisis among them is said apart: nobody is on it once it is back in the queue
    await arrive(sessions, "c-crisis", channel=Channel.CHAT, department="care-team", crisis=True)
    for act in ("acknowledge", "claim"):
        done = await client.post(f"/queue/c-crisis/{act}", headers=bearer("jnguyen"))
        assert done.is_success, done.text
    confirm = await client.get("/dashboard/staff/jnguyen/deactivate")
    assert "The 2 open conversations they have go back to the queue" in confirm.text
    assert (
        "One of them is a crisis: tell the CARE Team or a colleague on shift to take it now."
        in (confirm.text)
    )
    assert (await staff_row(sessions, "jnguyen")).active  # type: ignore[union-attr]  # asked only

    done = await client.post("/dashboard/staff/jnguyen/deactivate", data={"form_token": token})
    assert done.status_code == 303
    page = (await client.get(done.headers["location"])).text
    assert "Deactivated James Nguyen" in page and "Reactivate James Nguyen" in page
    assert (await staff_row(sessions, "jnguyen")).active is False  # type: ignore[union-attr]
    assert (await other.get("/dashboard/state")).status_code == 401  # signed out at once
    async with sessions() as session:
        for cid in ("c-held", "c-crisis"):
            held = await session.get(Conversation, cid)
            assert held is not None and held.assignee is None, cid  # back in the queue
    async with sessions() as session:
        presence = await session.get(Presence, "jnguyen")
        assert presence is not None and presence.status == "Offline"
    assert [e.staff_id for e in publisher.on(PRESENCE.name)][-1] == "jnguyen"  # type: ignore[attr-defined]
    listing = (await client.get("/dashboard/staff")).text
    assert "Deactivated" in listing.split('data-staff-id="jnguyen"', 1)[1].split("</tr>", 1)[0]
    assert await access_log(sessions) == [("dkim", "staff-deactivate", "jnguyen")]

    back = await client.post("/dashboard/staff/jnguyen/reactivate", data={"form_token": token})
    assert back.headers["location"].endswith("done=reactivated")
    assert (await staff_row(sessions, "jnguyen")).active  # type: ignore[union-attr]
    assert (await sign_in_answer(other, "jnguyen", "dev-jnguyen-token")).status_code == 401


async def sign_in_answer(client: httpx.AsyncClient, staff_id: str, token: str) -> httpx.Response:
    return await client.post("/dashboard/login", data={"staff_id": staff_id, "token": token})


# ------------------------------------------------------------------------------------- tokens


async def test_an_issued_token_is_shown_once_signs_in_and_stops_when_revoked(
    client: httpx.AsyncClient,
    other: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = await admin_token(client)
    issued = await client.post(
        "/dashboard/staff/rpatel/tokens", data={"form_token": token, "label": "desk sign-in"}
    )
    assert issued.status_code == 200
    assert issued.headers["cache-control"] == "no-store"
    found = re.search(r'<input id="new-token" class="token-value" value="([^"]+)"', issued.text)
    assert found, issued.text
    secret = found[1]
    assert "will not be shown again" in issued.text and 'data-copy="new-token"' in issued.text
    assert "staff id <strong>rpatel</strong>" in issued.text
    # only its hash is kept, and nothing logged or audited carries it
    async with sessions() as session:
        kept = (
            await session.execute(select(StaffToken).where(StaffToken.label == "desk sign-in"))
        ).scalar_one()
        assert kept.token_hash == hash_token(secret)
    assert all(secret not in record.getMessage() for record in caplog.records)
    assert all(secret not in str(record.__dict__) for record in caplog.records)
    assert await access_log(sessions) == [("dkim", "token-issue", f"rpatel token {kept.id}")]
    # shown once: the page afterwards lists it without the secret
    later = (await client.get("/dashboard/staff/rpatel")).text
    assert secret not in later and "desk sign-in" in later
    # who issued it, from the access log: an admin's token on a colleague's account is one
    # they can act as the colleague with (the seeded development token has no line: no issuer)
    listed = later.split(f'data-token-id="{kept.id}"', 1)[1].split("</li>", 1)[0]
    assert " by Daniel Kim;" in listed

    # the new token signs in
    assert (await sign_in_answer(other, "rpatel", secret)).status_code == 303
    assert (await other.get("/dashboard/state")).status_code == 200

    revoked = await client.post(
        f"/dashboard/staff/rpatel/tokens/{kept.id}/revoke", data={"form_token": token}
    )
    assert revoked.status_code == 303
    page = (await client.get(revoked.headers["location"])).text
    assert "Token revoked: Ravi Patel can no longer sign in with “desk sign-in”." in page
    assert (await other.get("/dashboard/state")).status_code == 401  # its session ended
    other.cookies.clear()
    assert (await sign_in_answer(other, "rpatel", secret)).status_code == 401
    assert (await sign_in_answer(other, "rpatel", "dev-rpatel-token")).status_code == 303
    assert (await access_log(sessions))[-1] == ("dkim", "token-revoke", f"rpatel token {kept.id}")


async def test_the_issue_form_sent_again_issues_nothing_new(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A browser reload of the answer that showed a token sends the form again: each reload
    had issued another token, never seen by anyone and left working."""
    token = await admin_token(client)
    page = (await client.get("/dashboard/staff/rpatel")).text
    found = re.search(r'name="issue_key" value="([A-Za-z0-9_-]+)"', page)
    assert found, "the issue form carries no one-time key"
    form = {"form_token": token, "label": "desk sign-in", "issue_key": found[1]}
    first = await client.post("/dashboard/staff/rpatel/tokens", data=form)
    assert first.status_code == 200 and 'id="new-token"' in first.text
    again = await client.post("/dashboard/staff/rpatel/tokens", data=form)
    assert again.status_code == 409
    assert 'id="new-token"' not in again.text
    assert "This form already issued the token “desk sign-in”" in again.text
    assert "Nothing new was issued" in again.text
    # the page after it holds a fresh key: issuing another is one click away
    fresh = re.search(r'name="issue_key" value="([A-Za-z0-9_-]+)"', again.text)
    assert fresh and fresh[1] != found[1]
    # a key is one member's form: it never stands for another member's token
    elsewhere = await client.post("/dashboard/staff/jnguyen/tokens", data=form)
    assert elsewhere.status_code == 422 and 'id="new-token"' not in elsewhere.text
    # a page from before the key (none sent) still issues
    keyless = await client.post(
        "/dashboard/staff/rpatel/tokens", data={"form_token": token, "label": "old page"}
    )
    assert keyless.status_code == 200 and 'id="new-token"' in keyless.text
    async with sessions() as session:
        labels = (
            await session.scalars(select(StaffToken.label).where(StaffToken.staff_id != "x"))
        ).all()
    assert labels.count("desk sign-in") == 1 and labels.count("old page") == 1
    issues = [line for line in await access_log(sessions) if line[1] == "token-issue"]
    assert len(issues) == 2
    # sent twice at the same moment (a double submit reaching two replicas): one token
    page = (await client.get("/dashboard/staff/rpatel")).text
    found = re.search(r'name="issue_key" value="([A-Za-z0-9_-]+)"', page)
    assert found
    twice = {"form_token": token, "label": "double click", "issue_key": found[1]}
    answers = await asyncio.gather(
        client.post("/dashboard/staff/rpatel/tokens", data=twice),
        client.post("/dashboard/staff/rpatel/tokens", data=twice),
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    async with sessions() as session:
        doubled = await session.scalars(
            select(StaffToken.id).where(StaffToken.label == "double click")
        )
        assert len(doubled.all()) == 1


async def test_token_forms_refuse_what_the_rules_refuse_in_words(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await admin_token(client)
    empty = await client.post(
        "/dashboard/staff/rpatel/tokens", data={"form_token": token, "label": " "}
    )
    assert empty.status_code == 422 and "Enter a label saying what the token is for" in empty.text
    field = re.search(r'<input id="issue-label"[^>]*>', empty.text)
    assert field and "autofocus" in field[0]
    session_like = await client.post(
        "/dashboard/staff/rpatel/tokens", data={"form_token": token, "label": "session:9"}
    )
    assert session_like.status_code == 422 and "may not start with" in session_like.text
    foreign = await client.post(
        "/dashboard/staff/jnguyen/tokens/1/revoke", data={"form_token": token}
    )  # token 1 is mgarcia's
    assert foreign.status_code == 404 and "not one of this staff member" in foreign.text
    await client.post("/dashboard/staff/tbrooks/deactivate", data={"form_token": token})
    inactive = await client.post(
        "/dashboard/staff/tbrooks/tokens", data={"form_token": token, "label": "again"}
    )
    assert inactive.status_code == 409 and "reactivate them before issuing" in inactive.text
    async with sessions() as session:
        one = await session.get(StaffToken, 1)
        assert one is not None and one.revoked_at is None
        labels = (await session.scalars(select(StaffToken.label))).all()
        assert "again" not in labels and "session:9" not in labels


async def test_the_admin_api_writes_the_same_access_log(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = bearer("dkim")
    await client.post("/admin/staff", json={**NEW, "departments": ["reference"]}, headers=admin)
    issued = (await client.post("/admin/staff/awilson/tokens", headers=admin)).json()
    await client.patch("/admin/staff/awilson", json={"role": "supervisor"}, headers=admin)
    await client.delete(f"/admin/staff/awilson/tokens/{issued['token_id']}", headers=admin)
    await client.post("/admin/staff/awilson/deactivate", headers=admin)
    assert await access_log(sessions) == [
        ("dkim", "staff-add", "awilson"),
        ("dkim", "token-issue", f"awilson token {issued['token_id']}"),
        ("dkim", "staff-change", "awilson: role"),
        ("dkim", "token-revoke", f"awilson token {issued['token_id']}"),
        ("dkim", "staff-deactivate", "awilson"),
    ]
    assert all(issued["token"] not in detail for _, _, detail in await access_log(sessions))


async def test_a_token_the_operator_issued_says_so(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """`refdesk staff token` on the status database: issued by an operator, not an admin."""
    await admin_token(client)
    token_id, _secret = await staff_cmd.issue(sessions, "rpatel", "laptop")
    page = (await client.get("/dashboard/staff/rpatel")).text
    listed = page.split(f'data-token-id="{token_id}"', 1)[1].split("</li>", 1)[0]
    assert " by an operator (refdesk staff);" in listed
