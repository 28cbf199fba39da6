"""Queue routes: list, claim, transfer, close, acknowledge crises, convert SMS to email."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.status import queue
from services.status.auth import require_role
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import InvalidInput, Unavailable
from services.status.service import DEPARTMENTS
from services.status.staff import EMAIL_PATTERN
from shared.events import Channel
from shared.topics import INTERACTIONS, NOTIFICATIONS, ROUTING

router = APIRouter(prefix="/queue", tags=["queue"])


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: str = Field(min_length=1, max_length=64)
    note: str | None = Field(None, max_length=1000)


class ConvertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)


@router.get("", summary="Open conversations in desk order")
async def list_queue(
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    department: str | None = None,
    channel: Channel | None = None,
) -> dict[str, Any]:
    """Crises, then overnight tickets oldest first, then the rest oldest first."""
    now = res.clock()
    rows = await queue.open_queue(session=session, department=department, channel=channel)
    return {"items": [queue.row_view(c, now) for c in rows]}


@router.post("/{conversation_id}/claim", summary="Take a conversation")
async def claim(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Assign it to the caller."""
    conv = await queue.claim(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    await session.commit()
    return queue.row_view(conv, res.clock())


@router.post("/{conversation_id}/transfer", summary="Transfer to another department")
async def transfer(
    conversation_id: str,
    body: TransferIn,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Move it, publish the routing decision and the warm hand-off command."""
    if body.department not in DEPARTMENTS:
        raise InvalidInput("department: unknown department")
    decision, handoff = await queue.transfer(
        session=session,
        conversation_id=conversation_id,
        department=body.department,
        note=body.note,
        actor=actor,
        now=res.clock(),
    )
    await session.commit()
    try:
        await res.publisher(ROUTING.name, decision, key=conversation_id)
        await res.publisher(NOTIFICATIONS.name, handoff, key=conversation_id)
    except Exception as exc:
        raise Unavailable("transfer saved; events not published") from exc
    return {
        "conversation_id": conversation_id,
        "department": body.department,
        "decision_id": decision.decision_id,
    }


@router.post("/{conversation_id}/close", summary="Close (the router sends the survey)")
async def close(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Close it and publish ConversationClosed."""
    closed = await queue.close(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    await session.commit()
    try:
        await res.publisher(INTERACTIONS.name, closed, key=conversation_id)
    except Exception as exc:
        raise Unavailable("closed; event not published") from exc
    return {"conversation_id": conversation_id, "state": "closed"}


@router.post("/{conversation_id}/acknowledge", summary="Acknowledge a crisis")
async def acknowledge(
    conversation_id: str, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Stops the crisis re-escalation."""
    conv = await queue.acknowledge(
        session=session, conversation_id=conversation_id, actor=actor, now=res.clock()
    )
    await session.commit()
    return queue.row_view(conv, res.clock())


@router.post("/{conversation_id}/convert-to-email", summary="SMS thread becomes an email ticket")
async def convert_to_email(
    conversation_id: str,
    body: ConvertIn,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> dict[str, Any]:
    """Supervisors only; the conversation keeps its id and history."""
    require_role(actor, "supervisor")
    conv = await queue.convert_to_email(
        session=session, conversation_id=conversation_id, email=body.email.lower()
    )
    await session.commit()
    return queue.row_view(conv, res.clock())
