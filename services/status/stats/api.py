"""Reports over HTTP (supervisors and admins; every access logged) and the tag edit.

GET /reports/summary (JSON, or CSV for `Accept: text/csv`), /reports/summary.csv,
/reports/annual; PATCH /conversations/{id}/tags.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.status.auth import Actor, has_role, require_role
from services.status.conversations.access import log_access
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import InvalidInput
from services.status.openapi import ACTION, SIGNED_IN
from services.status.resources import deliver
from services.status.stats import report, tags
from services.status.stats.desktime import EARLIEST_DAY, check_days, today
from services.status.topics import TOPICS
from shared.topics import DESK

router = APIRouter(tags=["reports"], responses=SIGNED_IN)

GroupBy = Literal[
    "hour",
    "weekday",
    "day",
    "week",
    "month",
    "channel",
    "department",
    "topic",
    "read_scale",
    "staff",
]
GROUPS_OFFERED = {
    "week": "Week",
    "day": "Day",
    "month": "Month",
    "hour": "Hour of the day",
    "weekday": "Day of the week",
    "channel": "Channel",
    "department": "Department",
    "topic": "Topic",
    "read_scale": "READ Scale",
    "staff": "Staff member who closed it",
}
"""The groupings, as the page's export menu names them."""
DEFAULT_DAYS = 28
LONGEST_DAYS = 3 * 366
CSV = "text/csv"


class TagsIn(BaseModel):
    """Only the fields sent change; null clears one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"read_scale": 4}, {"topic": "citation"}]},
    )

    read_scale: int | None = Field(None, ge=1, le=6, description="READ Scale effort, 1-6")
    topic: str | None = Field(None, description="one of " + ", ".join(TOPICS))


def date_range(frm: date | None, to: date | None, now_day: date) -> tuple[date, date]:
    """The desk days a report covers: the last four weeks unless given; 422 if reversed or
    beyond the calendar the desk counts in."""
    wrong = check_days(frm, to)
    if wrong is not None:
        raise InvalidInput(wrong)
    last = to or now_day
    first = frm or max(EARLIEST_DAY, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInput("the From date is after the To date")
    if (last - first).days > LONGEST_DAYS:
        raise InvalidInput("a report covers at most three years")
    return first, last


async def allowed_reader(actor: Actor, res: ResourcesDep, session: SessionDep) -> report.Viewer:
    """Supervisors and admins only (403 otherwise); the access is logged."""
    require_role(actor, "supervisor")
    await log_access(session, actor, None, "report", res.clock())
    await session.commit()
    return report.Viewer(admin=has_role(actor, "admin"))


def prefers_csv(accept: str) -> bool:
    """Whether an Accept header asks for CSV over JSON, its q-values read (a tie keeps JSON;
    "application/json, text/csv;q=0" is JSON: a substring test had answered CSV)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[media.lower()] = max(q, weights.get(media.lower(), 0.0))
    csv_q = weights.get(CSV, 0.0)
    json_q = max(weights.get("application/json", 0.0), weights.get("*/*", 0.0))
    return csv_q > 0 and csv_q > json_q


def csv_response(data: dict[str, Any]) -> Response:
    """The summary as a CSV download."""
    only = f"-{data['channel']}" if data.get("channel") else ""  # refdesk-week-sms-...
    name = f"refdesk-{data['group_by']}{only}-{data['from']}-{data['to']}.csv"
    return Response(
        report.to_csv(data),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


FromQ = Annotated[date | None, Query(alias="from", description="first desk day (inclusive)")]
ToQ = Annotated[date | None, Query(alias="to", description="last desk day (inclusive)")]
GroupQ = Annotated[GroupBy, Query(description="hour and weekday in desk time")]
ChannelQ = Annotated[
    Literal["chat", "sms", "email", ""] | None,
    Query(description="only the questions that arrived on this channel (empty: every channel)"),
]


def refuse_unknown(request: Request, *names: str) -> None:
    """Refuse query parameters the report does not read (after the caller's access is known:
    who may not read it learns nothing of its parameters): a misspelt `chanel=sms` or
    `group=topic` was ignored, and the report answered for every channel, by week, as if it
    had been asked for."""
    unknown = sorted(set(request.query_params) - set(names))
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {', '.join(unknown)}; this report reads " + ", ".join(names)
        )
    # `channel=sms&channel=email` answered for the last alone, as if one had been asked for
    given = Counter(name for name, _ in request.query_params.multi_items())
    twice = sorted(name for name, times in given.items() if times > 1)
    if twice:
        raise InvalidInput(
            f"query parameter {', '.join(twice)} given more than once; a report reads one of each"
        )


async def summary_data(
    request: Request,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    frm: FromQ = None,
    to: ToQ = None,
    group_by: GroupQ = "week",
    channel: ChannelQ = None,
) -> dict[str, Any]:
    """The summary a reader asked for (both summary routes' parameters), access logged."""
    viewer = await allowed_reader(actor, res, session)
    refuse_unknown(request, "from", "to", "group_by", "channel")
    first, last = date_range(frm, to, today(res.clock()))
    return await report.summary(
        session,
        frm=first,
        to=last,
        group_by=group_by,
        viewer=viewer,
        department_name=res.book.department_name,
        channel=channel or None,  # the page's export form sends "" for every channel
    )


SummaryDep = Annotated[dict[str, Any], Depends(summary_data)]


@router.get("/reports/summary", summary="Desk statistics by one grouping (JSON or CSV)")
async def summary(request: Request, data: SummaryDep) -> Any:
    """Counts, first-response and resolution p50/p90 (seconds), overnight share, transfers by
    target, crisis escalations and acknowledgement times (counts); `Accept: text/csv` for CSV."""
    if prefers_csv(request.headers.get("accept", "")):
        return csv_response(data)
    return data


@router.get("/reports/summary.csv", summary="The summary as CSV")
async def summary_csv(data: SummaryDep) -> Response:
    """One row per group and a total row."""
    return csv_response(data)


@router.get("/reports/annual", summary="Questions in a fiscal year (ACRL, IPEDS)")
async def annual(
    request: Request,
    actor: ActorDep,
    res: ResourcesDep,
    session: SessionDep,
    fiscal_year: Annotated[int, Query(ge=2000, le=2100, description="July-June, by end year")],
) -> dict[str, Any]:
    """All questions, reference transactions (without directional and policy questions), by
    channel, month, READ Scale and topic."""
    await allowed_reader(actor, res, session)
    refuse_unknown(request, "fiscal_year")
    return await report.annual(session, fiscal_year=fiscal_year)


@router.patch(
    "/conversations/{conversation_id}/tags",
    summary="Change a closed question's tags",
    responses=ACTION,
)
async def edit_tags(
    conversation_id: str, body: TagsIn, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """The closer or a supervisor, for 24 h after the close (403, 409 otherwise)."""
    if body.topic is not None and body.topic not in TOPICS:
        raise InvalidInput("topic: one of " + ", ".join(TOPICS))
    change = tags.Change(
        read_scale=body.read_scale, topic=body.topic, fields=frozenset(body.model_fields_set)
    )
    event, until = await tags.edit(
        session=session,
        conversation_id=conversation_id,
        actor=actor,
        now=res.clock(),
        change=change,
    )
    await deliver(res, session, [(DESK.name, event, conversation_id)])
    return {
        "conversation_id": conversation_id,
        "read_scale": event.read_scale,
        "topic": event.topic,
        "editable_until": until.isoformat(),
    }
