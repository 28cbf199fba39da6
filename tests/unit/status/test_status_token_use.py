"""When each sign-in token was last used: noted per request in memory, written by the periodic
task at most once a minute per token, shown to admins (the API, the staff page)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, bearer

from services.status.auth import Actor
from services.status.models import StaffToken
from services.status.periodic import tick
from services.status.resources import Resources
from services.status.token_use import TokenUse, token_use_of


async def last_used(sessions: async_sessionmaker[AsyncSession], token_id: int) -> object:
    async with sessions() as session:
        return (
            await session.execute(select(StaffToken.last_used_at).where(StaffToken.id == token_id))
        ).scalar_one()


async def issued(client: httpx.AsyncClient, staff_id: str, label: str) -> tuple[int, str]:
    answer = await client.post(
        f"/admin/staff/{staff_id}/tokens", json={"label": label}, headers=bearer("dkim")
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token_id"], answer.json()["token"]


async def test_a_token_used_is_shown_used_after_the_sweep_and_one_never_used_is_not(
    client: httpx.AsyncClient, resources: Resources, clock: Clock
) -> None:
    used_id, used = await issued(client, "mgarcia", "desk laptop")
    idle_id, _ = await issued(client, "mgarcia", "forgotten tablet")
    clock.advance(90)
    me = await client.get("/staff/me", headers={"Authorization": f"Bearer {used}"})
    assert me.status_code == 200
    listed = await client.get("/admin/staff/mgarcia/tokens", headers=bearer("dkim"))
    by_id = {row["id"]: row for row in listed.json()}
    assert by_id[used_id]["last_used_at"] is None  # noted, not yet written
    await tick(resources)
    listed = await client.get("/admin/staff/mgarcia/tokens", headers=bearer("dkim"))
    by_id = {row["id"]: row for row in listed.json()}
    assert by_id[used_id]["last_used_at"] == clock.now.isoformat()
    assert by_id[idle_id]["last_used_at"] is None


async def test_a_console_sign_in_and_its_requests_count_as_the_tokens_use(
    client: httpx.AsyncClient,
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    token_id, token = await issued(client, "jnguyen", "reference desk")
    signed_in = await client.post("/dashboard/login", data={"staff_id": "jnguyen", "token": token})
    assert signed_in.status_code == 303, signed_in.text
    await tick(resources)
    assert await last_used(sessions, token_id) == T0
    clock.advance(600)
    assert (await client.get("/dashboard")).status_code == 200  # the session's cookie
    await tick(resources)
    assert await last_used(sessions, token_id) == T0 + timedelta(seconds=600)


async def test_the_staff_page_says_when_each_token_was_last_used(
    client: httpx.AsyncClient, resources: Resources, clock: Clock
) -> None:
    _, token = await issued(client, "mgarcia", "desk laptop")
    await issued(client, "mgarcia", "forgotten tablet")
    assert (await client.get("/staff/me", headers={"Authorization": f"Bearer {token}"})).is_success
    await tick(resources)
    admin = await client.post(
        "/dashboard/login", data={"staff_id": "dkim", "token": "dev-dkim-token"}
    )
    assert admin.status_code == 303
    page = await client.get("/dashboard/staff/mgarcia")
    assert page.status_code == 200
    items = {
        label: page.text.split(f"<strong>{label}</strong>", 1)[1].split("</li>", 1)[0]
        for label in ("desk laptop", "forgotten tablet", "seed")
    }
    assert "last used <time" in items["desk laptop"]
    assert "never used" in items["forgotten tablet"] and "never used" in items["seed"]


async def test_uses_are_written_once_a_minute_per_token_and_the_later_time_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        token = (
            (await session.execute(select(StaffToken).where(StaffToken.staff_id == "mgarcia")))
            .scalars()
            .first()
        )
        assert token is not None
        token_id = token.id
    actor = Actor(id="mgarcia", role="staff", token_id=token_id)
    uses = TokenUse()
    uses.note(actor, T0)
    uses.note(actor, T0 + timedelta(seconds=5))
    async with sessions() as session:
        assert await uses.flush(session) == 1
    assert await last_used(sessions, token_id) == T0 + timedelta(seconds=5)
    uses.note(actor, T0 + timedelta(seconds=30))  # within the minute: not written again
    async with sessions() as session:
        assert await uses.flush(session) == 0
    # another replica wrote a later use meanwhile: an earlier one never moves it back
    async with sessions() as session:
        await session.execute(
            update(StaffToken)
            .where(StaffToken.id == token_id)
            .values(last_used_at=T0 + timedelta(minutes=10))
        )
        await session.commit()
    uses.note(actor, T0 + timedelta(minutes=2))
    async with sessions() as session:
        assert await uses.flush(session) == 1
    assert await last_used(sessions, token_id) == T0 + timedelta(minutes=10)
    uses.note(None, T0)  # signed out: nothing to note
    uses.note(Actor(id="x", role="staff"), T0)  # no token (a test actor)
    async with sessions() as session:
        assert await uses.flush(session) == 0


async def test_a_failed_write_keeps_the_uses_for_the_next_sweep(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    uses = TokenUse()
    actor = Actor(id="mgarcia", role="staff", token_id=1)
    uses.note(actor, T0)

    async def down(*_args: object, **_kwargs: object) -> None:
        raise ConnectionError("database away")

    async with sessions() as session:
        monkeypatch.setattr(session, "execute", down)
        with pytest.raises(ConnectionError):
            await uses.flush(session)
    async with sessions() as session:
        assert await uses.flush(session) == 1


def test_one_per_process() -> None:
    extra: dict[str, object] = {}
    assert token_use_of(extra) is token_use_of(extra)
