"""The supervisors' reports page (/dashboard/reports): server-rendered, no script, its own
templates extending the console's base layout, and its stylesheet."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

from services.status.auth import has_role
from services.status.console import pages
from services.status.conversations.access import log_access
from services.status.dashboard import reports_sign_in
from services.status.deps import ResourcesDep, SessionDep, cookie_actor
from services.status.errors import InvalidInput
from services.status.staff import staff_names
from services.status.stats import overview, report
from services.status.stats.api import GROUPS_OFFERED, date_range
from services.status.stats.desktime import today

HERE = Path(__file__).resolve().parent
CONSOLE_TEMPLATES = HERE.parent / "templates"
STYLESHEET = HERE / "static" / "reports.css"

router = APIRouter(prefix="/dashboard/reports", tags=["reports"], include_in_schema=False)


@functools.cache
def templates() -> Jinja2Templates:
    """This page's templates first, then the console's (its base layout), autoescaped."""
    loader = ChoiceLoader(
        [FileSystemLoader(str(HERE / "templates")), FileSystemLoader(str(CONSOLE_TEMPLATES))]
    )
    env = Environment(loader=loader, autoescape=select_autoescape(default=True), auto_reload=False)
    env.filters["duration"] = overview.duration
    env.filters["within"] = functools.partial(overview.duration, up=True)
    return Jinja2Templates(env=pages.compiled(env))


def _day(value: str | None, name: str) -> date | None:
    """A desk day typed into the page's range (blank: not given)."""
    if not (value or "").strip():
        return None
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise InvalidInput(f"the {name} date is not a date like 2026-09-14") from None


@router.api_route(
    "", methods=["GET", "HEAD"], response_class=HTMLResponse, summary="Reports page (supervisors)"
)
async def reports_page(
    request: Request,
    res: ResourcesDep,
    session: SessionDep,
    frm: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Charts and tables for a range of desk days (the last four weeks unless given; what
    cannot be read is said on the page, above the last four weeks)."""
    actor = await cookie_actor(request, res, session)
    if actor is None:  # signed in from here, a supervisor reads reports without a shift
        return reports_sign_in(request)
    names = await staff_names(session, [actor.id])
    actor_name = names.get(actor.id, actor.id)
    if not has_role(actor, "supervisor"):
        return templates().TemplateResponse(
            request,
            "reports_refused.html",
            {"actor": actor, "actor_name": actor_name},
            status_code=403,
        )
    now_day = today(res.clock())
    error = None
    try:
        first, last = date_range(_day(frm, "From"), _day(to, "To"), now_day)
    except InvalidInput as exc:
        error = exc.detail[:1].upper() + exc.detail[1:]
        first, last = date_range(None, None, now_day)
    await log_access(session, actor, None, "report", res.clock())
    await session.commit()
    data = await overview.page_data(
        session,
        frm=first,
        to=last,
        viewer=report.Viewer(admin=has_role(actor, "admin")),
        department_name=res.book.department_name,
    )
    context = {
        "actor": actor,
        "actor_name": actor_name,
        "frm": first,
        "to": last,
        "error": error,
        "groups": GROUPS_OFFERED,
        "d": data,
    }
    return templates().TemplateResponse(request, "reports.html", context)


@router.get("/reports.css", summary="The reports page's stylesheet")
async def stylesheet() -> FileResponse:
    """Served from the statistics package (the console's static files stay the UI's)."""
    return FileResponse(STYLESHEET, media_type="text/css")
