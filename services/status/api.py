"""HTTP routes: shift and status, availability, Who's Online; domain errors as problems."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.status import presence
from services.status.auth import Actor, can_set_status, require_role
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import Forbidden, NotFound, StatusError
from services.status.leavers import give_back_waiting
from services.status.openapi import ACTION, BODY, PUBLIC, SIGNED_IN, problems
from services.status.resources import publish_presence
from shared.events import StaffStatus
from shared.http import RETRY_AFTER_S, problem

router = APIRouter()


class StatusIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "Away", "note": "at the reference desk"}]},
    )

    status: StaffStatus
    note: str | None = Field(None, max_length=500)


def domain_problem(exc: StatusError) -> JSONResponse:
    """A domain error as problem+json."""
    retry_after = RETRY_AFTER_S if exc.status == 503 else None
    return problem(exc.status, exc.title, exc.detail or None, retry_after=retry_after)


def install_error_handler(app: FastAPI) -> None:
    """Render domain errors as problem+json."""

    @app.exception_handler(StatusError)
    async def _domain(_req: Request, exc: StatusError) -> JSONResponse:
        return domain_problem(exc)


async def _change(
    res: ResourcesDep,
    session: SessionDep,
    *,
    staff_id: str,
    status: StaffStatus,
    actor: Actor,
    note: str | None = None,
    shift: presence.Shift = None,
) -> dict[str, Any]:
    """Set a status; Offline, by whichever route (signing off, a supervisor's "Sign someone
    off", the status menu), gives back the conversations whose patron waits: set Offline by
    a supervisor, a librarian had kept a waiting patron nobody else could answer (an outside
    review)."""
    now = res.clock()
    event = await presence.set_status(
        session=session,
        staff_id=staff_id,
        status=status,
        actor_id=actor.id,
        now=now,
        note=note,
        shift=shift,
    )
    await session.commit()
    if status is StaffStatus.OFFLINE:  # their patrons waiting for an answer go back to the queue
        # before the presence is published: with the broker away that answers 503, and the
        # releases (kept in the outbox until it is back) had not been made at all
        await give_back_waiting(res, session, actor, staff_id)
    if event is not None:
        await publish_presence(res, [event])
    return await presence.status_of(session=session, staff_id=staff_id)


@router.post(
    "/shift/login", tags=["shift"], summary="Start a shift: Online", responses={**SIGNED_IN, **BODY}
)
async def shift_login(actor: ActorDep, res: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """Start the caller's shift."""
    return await _change(
        res,
        session,
        staff_id=actor.id,
        status=StaffStatus.ONLINE,
        actor=actor,
        note="shift start",
        shift="start",
    )


@router.post(
    "/shift/logout", tags=["shift"], summary="Sign off: Offline", responses={**SIGNED_IN, **BODY}
)
async def shift_logout(actor: ActorDep, res: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """End the caller's shift; their conversations whose patron waits go back to the queue."""
    return await _change(
        res,
        session,
        staff_id=actor.id,
        status=StaffStatus.OFFLINE,
        actor=actor,
        note="shift end",
        shift="end",
    )


@router.post(
    "/shift/heartbeat",
    tags=["shift"],
    summary="The dashboard is still open",
    responses={**SIGNED_IN, **BODY},
)
async def shift_heartbeat(
    actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Keep the caller from lapsing to Away."""
    event = await presence.heartbeat(session=session, staff_id=actor.id, now=res.clock())
    await session.commit()
    if event is not None:
        await publish_presence(res, [event])
    return await presence.status_of(session=session, staff_id=actor.id)


@router.put(
    "/staff/{staff_id}/status",
    tags=["shift"],
    summary="Set Online, Away or Offline",
    responses={**SIGNED_IN, **ACTION},
)
async def put_status(
    staff_id: str, body: StatusIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Staff set their own status; supervisors anyone's."""
    if not can_set_status(actor, staff_id):
        raise Forbidden("staff may change only their own status")
    return await _change(
        res, session, staff_id=staff_id, status=body.status, actor=actor, note=body.note
    )


@router.get("/staff/me", tags=["shift"], summary="The caller and their status", responses=SIGNED_IN)
async def me(actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """Who the caller is and their status."""
    mine = await presence.status_of(session=session, staff_id=actor.id)
    return {**mine, "role": actor.role, "departments": list(actor.departments)}


@router.get(
    "/availability",
    tags=["public"],
    summary="Is each department's chat staffed",
    responses=PUBLIC,
)
async def availability(res: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """Staffed or not, and how many are Online, per department; no names."""
    counts = await presence.online_counts(session=session)
    departments = res.book.departments()
    return {"departments": [presence.availability_view(counts, d) for d in departments]}


@router.get(
    "/availability/{department}",
    tags=["public"],
    summary="Is one department staffed",
    responses={**PUBLIC, **problems(404, 422)},
)
async def availability_of(
    department: str, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """One department's availability; 404 for an unknown department."""
    if department not in res.book.departments():
        raise NotFound("unknown department")
    counts = await presence.online_counts(session=session)
    return presence.availability_view(counts, department)


@router.get("/supervisor/online", tags=["supervisor"], summary="Who's Online", responses=SIGNED_IN)
async def supervisor_online(actor: ActorDep, session: SessionDep) -> dict[str, Any]:
    """Staff not Offline, per department."""
    require_role(actor, "supervisor")
    return {"departments": await presence.whos_online(session=session)}


@router.post(
    "/supervisor/staff/{staff_id}/force-offline",
    tags=["supervisor"],
    summary="Sign someone off",
    responses={**SIGNED_IN, **ACTION},
)
async def force_offline(
    staff_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Set a staff member Offline (e.g. they left without signing off)."""
    require_role(actor, "supervisor")
    return await _change(
        res,
        session,
        staff_id=staff_id,
        status=StaffStatus.OFFLINE,
        actor=actor,
        note="forced offline by supervisor",
        shift="end",
    )
