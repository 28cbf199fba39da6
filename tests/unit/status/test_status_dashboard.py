"""The dashboard over HTTP: sign-in, session cookie, CSRF header, state JSON, labels."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import FakePublisher, arrive, bearer

from services.status.auth import COOKIE
from shared.events import Channel, StaffStatus
from shared.topics import PRESENCE


async def sign_in(client: httpx.AsyncClient, staff_id: str, token: str) -> httpx.Response:
    return await client.post("/dashboard/login", data={"staff_id": staff_id, "token": token})


async def test_sign_in_form_then_dashboard(client: httpx.AsyncClient) -> None:
    page = await client.get("/dashboard")
    assert page.status_code == 200 and 'id="sign-in"' in page.text
    wrong = await sign_in(client, "mgarcia", "dev-jnguyen-token")
    assert wrong.status_code == 401 and "not recognised" in wrong.text
    ok = await sign_in(client, "mgarcia", "dev-mgarcia-token")
    assert ok.status_code == 303 and COOKIE in ok.cookies
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    # a browser-session cookie: closing the browser of a shared desk computer signs out
    assert "max-age" not in cookie and "expires" not in cookie
    board = await client.get("/dashboard")
    assert 'data-staff-id="mgarcia"' in board.text
    assert "/static/status/console/console.js" in board.text


async def test_a_sign_in_posted_from_another_site_is_refused(client: httpx.AsyncClient) -> None:
    """Login CSRF (an outside probe): a page elsewhere could sign a librarian's browser into
    another account, and set that account Online."""
    form = {"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    for headers in (
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        refused = await client.post("/dashboard/login", data=form, headers=headers)
        assert refused.status_code == 403 and "another site" in refused.text, headers
        assert COOKIE not in refused.cookies
    state = await client.get("/dashboard/state")
    assert state.status_code == 401  # nobody was signed in, nor set Online
    for headers in (
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://status"},
        {"Origin": "http://status"},
        {},  # a script without browser headers
    ):
        ok = await client.post("/dashboard/login", data=form, headers=headers)
        assert ok.status_code == 303, headers


async def test_a_sign_out_posted_from_another_site_ends_nothing(client: httpx.AsyncClient) -> None:
    """A security probe's page on another port of the same host (same-site: SameSite=Strict
    sends the cookie) posted the sign-out form: the librarian was signed out and Offline."""
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    for headers in (
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "http://status:8081"},
    ):
        kept = await client.post("/dashboard/logout", headers=headers)
        assert kept.status_code == 303, headers
        state = await client.get("/dashboard/state")
        assert state.status_code == 200 and state.json()["me"]["status"] == "Online", headers
    own = await client.post("/dashboard/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 303
    assert (await client.get("/dashboard/state")).status_code == 401


async def test_cookie_session_needs_the_csrf_header_for_changes(client: httpx.AsyncClient) -> None:
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    state = await client.get("/dashboard/state")
    assert state.status_code == 200 and state.json()["me"]["status"] == "Online"  # shift started
    blocked = await client.put("/staff/mgarcia/status", json={"status": "Away"})
    assert blocked.status_code == 403
    done = await client.put(
        "/staff/mgarcia/status", json={"status": "Online"}, headers={"X-Requested-With": "refdesk"}
    )
    assert done.status_code == 200
    state = await client.get("/dashboard/state")
    assert state.json()["online"]["Reference Desk"][0]["id"] == "mgarcia"


async def test_tampered_cookie_is_refused(client: httpx.AsyncClient) -> None:
    client.cookies.set(COOKIE, "bWdhcmNpYXw5OTk5OTk5OTk5.deadbeef")
    assert (await client.get("/dashboard/state")).status_code == 401
    assert 'id="sign-in"' in (await client.get("/dashboard")).text


async def test_static_scripts_are_served(client: httpx.AsyncClient) -> None:
    for name in ("console", "actions", "presence", "segments"):
        js = await client.get(f"/static/status/console/{name}.js")
        assert js.status_code == 200 and js.text.startswith("//")


async def test_queue_rows_show_channel_labels_and_overnight(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await arrive(sessions, "sms-night", channel=Channel.SMS, minutes_ago=600, overnight=True)
    await arrive(sessions, "chat-now", channel=Channel.CHAT)
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    page = (await client.get("/dashboard")).text
    row = page[page.index('data-conversation-id="sms-night"') :]
    row = row[: row.index("</tr>")]
    # an inline SVG phone and the word: no emoji (they need emoji fonts)
    assert 'class="row overnight"' in row and "icon-sms" in row and ">SMS<" in row
    assert "Overnight" in row and "12 h" not in row and "10 h 0 min" in row
    assert not any(ord(ch) > 0x2FFF for ch in page)


async def test_signing_in_starts_the_shift_and_publishes_presence(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    assert (await client.get("/staff/me", headers=bearer("tbrooks"))).json()["status"] == "Offline"
    await sign_in(client, "tbrooks", "dev-tbrooks-token")
    me = (await client.get("/staff/me", headers=bearer("tbrooks"))).json()
    assert me["status"] == "Online" and me["shift_started_at"] is not None
    [event] = publisher.on(PRESENCE.name)
    assert (event.staff_id, event.status) == ("tbrooks", StaffStatus.ONLINE)  # type: ignore[attr-defined]
    # signing in again (a second tab) while Away keeps Away
    await client.put("/staff/tbrooks/status", json={"status": "Away"}, headers=bearer("tbrooks"))
    await sign_in(client, "tbrooks", "dev-tbrooks-token")
    assert (await client.get("/staff/me", headers=bearer("tbrooks"))).json()["status"] == "Away"


async def test_signing_in_from_a_shared_conversation_link_opens_it(
    client: httpx.AsyncClient,
) -> None:
    """A colleague's link to a conversation, opened signed out, went to the queue after the
    sign-in: the conversation had to be found again. The form now carries where it came from,
    and the address signed in to is built by the console, never taken from the form."""
    page = await client.get("/dashboard/c/sms-1%20odd")
    assert page.status_code == 200
    assert '<input type="hidden" name="then" value="c:sms-1 odd">' in page.text
    signed = await client.post(
        "/dashboard/login",
        data={"staff_id": "mgarcia", "token": "dev-mgarcia-token", "then": "c:sms-1 odd"},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/dashboard/c/sms-1%20odd"
    me = (await client.get("/staff/me", headers=bearer("mgarcia"))).json()
    assert me["status"] == "Online"  # the console: the shift starts
    elsewhere = await client.post(
        "/dashboard/login",
        data={"staff_id": "mgarcia", "token": "dev-mgarcia-token", "then": "//evil.example/"},
    )
    assert elsewhere.headers["location"] == "/dashboard"


async def test_a_page_elsewhere_cannot_read_as_the_signed_in_librarian(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A page on another port of the same host embedded <img src="/conversations/...">: the
    session cookie went with it and the access log gained reads the librarian never made (an
    outside review). A link the librarian follows from such a page still opens the console."""
    from sqlalchemy import func, select

    from services.status.models import TranscriptAccess

    await arrive(sessions, "planted", channel=Channel.SMS)
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    elsewhere = {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}
    for dest in ("image", "iframe", "empty"):
        read = await client.get(
            "/conversations/planted", headers={**elsewhere, "Sec-Fetch-Dest": dest}
        )
        assert read.status_code == 401, dest
    cross = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    assert (await client.get("/conversations?q=help", headers=cross)).status_code == 401
    async with sessions() as session:
        logged = await session.scalar(select(func.count()).select_from(TranscriptAccess))
    assert logged == 0
    sent = {
        "Sec-Fetch-Site": "same-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    # a script sending the tab there (location.href, window.open without a click)
    scripted = await client.get("/dashboard/c/planted", headers=sent)
    assert 'id="conversation"' not in scripted.text and 'id="sign-in"' in scripted.text
    async with sessions() as session:
        logged = await session.scalar(select(func.count()).select_from(TranscriptAccess))
    assert logged == 0
    followed = {**sent, "Sec-Fetch-User": "?1"}  # a link the librarian clicked
    page = await client.get("/dashboard/c/planted", headers=followed)
    assert page.status_code == 200 and 'id="conversation"' in page.text
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
    assert (await client.get("/conversations/planted", headers=own)).status_code == 200
