"""One token revoked at a time (an outside probe, finding 1): tokens have ids an admin lists,
without their secret, and revokes one by one; a new token leaves the others working until
each is revoked, and revoking one ends the console sessions signed in with it."""

from __future__ import annotations

import httpx
from status_fakes import bearer

from services.status.auth import COOKIE, hash_token

STATE = "/dashboard/state"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue(client: httpx.AsyncClient, staff_id: str, label: str) -> tuple[int, str]:
    answer = await client.post(
        f"/admin/staff/{staff_id}/tokens", json={"label": label}, headers=bearer("dkim")
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["token_id"], body["token"]


async def test_an_admin_lists_tokens_without_their_secret(client: httpx.AsyncClient) -> None:
    token_id, token = await issue(client, "mgarcia", "laptop")
    listed = await client.get("/admin/staff/mgarcia/tokens", headers=bearer("dkim"))
    assert listed.status_code == 200
    rows = listed.json()
    assert [r["label"] for r in rows] == ["seed", "laptop"]
    assert rows[-1]["id"] == token_id and rows[-1]["revoked_at"] is None
    assert token not in listed.text and hash_token(token) not in listed.text
    assert set(rows[-1]) == {
        "id",
        "staff_id",
        "label",
        "created_at",
        "revoked_at",
        "last_used_at",
    }


async def test_revoking_one_token_leaves_the_others_working(client: httpx.AsyncClient) -> None:
    old_id, old = await issue(client, "mgarcia", "old laptop")
    _, new = await issue(client, "mgarcia", "new laptop")
    assert (await client.get("/staff/me", headers=auth(old))).status_code == 200  # both work
    revoked = await client.delete(f"/admin/staff/mgarcia/tokens/{old_id}", headers=bearer("dkim"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get("/staff/me", headers=auth(old))).status_code == 401
    assert (await client.get("/staff/me", headers=auth(new))).status_code == 200
    assert (await client.get("/staff/me", headers=bearer("mgarcia"))).status_code == 200
    again = await client.delete(f"/admin/staff/mgarcia/tokens/{old_id}", headers=bearer("dkim"))
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # already revoked: as was


async def test_revoking_the_token_one_signed_in_with_ends_that_session(
    client: httpx.AsyncClient,
) -> None:
    token_id, token = await issue(client, "mgarcia", "desk")
    signed_in = await client.post("/dashboard/login", data={"staff_id": "mgarcia", "token": token})
    assert signed_in.status_code == 303 and COOKIE in client.cookies
    assert (await client.get(STATE)).status_code == 200
    headers = bearer("dkim")
    await client.delete(f"/admin/staff/mgarcia/tokens/{token_id}", headers=headers)
    assert (await client.get(STATE)).status_code == 401


async def test_only_an_admin_revokes_and_only_a_staff_members_own_token(
    client: httpx.AsyncClient,
) -> None:
    token_id, token = await issue(client, "mgarcia", "x")
    path = f"/admin/staff/mgarcia/tokens/{token_id}"
    assert (await client.delete(path, headers=bearer("lokafor"))).status_code == 403
    assert (
        await client.get("/admin/staff/mgarcia/tokens", headers=bearer("lokafor"))
    ).status_code == 403
    wrong = await client.delete(f"/admin/staff/jnguyen/tokens/{token_id}", headers=bearer("dkim"))
    assert wrong.status_code == 404
    missing = await client.delete("/admin/staff/mgarcia/tokens/99999", headers=bearer("dkim"))
    assert missing.status_code == 404
    assert (
        await client.get("/admin/staff/nobody/tokens", headers=bearer("dkim"))
    ).status_code == 404
    assert (await client.get("/staff/me", headers=auth(token))).status_code == 200


async def test_no_token_for_an_inactive_staff_member(client: httpx.AsyncClient) -> None:
    await client.post("/admin/staff/rpatel/deactivate", headers=bearer("dkim"))
    refused = await client.post("/admin/staff/rpatel/tokens", headers=bearer("dkim"))
    assert refused.status_code == 409
    assert "inactive" in refused.json()["detail"]
    unknown = await client.post("/admin/staff/nobody/tokens", headers=bearer("dkim"))
    assert unknown.status_code == 404
