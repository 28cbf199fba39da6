"""The console's pages and the fragments its script swaps in: the queue (or a search), one
queue row, one conversation. Reads go through the same functions as the JSON API; every
change the page makes is a call to the JSON API itself (see static/console/actions.js)."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from services.status import presence, queue
from services.status.auth import Actor, has_role
from services.status.console import error_pages, live, views
from services.status.conversations import actions, reading, transcript
from services.status.conversations import api as conversations_api
from services.status.conversations.policy import DESK
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import StatusError
from services.status.resources import Resources
from services.status.staff import staff_names
from services.status.topics import TOPIC_LABELS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

router = APIRouter(tags=["dashboard"], include_in_schema=False)
"""Mounted under /dashboard by dashboard.py."""


@functools.cache
def templates() -> Jinja2Templates:
    """The console's Jinja2 templates (autoescaped), built on first use and kept."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True),
        auto_reload=False,
    )
    env.globals["sms_reply_max"] = actions.SMS_REPLY_MAX
    return Jinja2Templates(env=compiled(env))


def compiled(env: Environment) -> Environment:
    """`env` with every template compiled now, once: a process renders the templates of the
    code it runs, never files an upgrade replaced under it (a running status had answered
    500 on the reports page when its template changed on disk), and stats no file per page."""
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


def department_choices(res: Resources, actor: Actor) -> list[tuple[str, str]]:
    """The departments the actor's queue may be narrowed to, as (id, name)."""
    known = res.book.departments()
    if has_role(actor, "supervisor"):
        ids = list(known)
    else:
        ids = [DESK, *(d for d in actor.departments if d != DESK)]
    return [(d, known[d].name if d in known else d) for d in ids]


def decorate_row(
    row: dict[str, Any], res: Resources, names: dict[str, str], now: Any
) -> dict[str, Any]:
    """A queue row with what the page shows beside the API's fields."""
    assignee = row.get("assignee")
    return {
        **row,
        "sort_key": views.sort_key(row),
        "department_name": res.book.department_name(row["department"] or DESK),
        "assignee_name": names.get(assignee, assignee) if assignee else None,
        "opened": views.desk_time(row["opened_at"], now),
        "opened_full": views.full_time(row["opened_at"]),
    }


def live_rows(res: Resources) -> live.Render:
    """The live feed's renderer: the changed conversations' open queue rows, rendered once
    per poll for every open console on this replica."""
    row_template = templates().get_template("console/_row.html")

    async def render(ids: list[str]) -> dict[str, live.RenderedRow]:
        async with res.sessions() as session:
            found = await queue.open_rows(session, ids)
            names = await staff_names(session, (r.assignee for r in found))
        now = res.clock()
        rendered = {}
        for found_row in found:
            row = decorate_row(queue.row_view(found_row, now), res, names, now)
            rendered[row["conversation_id"]] = live.RenderedRow(
                department=row["department"],
                crisis=bool(row["crisis"] or row["safety_review"]),
                html=row_template.render(row=row),
            )
        return rendered

    return render


async def queue_context(
    *, res: Resources, session: AsyncSession, actor: Actor, filters: views.Filters
) -> dict[str, Any]:
    """The queue's rows (or a search's results) in desk order."""
    listed = await conversations_api.list_conversations(
        actor, res, session, **filters.api_args(), limit=queue.DEFAULT_LIMIT
    )
    names = await staff_names(session)
    now = res.clock()
    rows = [decorate_row(r, res, names, now) for r in listed["items"]]
    return {"rows": rows, "filters": filters, "total": listed["total"]}


