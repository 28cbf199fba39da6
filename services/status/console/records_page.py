"""The admins' records pages: a patron's records for a records request (/dashboard/records: the
contact and the request it answers go in a posted form, so neither is in the page's address
or the browser's history; the answer is a page to read and print, or a JSON download), and the
access log (/dashboard/records/access-log: filtered, paged, downloadable as CSV). Each goes
through records.py, as the admin API does; a records answer is written to the access log."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.status import records
from services.status import staff as staff_service
from services.status.console import error_pages, pages, views
from services.status.console.staff_page import (
    FORM_TOKEN_FIELD,
    ROLE_WORDS,
    Admin,
    FormState,
    signed_in_admin,
)
from services.status.deps import ResourcesDep, SessionDep
from services.status.errors import Conflict, Unavailable
from services.status.queue import CHANNEL_LABELS
from services.status.records import retention_of
from services.status.resources import Resources, publish_all
from shared.topics import DESK

router = APIRouter(prefix="/dashboard/records", tags=["records pages"], include_in_schema=False)

ADMINS_ONLY = error_pages.Trouble(
    "Records requests are for admins",
    "A patron's whole record and the access log are read by the desk's admins, who answer "
    "records requests. Ask one if a request has come to you.",
)
ACTION_WORDS = {
    "read": "Read the conversation",
    "search": "Shown in search results",
    "list": "Listed among closed conversations",
    "macro": "Filled a macro for it",
    "report": "Read a report",
    "records": "Records request",
    "erase": "Erased on request",
    "staff-add": "Added a staff member",
    "staff-change": "Changed a staff member",
    "staff-deactivate": "Deactivated a staff member",
    "staff-reactivate": "Reactivated a staff member",
    "token-issue": "Issued a sign-in token",
    "token-revoke": "Revoked a sign-in token",
    "block": "Blocked the sender",
    "unblock": "Unblocked the sender",
}
"""The access log's actions in words (an action the page does not know is shown as it is)."""
CONTACT_WORDS = "Enter the patron's phone number, email address or a conversation id."
REASON_WORDS = "Say which request this answers, like “FERPA request 2026-014”."
LOG_PAGE = 100
CONFIRM_WORDS = "Nothing was erased: tick the box that says the erasure cannot be undone."
BROKER_AWAY = "Nothing was erased: the message broker did not answer. Try again in a minute."


def _context(admin: Admin, **more: Any) -> dict[str, Any]:
    return {
        "actor": admin.actor,
        "actor_name": admin.name,
        "role_words": ROLE_WORDS,
        "form_token": admin.form_token,
        "form_token_field": FORM_TOKEN_FIELD,
        **more,
    }


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return pages.templates().TemplateResponse(
        request, f"records/{name}", context, status_code=status
    )


