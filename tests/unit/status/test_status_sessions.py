"""Session hardening (issue 13, finding 8): sign-in throttled per staff id and per client
address (429 with Retry-After), sessions that end server-side on sign-out and on token
revocation, the cookie Secure in production, CSP and frame-ancestors on the pages."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import Clock, arrive, bearer

from services.status.app import create_app
from services.status.auth import COOKIE, HOST_COOKIE, SESSION_LABEL
from services.status.models import StaffToken
from services.status.resources import Resources
from services.status.settings import StatusSettings
from services.status.throttle import PER_ADDRESS, PER_STAFF
from shared.events import Channel
from tests.fakes import secret_like

STATE = "/dashboard/state"


async def sign_in(client: httpx.AsyncClient, staff_id: str, token: str) -> httpx.Response:
    return await client.post("/dashboard/login", data={"staff_id": staff_id, "token": token})


async def test_guessing_a_staff_members_token_is_throttled(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    limit, window = PER_STAFF
    answers = [await sign_in(client, "mgarcia", f"guess-{i}") for i in range(limit + 1)]
    assert [a.status_code for a in answers] == [401] * limit + [429]
    assert 0 < int(answers[-1].headers["retry-after"]) <= window
    assert (await sign_in(client, "mgarcia", "another-guess")).status_code == 429
    # the right token signs in even now: a token cannot be guessed, and the librarian at this
    # address must not be locked out by someone else's guesses
    assert (await sign_in(client, "mgarcia", "dev-mgarcia-token")).status_code == 303
    clock.advance(window)
    assert (await sign_in(client, "mgarcia", "guess-again")).status_code == 401


async def test_guessing_from_one_address_never_locks_the_staff_member_out_elsewhere(
    client: httpx.AsyncClient,
) -> None:
    """Staff ids are guessable (first initial and surname): five wrong tokens from anywhere
    used to keep mgarcia from signing in at the desk for 15 minutes."""
    limit, _ = PER_STAFF
    answers = [await sign_in(client, "mgarcia", f"guess-{i}") for i in range(limit + 1)]
    assert answers[-1].status_code == 429
    desk: Any = client._transport  # the same app, reached from the desk's address
    transport = httpx.ASGITransport(app=desk.app, client=("10.20.0.15", 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://status") as at_desk:
        assert (await sign_in(at_desk, "mgarcia", "dev-mgarcia-token")).status_code == 303


async def test_guessing_across_staff_ids_is_throttled_per_address(
    client: httpx.AsyncClient,
) -> None:
    limit, _ = PER_ADDRESS
    answers = [await sign_in(client, f"staff{i}", "guess") for i in range(limit + 1)]
    assert answers[-2].status_code == 401 and answers[-1].status_code == 429
    assert "retry-after" in answers[-1].headers


async def test_guessing_bearer_tokens_is_throttled_per_address(client: httpx.AsyncClient) -> None:
    limit, _ = PER_ADDRESS
    codes = [
        (await client.get("/staff/me", headers={"Authorization": f"Bearer guess-{i}"})).status_code
        for i in range(limit + 1)
    ]
    assert codes == [401] * limit + [429]
    refused = await client.get("/staff/me", headers={"Authorization": "Bearer guess-again"})
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert refused.headers["content-type"] == "application/problem+json"
    # everyone else behind the same address (a campus NAT) still works: an outside probe's
    # 21 wrong tokens had locked the CARE Team out for 15 minutes
    for staff in ("mgarcia", "lokafor", "dkim"):
        assert (await client.get("/staff/me", headers=bearer(staff))).status_code == 200


async def test_signing_out_ends_the_session_server_side(client: httpx.AsyncClient) -> None:
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    stolen = client.cookies[COOKIE]
    assert (await client.get(STATE)).status_code == 200
    out = await client.post("/dashboard/logout")
    assert out.status_code == 303
    client.cookies.set(COOKIE, stolen)  # a copy kept from before the sign-out
    assert (await client.get(STATE)).status_code == 401
    assert 'id="sign-in"' in (await client.get("/dashboard")).text


async def test_signing_out_of_the_console_ends_the_shift(client: httpx.AsyncClient) -> None:
    await sign_in(client, "tbrooks", "dev-tbrooks-token")
    assert (await client.get("/availability/nw-circulation")).json()["staffed"] is True
    assert (await client.post("/dashboard/logout")).status_code == 303
    me = await client.get("/staff/me", headers=bearer("tbrooks"))
    assert me.json()["status"] == "Offline"
    assert (await client.get("/availability/nw-circulation")).json()["staffed"] is False


async def test_signing_out_of_one_desk_keeps_the_shift_open_at_the_other(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "tbrooks", "dev-tbrooks-token")
    other = httpx.AsyncClient(transport=client._transport, base_url=client.base_url)
    async with other:
        assert (await sign_in(other, "tbrooks", "dev-tbrooks-token")).status_code == 303
        assert (await other.post("/dashboard/logout")).status_code == 303
    me = await client.get("/staff/me", headers=bearer("tbrooks"))
    assert me.json()["status"] == "Online"
    assert (await client.post("/dashboard/logout")).status_code == 303
    me = await client.get("/staff/me", headers=bearer("tbrooks"))
    assert me.json()["status"] == "Offline"


async def test_revoking_the_sign_in_token_ends_its_sessions(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await sign_in(client, "mgarcia", "dev-mgarcia-token")
    assert (await client.get(STATE)).status_code == 200
    async with sessions() as session:
        tokens = (
            await session.execute(select(StaffToken).where(StaffToken.staff_id == "mgarcia"))
        ).scalars()
        for token in tokens:
            if not token.label.startswith(SESSION_LABEL):
                token.revoked_at = clock()
        await session.commit()
    assert (await client.get(STATE)).status_code == 401


async def test_deactivating_staff_ends_their_sessions(client: httpx.AsyncClient) -> None:
    await sign_in(client, "jnguyen", "dev-jnguyen-token")
    cookie = client.cookies[COOKIE]
    client.cookies.clear()
    done = await client.post("/admin/staff/jnguyen/deactivate", headers=bearer("dkim"))
    assert done.status_code == 200, done.text
    client.cookies.set(COOKIE, cookie)
    assert (await client.get(STATE)).status_code == 401


async def test_a_session_cookie_is_not_a_bearer_token(client: httpx.AsyncClient) -> None:
    answer = await sign_in(client, "mgarcia", "dev-mgarcia-token")
    assert answer.status_code == 303
    payload = client.cookies[COOKIE].rsplit(".", 1)[0]
    session_id = base64.urlsafe_b64decode(payload).decode().rsplit("|", 1)[1]
    client.cookies.clear()
    as_bearer = {"Authorization": f"Bearer {session_id}"}
    assert (await client.get("/staff/me", headers=as_bearer)).status_code == 401


def test_the_cookie_is_secure_in_production() -> None:
    settings = StatusSettings(
        env="production", session_secret=secret_like("session"), cookie_secure=False
    )
    assert settings.cookie_secure
    assert secret_like("session") not in repr(settings)
    assert not StatusSettings(env="development").cookie_secure


async def test_a_secure_session_cookie_is_a_host_cookie(
    resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secure (production): the cookie is `__Host-` prefixed, so no other host of the
    college's domain and no plain-HTTP page can plant or overwrite it; it signs in, reads,
    and the sign-out clears it under that name."""
    monkeypatch.setattr(resources.settings, "cookie_secure", True)
    app = create_app(resources.settings)
    app.state.resources = resources
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://status") as secure:
        answer = await sign_in(secure, "mgarcia", "dev-mgarcia-token")
        assert answer.status_code == 303
        [set_cookie] = answer.headers.get_list("set-cookie")
        assert set_cookie.startswith(f"{HOST_COOKIE}=")
        attributes = {a.strip().lower() for a in set_cookie.split(";")[1:]}
        assert {"httponly", "secure", "path=/", "samesite=strict"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
        assert COOKIE not in secure.cookies
        assert (await secure.get(STATE)).status_code == 200
        out = await secure.post("/dashboard/logout", headers={"Sec-Fetch-Site": "same-origin"})
        assert out.status_code == 303
        assert f'{HOST_COOKIE}=""' in out.headers["set-cookie"]
        assert (await secure.get(STATE)).status_code == 401


async def test_pages_forbid_framing_and_foreign_scripts(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard", STATE, "/static/status/console/console.js"):
        answer = await client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert answer.headers["x-frame-options"] == "DENY"


async def test_no_page_with_student_data_is_kept_by_the_browser(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A shared desk computer's browser kept transcripts after sign-out (no Cache-Control);
    the console's own scripts and styles may still be cached."""
    await arrive(sessions, "kept-1", channel=Channel.SMS)
    for path in ("/dashboard", "/dashboard/c/kept-1", "/conversations/kept-1", STATE):
        answer = await client.get(path, headers=bearer("mgarcia"))
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
    script = await client.get("/static/status/console/console.js")
    assert "no-store" not in script.headers.get("cache-control", "")
