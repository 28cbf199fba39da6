"""Admin routes: manage staff, issue, list and revoke tokens (only a token's hash is stored).
Every change is a line of the access log (`staff.log_admin_action`), as on the console's staff
page (console/staff_page.py), which goes through the same functions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from services.status import presence
from services.status import staff as staff_service
from services.status.auth import require_role
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.leavers import give_back_all
from services.status.openapi import ACTION, BODY, FOUND, SIGNED_IN, problems
from services.status.resources import Resources, publish_presence
from services.status.staff import (
    StaffIn,
    StaffPatch,
    check_departments,
    log_admin_action,
    staff_view,
    token_view,
)

router = APIRouter(prefix="/admin/staff", tags=["admin"], responses=SIGNED_IN)


class TokenIn(BaseModel):
    label: str = Field("api", max_length=64)


def _known_departments(res: Resources, departments: list[str] | None) -> None:
    """InvalidInput unless every department is one the desk hands off to (macros.yaml)."""
    check_departments(departments, known=res.book.data().departments)


@router.get("", summary="List staff")
async def list_staff(actor: ActorDep, session: SessionDep) -> list[dict[str, Any]]:
    """Every staff record."""
    require_role(actor, "admin")
    return [staff_view(s) for s in await staff_service.list_staff(session=session)]


@router.post(
    "",
    status_code=201,
    summary="Add a staff member",
    responses={**BODY, **problems(409)},
)
async def create_staff(
    body: StaffIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Create a staff record."""
    require_role(actor, "admin")
    _known_departments(res, body.departments)
    now = res.clock()
    row = await staff_service.create_staff(session=session, data=body, now=now)
    await log_admin_action(session, actor_id=actor.id, action="staff-add", staff_id=row.id, at=now)
    await session.commit()
    return staff_view(row)


@router.patch("/{staff_id}", summary="Change a staff member", responses=ACTION)
async def update_staff(
    staff_id: str, body: StaffPatch, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Update name, email, departments, campus, role or active (`active: false` deactivates as
    POST .../deactivate does: every token revoked, signed off; `active: true` lets them in
    again with a new token, the old ones staying revoked)."""
    require_role(actor, "admin")
    staff_service.check_not_yourself(actor_id=actor.id, staff_id=staff_id, patch=body)
    _known_departments(res, body.departments)
    now = res.clock()
    row = await staff_service.get_staff(session=session, staff_id=staff_id)
    given = body.model_dump(exclude_unset=True)
    active = given.pop("active", None)
    changed = {k: v for k, v in given.items() if getattr(row, k) != v}
    if changed:
        row = await staff_service.update_staff(
            session=session, staff_id=staff_id, patch=StaffPatch.model_validate(changed)
        )
        await log_admin_action(
            session,
            actor_id=actor.id,
            action="staff-change",
            staff_id=staff_id,
            at=now,
            fields=changed,
        )
    event = await presence.after_staff_change(session=session, staff=row, changed=changed)
    if active is False and row.active:
        row, event = await staff_service.deactivate_staff(
            session=session, staff_id=staff_id, actor_id=actor.id, now=now
        )
        await log_admin_action(
            session, actor_id=actor.id, action="staff-deactivate", staff_id=staff_id, at=now
        )
    elif active is True and not row.active:
        row = await staff_service.update_staff(
            session=session, staff_id=staff_id, patch=StaffPatch(active=True)
        )
        await log_admin_action(
            session, actor_id=actor.id, action="staff-reactivate", staff_id=staff_id, at=now
        )
    await session.commit()
    if active is False:  # a deactivation: what the leaver held goes back to the queue
        await give_back_all(res, session, actor, staff_id)
    if event is not None:
        await publish_presence(res, [event])
    return staff_view(row)


@router.post("/{staff_id}/deactivate", summary="Deactivate a staff member", responses=ACTION)
async def deactivate_staff(
    staff_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Deactivate, revoke their tokens and sign them off."""
    require_role(actor, "admin")
    now = res.clock()
    was_active = (await staff_service.get_staff(session=session, staff_id=staff_id)).active
    row, event = await staff_service.deactivate_staff(
        session=session, staff_id=staff_id, actor_id=actor.id, now=now
    )
    if was_active:  # deactivating someone deactivated already changes nothing
        await log_admin_action(
            session, actor_id=actor.id, action="staff-deactivate", staff_id=staff_id, at=now
        )
    await session.commit()
    await give_back_all(res, session, actor, staff_id)
    if event is not None:
        await publish_presence(res, [event])
    return staff_view(row)


@router.post(
    "/{staff_id}/tokens", status_code=201, summary="Issue a bearer token", responses=ACTION
)
async def issue_token(
    staff_id: str,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    body: TokenIn | None = None,
) -> dict[str, Any]:
    """A new token, shown once, with the id that lists and revokes it (409 if inactive)."""
    require_role(actor, "admin")
    now = res.clock()
    token_id, token = await staff_service.issue_token(
        session=session, staff_id=staff_id, now=now, label=(body or TokenIn()).label
    )
    await log_admin_action(
        session,
        actor_id=actor.id,
        action="token-issue",
        staff_id=staff_id,
        at=now,
        token_id=token_id,
    )
    await session.commit()
    return {"staff_id": staff_id, "token_id": token_id, "token": token}


@router.get("/{staff_id}/tokens", summary="List a staff member's tokens", responses=FOUND)
async def list_tokens(staff_id: str, actor: ActorDep, session: SessionDep) -> list[dict[str, Any]]:
    """Their bearer tokens (id, label, when issued and revoked), never the secret."""
    require_role(actor, "admin")
    rows = await staff_service.list_tokens(session=session, staff_id=staff_id)
    return [token_view(row) for row in rows]


@router.delete(
    "/{staff_id}/tokens/{token_id}", summary="Revoke one token", responses=problems(404, 409)
)
async def revoke_token(
    staff_id: str,
    token_id: Annotated[int, Path(ge=1, le=staff_service.MAX_TOKEN_ID)],
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Revoke one token and end the console sessions signed in with it; the others keep
    working."""
    require_role(actor, "admin")
    now = res.clock()
    row, event = await staff_service.revoke_token(
        session=session, staff_id=staff_id, token_id=token_id, now=now, actor_id=actor.id
    )
    await log_admin_action(
        session,
        actor_id=actor.id,
        action="token-revoke",
        staff_id=staff_id,
        at=now,
        token_id=token_id,
    )
    await session.commit()
    if event is not None:
        await publish_presence(res, [event])
    return token_view(row)
