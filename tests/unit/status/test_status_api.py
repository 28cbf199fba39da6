"""The HTTP API with a fake publisher: shift, status rules, availability, supervisors, admin."""

from __future__ import annotations

import httpx
from status_fakes import FakePublisher, bearer

from services.status.resources import Resources
from shared.events import PresenceChanged, StaffStatus
from shared.topics import PRESENCE

PROBLEM = "application/problem+json"


async def test_shift_login_goes_online_and_publishes_presence(
    client: httpx.AsyncClient,
    publisher: FakePublisher,
) -> None:
    response = await client.post("/shift/login", headers=bearer("tbrooks"))
    assert response.status_code == 200 and response.json()["status"] == "Online"
    [event] = publisher.on(PRESENCE.name)
    assert isinstance(event, PresenceChanged)
    assert (event.staff_id, event.status, event.departments) == (
        "tbrooks",
        StaffStatus.ONLINE,
        ["nw-circulation"],
    )
    assert publisher.sent[0][2] == "tbrooks"  # keyed by staff id
    again = await client.post("/shift/login", headers=bearer("tbrooks"))
    assert again.status_code == 200 and len(publisher.on(PRESENCE.name)) == 1  # no change


async def test_status_rules_and_problems(client: httpx.AsyncClient) -> None:
    anonymous = await client.put("/staff/mgarcia/status", json={"status": "Away"})
    assert anonymous.status_code == 401 and anonymous.headers["content-type"] == PROBLEM
    bad = await client.put(
        "/staff/mgarcia/status", json={"status": "Away"}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401
    other = await client.put(
        "/staff/jnguyen/status", json={"status": "Away"}, headers=bearer("mgarcia")
    )
    assert other.status_code == 403 and other.headers["content-type"] == PROBLEM
    own = await client.put(
        "/staff/mgarcia/status", json={"status": "Away", "note": "lunch"}, headers=bearer("mgarcia")
    )
    assert own.status_code == 200 and own.json()["status"] == "Away"
    by_supervisor = await client.put(
        "/staff/jnguyen/status", json={"status": "Online"}, headers=bearer("lokafor")
    )
    assert by_supervisor.status_code == 200
    invalid = await client.put(
        "/staff/mgarcia/status", json={"status": "Busy"}, headers=bearer("mgarcia")
    )
    assert invalid.status_code == 422


async def test_availability_counts_online_staff_without_names(client: httpx.AsyncClient) -> None:
    await client.post("/shift/login", headers=bearer("tbrooks"))
    await client.post("/shift/login", headers=bearer("mgarcia"))
    await client.put("/staff/mgarcia/status", json={"status": "Away"}, headers=bearer("mgarcia"))
    body = (await client.get("/availability")).json()
    by_id = {d["department"]: d for d in body["departments"]}
    assert by_id["nw-circulation"] == {"department": "nw-circulation", "staffed": True, "online": 1}
    assert by_id["reference"]["staffed"] is False
    one = await client.get("/availability/nw-circulation")
    assert one.json()["online"] == 1 and "tbrooks" not in one.text and "Brooks" not in one.text
    assert (await client.get("/availability/nowhere")).status_code == 404


async def test_supervisor_sees_whos_online_and_forces_offline(
    client: httpx.AsyncClient,
    publisher: FakePublisher,
) -> None:
    await client.post("/shift/login", headers=bearer("rpatel"))
    assert (await client.get("/supervisor/online", headers=bearer("rpatel"))).status_code == 403
    board = (await client.get("/supervisor/online", headers=bearer("lokafor"))).json()
    assert [p["id"] for p in board["departments"]["writing-center"]] == ["rpatel"]
    forced = await client.post("/supervisor/staff/rpatel/force-offline", headers=bearer("lokafor"))
    assert forced.json()["status"] == "Offline"
    last = publisher.on(PRESENCE.name)[-1]
    assert isinstance(last, PresenceChanged)
    assert (last.status, last.changed_by) == (StaffStatus.OFFLINE, "lokafor")


async def test_heartbeat_and_logout(client: httpx.AsyncClient) -> None:
    await client.post("/shift/login", headers=bearer("mgarcia"))
    beat = await client.post("/shift/heartbeat", headers=bearer("mgarcia"))
    assert beat.json()["status"] == "Online"
    out = await client.post("/shift/logout", headers=bearer("mgarcia"))
    assert out.json()["status"] == "Offline"


async def test_admin_manages_staff_and_tokens(client: httpx.AsyncClient) -> None:
    new = {
        "id": "awilson",
        "name": "Ann Wilson",
        "email": "ann.wilson@example.edu",
        "departments": ["tutoring"],
        "campus": "campus-se",
        "role": "staff",
    }
    refused = await client.post("/admin/staff", json=new, headers=bearer("lokafor"))
    assert refused.status_code == 403
    created = await client.post("/admin/staff", json=new, headers=bearer("dkim"))
    assert created.status_code == 201
    dup = await client.post("/admin/staff", json=new, headers=bearer("dkim"))
    assert dup.status_code == 409
    issued = await client.post("/admin/staff/awilson/tokens", headers=bearer("dkim"))
    token = issued.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/shift/login", headers=auth)).json()["status"] == "Online"
    patched = await client.patch(
        "/admin/staff/awilson",
        json={"departments": ["tutoring", "reference"]},
        headers=bearer("dkim"),
    )
    assert patched.json()["departments"] == ["tutoring", "reference"]
    gone = await client.post("/admin/staff/awilson/deactivate", headers=bearer("dkim"))
    assert gone.json()["active"] is False
    assert (await client.post("/shift/login", headers=auth)).status_code == 401
    listing = await client.get("/admin/staff", headers=bearer("dkim"))
    assert "awilson" in [s["id"] for s in listing.json()]


async def test_an_admin_cannot_lock_themselves_out(client: httpx.AsyncClient) -> None:
    """An outside probe's admin token demoted and deactivated its own account: the last admin
    would lock the desk's administration out."""
    admin = bearer("dkim")
    for call in (
        client.patch("/admin/staff/dkim", json={"role": "staff"}, headers=admin),
        client.patch("/admin/staff/dkim", json={"active": False}, headers=admin),
        client.post("/admin/staff/dkim/deactivate", headers=admin),
    ):
        refused = await call
        assert refused.status_code == 409 and "another admin" in refused.json()["detail"]
    assert (await client.get("/staff/me", headers=admin)).json()["role"] == "admin"
    renamed = await client.patch("/admin/staff/dkim", json={"name": "Dan Kim"}, headers=admin)
    assert renamed.status_code == 200


async def test_a_department_the_desk_does_not_know_is_refused(client: httpx.AsyncClient) -> None:
    """A misspelt department left a staff member seeing none of its queue (it answered 200)."""
    for bad in (["../../x"], ["tutoring", "writing center"]):
        patched = await client.patch(
            "/admin/staff/mgarcia", json={"departments": bad}, headers=bearer("dkim")
        )
        assert patched.status_code == 422, bad
        assert patched.headers["content-type"] == "application/problem+json"
        assert "writing-center" in patched.json()["detail"]  # it names the known ones
    new = {"id": "bwu", "name": "Bo Wu", "email": "bo.wu@example.edu", "departments": ["tutor"]}
    assert (await client.post("/admin/staff", json=new, headers=bearer("dkim"))).status_code == 422
    staff = (await client.get("/admin/staff", headers=bearer("dkim"))).json()
    assert "bwu" not in [s["id"] for s in staff]
    assert next(s for s in staff if s["id"] == "mgarcia")["departments"] == ["reference"]


async def test_presence_publish_failure_is_a_503_and_marks_a_republish(
    client: httpx.AsyncClient,
    publisher: FakePublisher,
    resources: Resources,
) -> None:
    publisher.fail = True
    response = await client.post("/shift/login", headers=bearer("mgarcia"))
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    assert resources.extra.get("republish_presence") is True
    publisher.fail = False
    me = await client.get("/staff/me", headers=bearer("mgarcia"))
    assert me.json()["status"] == "Online"  # saved; the sweep republishes
