"""What routes depend on: resources built by the lifespan, a DB session, the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.publisher.egress import Egress
from services.publisher.errors import Unauthenticated
from services.publisher.openapi import ADMIN_BEARER
from services.publisher.settings import PublisherSettings
from shared.http import bearer_matches


@dataclass
class Resources:
    """What the admin routes share; built once per app."""

    settings: PublisherSettings
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime]
    wake: Callable[[], None]
    """Tell the webhook worker that deliveries were re-queued."""
    egress: Egress
    """Where subscription URLs may point."""


async def get_resources(request: Request) -> Resources:
    """The app's resources."""
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def db_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with res.sessions() as session:
        yield session


# closed when the endpoint returns, before the response is sent (as in the status service)
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def require_admin(
    request: Request,
    res: ResourcesDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(ADMIN_BEARER)],
) -> None:
    """Unauthenticated unless the request carries the admin bearer token. The token is read
    by `bearer_matches`, as every service reads one; `_declared` names it in OpenAPI."""
    if not bearer_matches(request.headers.get("authorization"), res.settings.admin_token):
        raise Unauthenticated("send Authorization: Bearer <REFDESK_PUBLISHER_ADMIN_TOKEN>")


AdminDep = Depends(require_admin)
