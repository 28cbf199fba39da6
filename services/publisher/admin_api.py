"""Admin routes: webhook subscriptions, their delivery log and replays (admin bearer token)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.publisher import deliveries, subscriptions
from services.publisher.deps import AdminDep, Resources, ResourcesDep, SessionDep
from services.publisher.errors import InvalidInput, PublisherError
from services.publisher.openapi import ADMIN, BODY, FOUND
from shared.domain import CAMPUSES
from shared.events import PUBLIC_EVENT_TYPES
from shared.http import problem
from shared.text import Text

router = APIRouter(tags=["webhooks"], dependencies=[AdminDep], responses=ADMIN)


FilterId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]
"""A campus or department filter: checked against the ids the desk uses (`_known_filters`)."""


def _known_filters(
    campuses: list[str] | None, departments: list[str] | None, res: Resources
) -> None:
    """InvalidInput naming the first filter id the desk does not use (it would never match)."""
    for kind, given, known in (
        ("campus", campuses, CAMPUSES),
        ("department", departments, res.settings.known_departments),
    ):
        unknown = sorted(set(given or ()) - known)
        if unknown:
            raise InvalidInput(f"unknown {kind} {unknown[0]!r}: one of {', '.join(sorted(known))}")


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://portal.tccd.edu/hooks/refdesk",
                    "description": "campus portal busy widget",
                    "event_types": ["edu.tccd.refdesk.public.department.presence.v1"],
                    "campuses": [],
                    "departments": ["reference", "writing-center"],
                }
            ]
        },
    )

    url: AnyHttpUrl
    description: Text = Field("", max_length=500)
    event_types: list[str] = Field(default_factory=list, description="empty: every public type")
    campuses: list[FilterId] = Field(default_factory=list, description="empty: every campus")
    departments: list[FilterId] = Field(default_factory=list, description="empty: every department")
    secret: str | None = Field(None, description="whsec_...; issued when omitted")


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"active": False}]})

    url: AnyHttpUrl | None = None
    description: Text | None = Field(None, max_length=500)
    event_types: list[str] | None = None
    campuses: list[FilterId] | None = None
    departments: list[FilterId] | None = None
    active: bool | None = None


class RotateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{}, {"grace_h": 0}, {"secret": "whsec_...", "grace_h": 48}]
        },
    )

    secret: str | None = Field(
        None, description="whsec_...; issued when omitted (give one to install it ahead of time)"
    )
    grace_h: float | None = Field(
        None,
        ge=0,
        le=24 * 30,
        description="hours the old secret still signs deliveries beside the new one "
        "(REFDESK_PUBLISHER_SECRET_GRACE_H, 24, when omitted; 0: drop it now, e.g. it leaked)",
    )


class ReplayIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"from": "2025-12-01T00:00:00Z", "to": "2025-12-02T00:00:00Z"}]
        },
    )

    start: AwareDatetime = Field(alias="from")
    end: AwareDatetime = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _within_the_calendar(cls, value: datetime) -> datetime:
        # 9999-12-31T23:59:59-06:00 is in year 10000 in UTC, which no time column holds
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError(
                "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once in UTC"
            ) from None

    @model_validator(mode="after")
    def _ordered(self) -> ReplayIn:
        if self.end <= self.start:
            raise ValueError("'to' must be after 'from'")
        return self


def install_error_handler(app: FastAPI) -> None:
    """Render domain errors as problem+json."""

    @app.exception_handler(PublisherError)
    async def _domain(_req: Request, exc: PublisherError) -> JSONResponse:
        response = problem(exc.status, exc.title, exc.detail or None)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response


@router.get("/event-types", summary="Public event types a subscription may ask for")
async def event_types() -> list[str]:
    """Every public CloudEvents type."""
    return sorted(PUBLIC_EVENT_TYPES)


@router.post(
    "/subscriptions", status_code=201, summary="Add a webhook subscription", responses=BODY
)
async def create_subscription(
    body: SubscriptionIn, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Create a subscription; the response shows its secret, once."""
    _known_filters(body.campuses, body.departments, res)
    row = await subscriptions.create(
        session=session,
        url=str(body.url),
        now=res.clock(),
        secret=body.secret,
        description=body.description,
        event_types=body.event_types,
        campuses=body.campuses,
        departments=body.departments,
        egress=res.egress,
    )
    await session.commit()
    return subscriptions.view(row, with_secret=True)