async def conversation_context(
    *, res: Resources, session: AsyncSession, actor: Actor, conversation_id: str
) -> dict[str, Any]:
    """One conversation as the page shows it (the read is written to the access log)."""
    now = res.clock()
    view = await reading.conversation_view(
        session=session,
        conversation_id=conversation_id,
        actor=actor,
        now=now,
        department_name=res.book.department_name,
    )
    await session.commit()
    names = await staff_names(session)
    book = res.book.data()
    channel = view["channel"]
    online = await presence.online_counts(session=session)
    departments = [
        {
            "id": d,
            "name": dep.name,
            "staffed": online[d] > 0,
            "handoff": res.book.handoff(
                d, channel=channel, staffed=online[d] > 0, lang=view["lang"]
            ),
        }
        for d, dep in book.departments.items()
        if d != view["department"]
    ]
    patron = view["patron"]
    chat = channel == "chat"
    contact = views.readable_contact(patron["contact"])
    lines = [
        views.line_view(
            m, names=names, now=now, patron=patron["name"], department_name=res.book.department_name
        )
        for m in view["messages"]
    ]
    return {
        "me": actor.id,
        "patron_label": "Patron (details removed)"
        if view["purged"]
        else patron["name"] or (None if chat else contact) or "Chat visitor",
        "contact_label": contact,
        "contact_tel": None if chat else views.dialable(patron["contact"]),
        "texted_from_label": views.readable_contact(patron.get("texted_from")),
        "texted_from_tel": views.dialable(patron.get("texted_from")),
        "c": decorate_row(view, res, names, now),
        "lines": lines,
        "care_alert": views.care_alert(lines) if view["crisis"] else None,
        "earlier": [decorate_row(r, res, names, now) for r in view["earlier"]],
        "permitted": view["permitted"],
        "patron": view["patron"],
        "macros": res.book.patron_macros(channel),
        "links": book.links,
        "departments": departments,
        "topics": TOPIC_LABELS,
        "budget": getattr(res.settings, "sms_segment_budget", views.SMS_SEGMENT_BUDGET),
        # a text thread turned email: its first email answers none, so no "Re:"
        "subject": views.reply_subject(
            view.get("subject"),
            first_email=bool(view.get("converted_from"))
            and not any(
                m.get("channel") == "email" and m.get("direction") in ("in", "out")
                for m in view["messages"]
            ),
        ),
        "reply_heading": views.REPLY_HEADINGS.get(channel, "Reply"),
        "opted_out": channel == "sms" and await _opted_out(session, view),
        "send_label": views.SEND_LABELS.get(channel, "Send"),
        "closed_at": views.desk_time(view.get("closed_at"), now),
        "acknowledged_by": names.get(view["acknowledged_by"] or "", view["acknowledged_by"]),
        "care_report": _care_report(view.get("care_report"), names, now, actor.id),
        # who recorded a CARE Team report, or a supervisor, may take a record back
        "can_withdraw_care_report": view.get("care_report") is not None
        and view["permitted"].get("care_report", False)
        and (_recorded_by(view["care_report"], actor.id) or has_role(actor, "supervisor")),
        "blocked": _blocked(view.get("blocked"), names, now),
        # a sender with a number or address, not blocked yet, whom the reader may block
        "can_block": view["permitted"].get("block", False)
        and view.get("blocked") is None
        and not view.get("sender_unverified")
        and bool(patron["contact"] or patron.get("texted_from")),
    }


def _blocked(
    block: dict[str, Any] | None, names: dict[str, str], now: datetime
) -> dict[str, str] | None:
    """Who blocked the patron, when and why, as the page says them."""
    if block is None:
        return None
    by = block["blocked_by"]
    return {
        "by": names.get(by, by),
        "when": views.desk_time(block["blocked_at"], now),
        "reason": block["reason"] or "no reason given",
    }


def _recorded_by(report: dict[str, Any], staff_id: str) -> bool:
    """Whether the staff member has a record of the report standing."""
    return any(r["filed_by"] == staff_id for r in report.get("records", ()))


def _care_report(
    report: dict[str, Any] | None, names: dict[str, str], now: datetime, reader: str
) -> dict[str, Any] | None:
    """Who recorded filing the CARE Team report and when, as the page says them: the earliest,
    then any colleague who recorded it too; `mine`, whether the reader has a record."""
    if report is None:
        return None
    by = report["filed_by"]
    others = [
        f"{names.get(r['filed_by'], r['filed_by'])}, {views.desk_time(r['filed_at'], now)}"
        for r in report.get("records", ())[1:]
    ]
    return {
        "by": names.get(by, by),
        "when": views.desk_time(report["filed_at"], now),
        "others": others,
        "mine": _recorded_by(report, reader),
    }


