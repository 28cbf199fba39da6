"""Admin routes: manage staff and issue tokens (only the hash is stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.status import staff as staff_service
from services.status.auth import require_role
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import InvalidInput
from services.status.presence import set_status
from services.status.resources import Resources, publish_presence
from services.status.staff import StaffIn, StaffPatch, staff_view
from shared.events import StaffStatus

router = APIRouter(prefix="/admin/staff", tags=["admin"])


class TokenIn(BaseModel):
    label: str = Field("api", max_length=64)


def _known_departments(res: Resources, departments: list[str] | None) -> None:
    """InvalidInput unless every department is one the desk hands off to (macros.yaml)."""
    known = res.book.data().departments
    unknown = sorted({d for d in departments or () if d not in known})
    if unknown:
        raise InvalidInput(f"departments: unknown {', '.join(unknown)}; known: {', '.join(known)}")


@router.get("", summary="List staff")
async def list_staff(actor: ActorDep, session: SessionDep) -> list[dict[str, Any]]:
    """Every staff record."""
    require_role(actor, "admin")
    return [staff_view(s) for s in await staff_service.list_staff(session=session)]


@router.post("", status_code=201, summary="Add a staff member")
async def create_staff(
    body: StaffIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Create a staff record."""
    require_role(actor, "admin")
    _known_departments(res, body.departments)
    row = await staff_service.create_staff(session=session, data=body, now=res.clock())
    await session.commit()
    return staff_view(row)


@router.patch("/{staff_id}", summary="Change a staff member")
async def update_staff(
    staff_id: str, body: StaffPatch, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Update name, email, departments, campus, role or active."""
    require_role(actor, "admin")
    _known_departments(res, body.departments)
    row = await staff_service.update_staff(session=session, staff_id=staff_id, patch=body)
    await session.commit()
    return staff_view(row)


@router.post("/{staff_id}/deactivate", summary="Deactivate a staff member")
async def deactivate_staff(
    staff_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Deactivate, revoke their tokens and sign them off."""
    require_role(actor, "admin")
    now = res.clock()
    row = await staff_service.update_staff(
        session=session, staff_id=staff_id, patch=StaffPatch(active=False)
    )
    await staff_service.revoke_tokens(session=session, staff_id=staff_id, now=now)
    event = await set_status(
        session=session,
        staff_id=staff_id,
        status=StaffStatus.OFFLINE,
        actor_id=actor.id,
        now=now,
        note="deactivated",
        shift="end",
    )
    await session.commit()
    if event is not None:
        await publish_presence(res, [event])
    return staff_view(row)


@router.post("/{staff_id}/tokens", status_code=201, summary="Issue a bearer token")
async def issue_token(
    staff_id: str,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    body: TokenIn | None = None,
) -> dict[str, str]:
    """A new token, shown once."""
    require_role(actor, "admin")
    token = await staff_service.issue_token(
        session=session, staff_id=staff_id, now=res.clock(), label=(body or TokenIn()).label
    )
    await session.commit()
    return {"staff_id": staff_id, "token": token}
