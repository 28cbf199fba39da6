"""The desk queue's routes (the original paths, kept for existing clients): list, claim,
transfer, close, acknowledge, convert. Each is the same action as under /conversations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.status import queue
from services.status.conversations import api as conversations
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.openapi import ACTION, SIGNED_IN
from shared.events import Channel

router = APIRouter(prefix="/queue", tags=["queue"], responses=SIGNED_IN)


@router.get("", summary="Open conversations in desk order")
async def list_queue(
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    department: str | None = None,
    channel: Channel | None = None,
) -> dict[str, Any]:
    """Crises, then safety reviews, then overnight tickets oldest first, then the rest."""
    now = res.clock()
    rows = await queue.open_queue(
        session=session, actor=actor, department=department, channel=channel
    )
    return {"items": [queue.row_view(c, now) for c in rows]}


router.add_api_route(
    "/{conversation_id}/claim",
    conversations.claim,
    methods=["POST"],
    responses=ACTION,
    summary="Take a conversation",
)
router.add_api_route(
    "/{conversation_id}/release",
    conversations.release,
    methods=["POST"],
    responses=ACTION,
    summary="Give a claimed conversation back",
)
router.add_api_route(
    "/{conversation_id}/transfer",
    conversations.transfer,
    methods=["POST"],
    responses=ACTION,
    summary="Transfer to another department",
)
router.add_api_route(
    "/{conversation_id}/close",
    conversations.close,
    methods=["POST"],
    responses=ACTION,
    summary="Close (the router sends the survey)",
)
router.add_api_route(
    "/{conversation_id}/acknowledge",
    conversations.acknowledge,
    methods=["POST"],
    responses=ACTION,
    summary="Acknowledge a crisis",
)
router.add_api_route(
    "/{conversation_id}/convert-to-email",
    conversations.convert_to_email,
    methods=["POST"],
    responses=ACTION,
    summary="SMS thread becomes an email ticket",
)
