"""Admin routes for records requests and the access log (records.py): a patron's whole
record for one contact (POST, so the contact stays out of addresses and proxies' logs), and
the access log as JSON or CSV. Admins only: the desk's privacy officer works as one."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.status import records
from services.status.auth import require_role
from services.status.deps import ActorDep, ResourcesDep, SessionDep
from services.status.errors import InvalidInput
from services.status.openapi import BODY, SIGNED_IN, problems
from services.status.records import retention_of
from services.status.resources import publish_all
from services.status.stats.api import refuse_unknown
from services.status.stats.report import spreadsheet_cell
from shared.topics import DESK

router = APIRouter(prefix="/admin", tags=["admin"], responses=SIGNED_IN)

NO_NUL = r"^[^\x00]*$"
"""No NUL character: PostgreSQL's text refuses one (a 500 had answered it)."""
ROW_ID_MAX = 2**31 - 1
"""The access log's ids are 32-bit integers (PostgreSQL refused a larger `before` with a 500)."""
LOG_PARAMETERS = ("conversation_id", "staff_id", "action", "from", "to", "before", "limit")


class RecordsRequest(BaseModel):
    """Whose records, and the request they answer (kept in the access log)."""

    contact: str = Field(
        min_length=3,
        max_length=320,
        pattern=NO_NUL,
        description="the patron's phone number (typed any way), email address or a conversation id",
    )
    reason: str = Field(
        min_length=3,
        max_length=300,
        pattern=NO_NUL,
        description='the request this answers, as the access log keeps it: "FERPA request '
        '2026-014", "subpoena 26-CV-118"; no patron data',
    )


@router.post("/records", summary="A patron's records, for a records request", responses=BODY)
async def patron_records(
    body: RecordsRequest, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Every conversation the desk holds for this contact, whole, oldest first (at most 500:
    `more` says there were more), and what other services hold of the patron; each
    conversation shown is an access-log row `records` with the reason as its detail."""
    require_role(actor, "admin")
    contact, reason = _asked(body)
    answer = await records.patron_records(
        session=session,
        actor=actor,
        contact=contact,
        reason=reason,
        now=res.clock(),
        department_name=res.book.department_name,
        kept=retention_of(res),
    )
    await session.commit()
    return answer


class ErasureRequest(RecordsRequest):
    """Whose conversations to erase, the request it answers, and that the caller means it."""

    confirm: Literal[True] = Field(
        description="true: the transcripts and the patron's details go at once and for good"
    )


@router.post(
    "/records/erase",
    summary="Erase a patron's closed conversations on request",
    responses={**BODY, **problems(409)},
)
async def erase_records(
    body: ErasureRequest, actor: ActorDep, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Every closed conversation of this contact loses its transcript and the patron's details
    at once (as retention would later), each an access-log row `erase` with the reason; 409,
    nothing erased, while any of them is open. The erasures go on refdesk.desk first (a 503
    erases nothing; ask again), so every replica, and a rebuild from the topics, keeps them."""
    require_role(actor, "admin")
    contact, reason = _asked(body)
    now = res.clock()
    events = await records.erasure(
        session=session, actor=actor, contact=contact, reason=reason, now=now
    )
    await session.rollback()  # nothing is written until the broker has the erasures
    for event in events:
        await publish_all(res, [(DESK.name, event)], key=event.conversation_id)
    answer = await records.erase(
        session=session, actor=actor, events=events, reason=reason, now=now, kept=retention_of(res)
    )
    await session.commit()
    return answer


def _asked(body: RecordsRequest) -> tuple[str, str]:
    contact, reason = body.contact.strip(), " ".join(body.reason.split())
    if len(reason) < 3:
        raise InvalidInput("reason: say which request this answers")
    return contact, reason


ConversationQ = Annotated[str | None, Query(max_length=128, pattern=NO_NUL)]
StaffQ = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]
ActionQ = Annotated[str | None, Query(max_length=16, pattern=NO_NUL)]
FromQ = Annotated[date | None, Query(alias="from", description="first desk day (inclusive)")]
ToQ = Annotated[date | None, Query(alias="to", description="last desk day (inclusive)")]
BeforeQ = Annotated[
    int | None, Query(ge=1, le=ROW_ID_MAX, description="rows older than this row id")
]
LimitQ = Annotated[int, Query(ge=1, le=records.LOG_LIMIT)]
CSV_LIMIT = 10_000
"""The most rows one CSV file holds (a `Link` header names the next file when there are more:
a file of the newest 500 had stopped there without a word)."""
CsvLimitQ = Annotated[int, Query(ge=1, le=CSV_LIMIT)]


def log_filters(
    request: Request,
    actor: ActorDep,
    conversation_id: ConversationQ = None,
    staff_id: StaffQ = None,
    action: ActionQ = None,
    frm: FromQ = None,
    to: ToQ = None,
    before: BeforeQ = None,
) -> records.LogFilter:
    """The access log's filters, for admins only (both routes' parameters but the limit)."""
    require_role(actor, "admin")
    refuse_unknown(request, *LOG_PARAMETERS)
    if frm and to and frm > to:
        raise InvalidInput("from: the first day is after the last")
    return records.LogFilter(
        conversation_id=conversation_id or None,
        staff_id=staff_id or None,
        action=action or None,
        date_from=frm,
        date_to=to,
        before=before,
    )


LogFilters = Annotated[records.LogFilter, Depends(log_filters)]


@router.get("/access-log", summary="The transcript access log, newest first")
async def access_log(
    wanted: LogFilters, session: SessionDep, limit: LimitQ = 100
) -> dict[str, Any]:
    """Who read, searched, reported on, answered a records request for, erased or
    administered what, when (`read`, `search`, `macro`, `report`, `records`, `erase`,
    `staff-...`, `token-...`); `next_before` asks for the next page."""
    return await records.access_log(session, replace(wanted, limit=limit))


@router.get("/access-log.csv", summary="The transcript access log as CSV")
async def access_log_csv(
    request: Request, wanted: LogFilters, session: SessionDep, limit: CsvLimitQ = CSV_LIMIT
) -> Response:
    """The same rows, one header line, up to 10,000 a file; when there are more, a `Link`
    header (rel="next") names the next file (`before`)."""
    data = await records.access_log(session, replace(wanted, limit=limit))
    headers = {"Content-Disposition": 'attachment; filename="refdesk-access-log.csv"'}
    if data["next_before"] is not None:
        query = {k: v for k, v in request.query_params.items() if k != "before"}
        query["before"] = str(data["next_before"])
        headers["Link"] = f'</admin/access-log.csv?{urlencode(query)}>; rel="next"'
    return Response(log_csv(data["items"]), media_type="text/csv; charset=utf-8", headers=headers)


LOG_COLUMNS = ("id", "at", "staff_id", "staff_name", "action", "conversation_id", "detail")


def log_csv(items: list[dict[str, Any]]) -> str:
    """Access-log rows as CSV (RFC 4180, CRLF), no cell a spreadsheet runs as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(LOG_COLUMNS)
    for item in items:
        writer.writerow([spreadsheet_cell(item[c]) for c in LOG_COLUMNS])
    return out.getvalue()