@router.get("", response_class=HTMLResponse, summary="Records page")
async def records_page(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """The form that finds a patron's records."""
    admin = await signed_in_admin(request, res, session, refused=ADMINS_ONLY)
    if isinstance(admin, Response):
        return admin
    return _render(
        request, "records.html", _context(admin, ask=FormState(), answer=None, erasure=None)
    )


@router.post("", response_class=HTMLResponse, summary="Records page: find a patron's records")
async def find_records(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """A patron's records as a page (or, with `format=json`, a JSON download); the form again,
    with the reasons next to its fields, when something is missing."""
    posted = await _posted(request, res, session)
    if isinstance(posted, Response):
        return posted
    form, admin, ask = posted
    values = ask.values
    answer = await _records(res, session, admin, values)
    if form.get("format") == "json":
        return Response(
            json.dumps(answer, ensure_ascii=False, indent=2),
            media_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="refdesk-patron-records.json"',
                "Cache-Control": "no-store",
            },
        )
    return await _answer_page(request, res, session, admin, ask, answer, None, 200)


async def _posted(
    request: Request, res: Resources, session: AsyncSession
) -> tuple[FormData, Admin, FormState] | Response:
    """A records form as posted, its admin and what it asks; or the answer for everyone and
    everything else (not an admin, another site, the form again with what is missing)."""
    form = await request.form(max_files=0, max_fields=10)
    admin = await signed_in_admin(request, res, session, form=form, refused=ADMINS_ONLY)
    if isinstance(admin, Response):
        return admin
    ask = _asked(form)
    if ask.errors:
        context = _context(admin, ask=ask, answer=None, erasure=None)
        return _render(request, "records.html", context, 422)
    return form, admin, ask


def _asked(form: FormData) -> FormState:
    """The contact and the request a form sent, with what is wrong with them in words."""
    values = {name: str(form.get(name) or "").strip() for name in ("contact", "reason")}
    values["reason"] = " ".join(values["reason"].split())
    ask = FormState(values=values)
    if not 3 <= len(values["contact"]) <= 320 or "\x00" in values["contact"]:
        ask.errors["contact"] = CONTACT_WORDS
    if not 3 <= len(values["reason"]) <= 300 or "\x00" in values["reason"]:
        ask.errors["reason"] = REASON_WORDS
    return ask


async def _records(
    res: Resources, session: AsyncSession, admin: Admin, values: dict[str, str]
) -> dict[str, Any]:
    """The patron's records for the form's contact and request (access logged, committed)."""
    answer = await records.patron_records(
        session=session,
        actor=admin.actor,
        contact=values["contact"],
        reason=values["reason"],
        now=res.clock(),
        department_name=res.book.department_name,
        kept=retention_of(res),
    )
    await session.commit()
    return answer


async def _answer_page(
    request: Request,
    res: Resources,
    session: AsyncSession,
    admin: Admin,
    ask: FormState,
    answer: dict[str, Any],
    erasure: dict[str, str] | None,
    status: int,
) -> Response:
    """The records page with an answer (never cached: it is the patron's whole record)."""
    shown = await _answer_view(answer, res, session)
    context = _context(admin, ask=ask, answer=shown, erasure=erasure)
    response = _render(request, "records.html", context, status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _answer_view(
    answer: dict[str, Any], res: Resources, session: AsyncSession
) -> dict[str, Any]:
    """The answer as the page shows it: times in desk time, lines as the console draws them."""
    now = res.clock()
    names = await staff_service.staff_names(session)
    conversations = []
    for conv in answer["conversations"]:
        patron = conv["patron"]
        conversations.append(
            {
                **conv,
                "channel_label": CHANNEL_LABELS.get(conv["channel"], conv["channel"]),
                "opened": views.full_time(conv["opened_at"]),
                "closed": views.full_time(conv["closed_at"]),
                "purged": views.full_time(conv["purged_at"]),
                "closed_by_name": names.get(conv["closed_by"] or "", conv["closed_by"]),
                "assignee_name": names.get(conv["assignee"] or "", conv["assignee"]),
                "contact_label": views.readable_contact(patron["contact"]),
                "texted_from_label": views.readable_contact(patron["texted_from"]),
                "lines": [
                    {**line, "when": views.dated_time(line["at"])}  # on paper, any day
                    for line in (
                        views.line_view(
                            m,
                            names=names,
                            now=now,
                            patron=patron["name"],
                            department_name=res.book.department_name,
                        )
                        for m in conv["messages"]
                    )
                ],
            }
        )
    return {
        **answer,
        "open_count": sum(1 for c in conversations if c["state"] != "closed"),
        "erasable_count": sum(
            1 for c in conversations if c["state"] == "closed" and not c["purged_at"]
        ),
        "contact_label": views.readable_contact(answer["contact"]) or answer["contact"],
        "answered": views.full_time(answer["answered_at"]),
        "answered_by_name": names.get(answer["answered_by"], answer["answered_by"]),
        "conversations": conversations,
    }


@router.post("/erase", response_class=HTMLResponse, summary="Records page: erase on request")
async def erase_records(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """Erase the patron's closed conversations (records.py), once the box saying so is ticked;
    the records page again, saying what was done or why nothing was."""
    posted = await _posted(request, res, session)
    if isinstance(posted, Response):
        return posted
    form, admin, ask = posted
    values = ask.values
    if form.get("confirm") != "yes":
        outcome = {"problem": CONFIRM_WORDS}
        status = 422
    else:
        now = res.clock()
        try:
            events = await records.erasure(
                session=session,
                actor=admin.actor,
                contact=values["contact"],
                reason=values["reason"],
                now=now,
            )
            await session.rollback()  # nothing is written until the broker has the erasures
            for event in events:
                await publish_all(res, [(DESK.name, event)], key=event.conversation_id)
        except Conflict as exc:  # an open conversation: its words say which to close
            outcome, status = {"problem": exc.detail[:1].upper() + exc.detail[1:] + "."}, 409
        except Unavailable:
            outcome, status = {"problem": BROKER_AWAY}, 503
        else:
            done = await records.erase(
                session=session,
                actor=admin.actor,
                events=events,
                reason=values["reason"],
                now=now,
                kept=retention_of(res),
            )
            await session.commit()
            count = len(done["erased"])
            outcome = {
                "done": f"Erased {count} conversation{'' if count == 1 else 's'}: "
                "their transcripts and the patron's details are gone. Each is in the access "
                f"log with “{values['reason']}”."
            }
            status = 200
    answer = await _records(res, session, admin, values)
    return await _answer_page(request, res, session, admin, ask, answer, outcome, status)


@router.get("/access-log", response_class=HTMLResponse, summary="Access log page")
async def access_log_page(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """The access log, newest first, narrowed by the filters in the address."""
    admin = await signed_in_admin(request, res, session, refused=ADMINS_ONLY)
    if isinstance(admin, Response):
        return admin
    params = request.query_params
    ignored: list[str] = []
    wanted = records.LogFilter(
        conversation_id=_param(params, "conversation_id", 128),
        staff_id=_param(params, "staff_id", 64),
        action=_param(params, "action", 16),
        date_from=_day(params.get("from"), "From", ignored),
        date_to=_day(params.get("to"), "To", ignored),
        before=_row_id(params.get("before")),
        limit=LOG_PAGE,
    )
    data = await records.access_log(session, wanted)
    names = await staff_service.staff_names(session)
    filters = {
        "conversation_id": wanted.conversation_id or "",
        "staff_id": wanted.staff_id or "",
        "action": wanted.action or "",
        "from": wanted.date_from.isoformat() if wanted.date_from else "",
        "to": wanted.date_to.isoformat() if wanted.date_to else "",
    }
    kept = {k: v for k, v in filters.items() if v}
    rows = [
        {
            **item,
            "when": views.desk_time(item["at"], res.clock()),
            "when_full": views.full_time(item["at"]),
            "who": item["staff_name"] or item["staff_id"],
            "what": ACTION_WORDS.get(item["action"], item["action"]),
        }
        for item in data["items"]
    ]
    older = None
    if data["next_before"] is not None:
        older = "?" + urlencode({**kept, "before": data["next_before"]})
    context = _context(
        admin,
        rows=rows,
        filters=filters,
        narrowed=bool(kept),
        older=older,
        newest="?" + urlencode(kept) if wanted.before is not None else None,
        csv="/admin/access-log.csv" + ("?" + urlencode(kept) if kept else ""),
        staff=sorted(names.items(), key=lambda item: item[1]),
        actions=ACTION_WORDS,
        ignored=ignored,
    )
    return _render(request, "access_log.html", context)


def _day(value: str | None, label: str, ignored: list[str]) -> date | None:
    """A date the filter form sent, or None (said above the table when it is not one)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        ignored.append(
            f"The {label} date “{value[:40]}” was ignored: it is not a date like 2026-09-14."
        )
        return None


def _row_id(value: str | None) -> int | None:
    """A page's `before` row id, or None when it is not one (ids are 32-bit integers)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    return int(value) if int(value) < 2**31 else None


def _param(params: Any, name: str, size: int) -> str | None:
    """A filter as the address gave it, cut to its column's size, NULs dropped (PostgreSQL
    refuses them)."""
    return (params.get(name) or "").replace("\x00", "").strip()[:size] or None