@router.get("/subscriptions", summary="List webhook subscriptions")
async def list_subscriptions(session: SessionDep) -> list[dict[str, Any]]:
    """Every subscription (secrets are not shown)."""
    return [subscriptions.view(s) for s in await subscriptions.list_all(session=session)]


@router.get("/subscriptions/{subscription_id}", summary="One webhook subscription", responses=FOUND)
async def get_subscription(subscription_id: str, session: SessionDep) -> dict[str, Any]:
    """A subscription (its secret is not shown)."""
    return subscriptions.view(
        await subscriptions.get(session=session, subscription_id=subscription_id)
    )


@router.patch(
    "/subscriptions/{subscription_id}",
    summary="Change a webhook subscription",
    responses={**FOUND, **BODY},
)
async def update_subscription(
    subscription_id: str, body: SubscriptionPatch, res: ResourcesDep, session: SessionDep
) -> dict[str, Any]:
    """Change url, description, event types, filters or active."""
    _known_filters(body.campuses, body.departments, res)
    changes = body.model_dump(exclude_unset=True)
    if body.url is not None:
        changes["url"] = str(body.url)
    row = await subscriptions.update(
        session=session,
        subscription_id=subscription_id,
        changes=changes,
        now=res.clock(),
        egress=res.egress,
    )
    await session.commit()
    return subscriptions.view(row)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Delete a webhook subscription and its delivery log",
    responses=FOUND,
)
async def delete_subscription(subscription_id: str, session: SessionDep) -> Response:
    """Delete it."""
    await subscriptions.remove(session=session, subscription_id=subscription_id)
    await session.commit()
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/secret",
    summary="Rotate the signing secret",
    responses={**FOUND, **BODY},
)
async def rotate_secret(
    subscription_id: str, res: ResourcesDep, session: SessionDep, body: RotateIn | None = None
) -> dict[str, Any]:
    """A new secret, shown once; deliveries from now on are signed with it, and with the old
    one too until `previous_secret_until` (a `webhook-signature` of two signatures), so the
    subscriber can switch without refusing a delivery."""
    wanted = body or RotateIn()
    hours = wanted.grace_h if wanted.grace_h is not None else res.settings.secret_grace_h
    row = await subscriptions.rotate_secret(
        session=session,
        subscription_id=subscription_id,
        now=res.clock(),
        grace=timedelta(hours=hours),
        secret=wanted.secret,
    )
    await session.commit()
    until = row.previous_secret_until
    return {
        "id": subscription_id,
        "secret": row.secret,
        "previous_secret_until": until.isoformat() if until is not None else None,
    }


@router.get(
    "/subscriptions/{subscription_id}/deliveries", summary="The delivery log", responses=FOUND
)
async def list_deliveries(
    subscription_id: str,
    session: SessionDep,
    state: str | None = Query(None, pattern="^(pending|delivered|dead)$"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """A subscription's deliveries, newest event first."""
    await subscriptions.get(session=session, subscription_id=subscription_id)
    rows = await deliveries.log(session, subscription_id=subscription_id, state=state, limit=limit)
    return [deliveries.view(r) for r in rows]


@router.post(
    "/subscriptions/{subscription_id}/replay",
    status_code=202,
    summary="Re-send the logged deliveries of a time range",
    responses={**FOUND, **BODY},
)
async def replay(
    subscription_id: str, body: ReplayIn, res: ResourcesDep, session: SessionDep
) -> dict[str, int]:
    """Re-queue delivered and dead deliveries whose event time is in [from, to)."""
    await subscriptions.get(session=session, subscription_id=subscription_id)
    count = await deliveries.replay(
        session, subscription_id=subscription_id, start=body.start, end=body.end, now=res.clock()
    )
    await session.commit()
    res.wake()
    return {"requeued": count}
