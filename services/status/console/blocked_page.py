"""The blocked senders' page (/dashboard/blocked, supervisors and admins): every contact blocked
at the desk, who blocked it, from which conversation, why and since when, with Unblock; then the
blocks lifted, by whom and when (kept as long as transcripts). Unblock is a posted form carrying
the session's form token, as the staff page's are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.status.console import error_pages, pages, views
from services.status.console.staff_page import FORM_TOKEN_FIELD, ROLE_WORDS, signed_in_admin
from services.status.conversations import blocking
from services.status.deps import ResourcesDep, SessionDep
from services.status.errors import Conflict
from services.status.models import BlockedContact
from services.status.resources import deliver, keyed
from services.status.staff import staff_names

router = APIRouter(prefix="/dashboard/blocked", tags=["blocked senders"], include_in_schema=False)

SUPERVISORS_ONLY = error_pages.Trouble(
    "Blocked senders are for supervisors",
    "Any librarian can block a sender from their conversation; the list, and lifting a block, "
    "are a supervisor's. Ask one if a block should be lifted.",
)


def _row(row: BlockedContact, names: dict[str, str], now: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "contact": views.readable_contact(row.contact),
        "conversation_id": row.conversation_id,
        "reason": row.reason or "no reason given",
        "by": names.get(row.blocked_by, row.blocked_by),
        "when": views.desk_time(row.blocked_at.isoformat(), now),
        "when_full": views.full_time(row.blocked_at.isoformat()),
        "lifted_by": names.get(row.unblocked_by or "", row.unblocked_by),
        "lifted": views.desk_time(row.unblocked_at.isoformat(), now) if row.unblocked_at else None,
    }


async def _page(
    request: Request,
    res: ResourcesDep,
    session: SessionDep,
    *,
    done: str | None,
    problem: str | None,
) -> Response:
    supervisor = await signed_in_admin(
        request, res, session, refused=SUPERVISORS_ONLY, role="supervisor"
    )
    if isinstance(supervisor, Response):
        return supervisor
    rows = await blocking.listing(session)
    names = await staff_names(session)
    now = res.clock()
    context = {
        "actor": supervisor.actor,
        "actor_name": supervisor.name,
        "role_words": ROLE_WORDS,
        "form_token": supervisor.form_token,
        "form_token_field": FORM_TOKEN_FIELD,
        "current": "blocked",
        "blocked": [_row(r, names, now) for r in rows if r.unblocked_at is None],
        "lifted": [_row(r, names, now) for r in rows if r.unblocked_at is not None],
        "done": done,
        "problem": problem,
    }
    return pages.templates().TemplateResponse(
        request, "blocked/blocked.html", context, status_code=409 if problem else 200
    )


@router.get("", response_class=HTMLResponse, summary="Blocked senders page")
async def blocked_page(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """Blocks in force, then those lifted."""
    done = (
        "Unblocked: their messages reach the desk again."
        if "unblocked" in request.query_params
        else None
    )
    return await _page(request, res, session, done=done, problem=None)


@router.post("/{entry_id}/unblock", response_class=HTMLResponse, summary="Unblock a sender")
async def unblock(
    entry_id: int, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Lift one block; back to the list, saying so (or why not: lifted meanwhile)."""
    form = await request.form(max_files=0, max_fields=10)
    supervisor = await signed_in_admin(
        request, res, session, form=form, refused=SUPERVISORS_ONLY, role="supervisor"
    )
    if isinstance(supervisor, Response):
        return supervisor
    try:
        events = await blocking.unblock_entry(
            session=session, entry_id=entry_id, actor=supervisor.actor, now=res.clock()
        )
    except Conflict as exc:
        await session.rollback()
        return await _page(request, res, session, done=None, problem=str(exc))
    key = next((e.conversation_id for _t, e in events if e.conversation_id), None)
    await deliver(res, session, keyed(events, key or f"blocked:{entry_id}"))
    return RedirectResponse("/dashboard/blocked?unblocked=1", status_code=303)