async def _opted_out(session: AsyncSession, view: dict[str, Any]) -> bool:
    """Whether the patron's number texted STOP (in this conversation or another of theirs)
    and not START, YES or INICIO since: the composer says so before anyone writes."""
    contact = view["patron"]["contact"]
    if not contact:
        return views.opted_out(view["messages"])
    return await transcript.contact_opted_out(session, contact)


async def whos_online(res: Resources, session: AsyncSession) -> dict[str, list[dict[str, Any]]]:
    """Who's Online, by department name as the desk says it ("NW Circulation")."""
    online = await presence.whos_online(session=session)
    return {res.book.department_name(department): people for department, people in online.items()}


async def render_console(
    request: Request,
    *,
    res: Resources,
    session: AsyncSession,
    actor: Actor,
    conversation_id: str | None = None,
) -> Response:
    """The whole console page, with one conversation open if asked (one that cannot be shown
    is said in its pane, and the page answers with the reason's status: 404, 403)."""
    filters = views.parse_filters(request.query_params)
    context: dict[str, Any] = {
        "actor": actor,
        "me": await presence.status_of(session=session, staff_id=actor.id),
        "online": await whos_online(res, session),
        "departments": department_choices(res, actor),
        "open_id": conversation_id,
        "conversation": None,
        "trouble": None,
        "back": back_to_queue(request),
        **await queue_context(res=res, session=session, actor=actor, filters=filters),
    }
    names = await staff_names(session)
    context["my_name"] = names.get(actor.id, actor.id)
    status = 200
    if conversation_id is not None:
        try:
            context["conversation"] = await conversation_context(
                res=res, session=session, actor=actor, conversation_id=conversation_id
            )
        except StatusError as exc:
            context["trouble"] = error_pages.conversation_trouble(exc)
            context["open_id"] = None  # nothing is open: the script must not refresh it
            status = exc.status
    return templates().TemplateResponse(request, "console/page.html", context, status_code=status)


def back_to_queue(request: Request) -> str:
    """The console's address with the request's filters, for a "Back to the queue" link."""
    query = request.url.query
    return f"/dashboard?{query}" if query else "/dashboard"


def error_page(request: Request, trouble: error_pages.Trouble, status: int) -> Response:
    """A page in the console's look saying what went wrong, with a way back to the console."""
    return templates().TemplateResponse(
        request, "console/error.html", {"trouble": trouble}, status_code=status
    )


@router.get("/fragments/queue", response_class=HTMLResponse)
async def queue_fragment(
    request: Request, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> Response:
    """The queue section's rows for the filters or search in the query string."""
    filters = views.parse_filters(request.query_params)
    context = await queue_context(res=res, session=session, actor=actor, filters=filters)
    # what of the search was ignored or mended, for the script to say above the queue
    context["fragment"] = True
    return templates().TemplateResponse(request, "console/_queue.html", context)


@router.get("/fragments/row/{conversation_id}", response_class=HTMLResponse)
async def row_fragment(
    conversation_id: str,
    request: Request,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> Response:
    """One queue row if the conversation is (still) in the actor's filtered queue, else 204."""
    filters = views.parse_filters(request.query_params)
    found = await queue.listing(session=session, actor=actor, flt=filters.one_row(conversation_id))
    if not found:
        return Response(status_code=204)
    names = await staff_names(session, [found[0].assignee])
    now = res.clock()
    row = decorate_row(queue.row_view(found[0], now), res, names, now)
    return templates().TemplateResponse(request, "console/_row.html", {"row": row})


@router.get("/fragments/conversation/{conversation_id}", response_class=HTMLResponse)
async def conversation_fragment(
    conversation_id: str,
    request: Request,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
) -> Response:
    """One conversation's pane; if the actor may not see it, 403/404 with the pane's message
    for the console's script (it asks for text/html), problem+json for other clients."""
    try:
        context = await conversation_context(
            res=res, session=session, actor=actor, conversation_id=conversation_id
        )
    except StatusError as exc:
        if not error_pages.wants_html(request.headers.get("accept")):
            raise
        trouble = {"trouble": error_pages.conversation_trouble(exc), "back": "/dashboard"}
        return templates().TemplateResponse(
            request, "console/_trouble.html", trouble, status_code=exc.status
        )
    return templates().TemplateResponse(request, "console/_conversation.html", {"ctx": context})
