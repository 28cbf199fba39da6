"""What routes depend on: the app's resources, a DB session, the signed-in actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor, actor_for_token, cookie_name, read_session
from services.status.errors import Forbidden, Unauthenticated
from services.status.openapi import STAFF_BEARER
from services.status.resources import Resources
from services.status.sessions import session_actor
from services.status.throttle import bearer_actor
from services.status.token_use import token_use_of

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_HEADER = "x-requested-with"


async def get_resources(request: Request) -> Resources:
    """The app's resources."""
    res: Resources = request.app.state.resources
    return res


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def db_session(res: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with res.sessions() as session:
        yield session


# closed when the endpoint returns, before the response is sent: a streamed response (the
# console's live stream) must not hold a pooled connection for as long as it stays open
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(STAFF_BEARER)]
"""The request's bearer token, if its Authorization header carries one; as a dependency it
declares the staff token on every operation behind `current_actor` in OpenAPI."""


async def current_actor(
    request: Request, res: ResourcesDep, session: SessionDep, bearer: BearerDep
) -> Actor:
    """The staff member behind a bearer token or the dashboard's session cookie."""
    if request.headers.get("authorization"):
        if bearer is None:  # another scheme, or no token after Bearer
            raise Unauthenticated("expected a bearer token")
        now = res.clock()
        actor = await bearer_actor(
            request=request,
            extra=res.extra,
            session=session,
            token=bearer.credentials,
            now=now.timestamp(),
        )
        token_use_of(res.extra).note(actor, now)
        return actor
    cookie = session_cookie(request, res)
    if read_session(cookie, secret=res.settings.session_secret, now=res.clock()) is None:
        raise Unauthenticated("sign in or send a bearer token")
    if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "refdesk":
        raise Forbidden("cookie-authenticated changes need the X-Requested-With: refdesk header")
    signed_in = await cookie_actor(request, res, session)
    if signed_in is None:  # signed out, token revoked or staff deactivated since
        raise Unauthenticated("the session has ended; sign in again")
    return signed_in


ActorDep = Annotated[Actor, Depends(current_actor)]


def embedded_elsewhere(request: Request) -> bool:
    """Whether a browser says another site (or another host or port of the college's own)
    made this request and it is not a page the librarian opened with a click (Fetch Metadata):
    an image, a frame, a script's fetch, or a navigation a script made. Such a request carried
    the session cookie (SameSite=Strict lets a same-site page send it) and planted reads in a
    librarian's access log that they never made (an outside review). A client that sends no
    Sec-Fetch-Site (a script, an old browser) is not told apart."""
    site = request.headers.get("sec-fetch-site")
    if site is None or site in ("same-origin", "none"):
        return False
    navigation = request.headers.get("sec-fetch-mode") == "navigate"
    page = request.headers.get("sec-fetch-dest", "document") == "document"
    # a link the librarian followed: a person's click (Sec-Fetch-User); a page's script that
    # sent the tab there, or opened a window, without one had still planted a read
    clicked = request.headers.get("sec-fetch-user") == "?1"
    return not (navigation and page and clicked)


def session_cookie(request: Request, res: Resources) -> str | None:
    """The console's session cookie the request carries (`auth.cookie_name`), if any."""
    return request.cookies.get(cookie_name(res.settings.cookie_secure))


async def cookie_actor(request: Request, res: Resources, session: AsyncSession) -> Actor | None:
    """The staff member of the console's open session (sessions.py), or None; the use is
    noted against the token the session was opened with (token_use.py). None too for a
    request another site embedded (`embedded_elsewhere`): it reads nothing as the librarian."""
    if embedded_elsewhere(request):
        return None
    now = res.clock()
    actor = await session_actor(
        session=session,
        cookie=session_cookie(request, res),
        secret=res.settings.session_secret,
        now=now,
    )
    token_use_of(res.extra).note(actor, now)
    return actor


async def still_signed_in(request: Request, res: Resources, session: AsyncSession) -> Actor | None:
    """Whose credentials an open request (a live stream) still carries, read again: None once
    the token is revoked, the session ended or the staff member deactivated. Never throttled
    and never counted as a wrong token: the request was let in, and asks only whether it may
    stay (behind the throttle a revoked token answered 429, which a stream read as the
    database being away, and streamed on)."""
    header = request.headers.get("authorization")
    try:
        if header:
            return await actor_for_token(session=session, token=header.partition(" ")[2].strip())
        return await session_actor(
            session=session,
            cookie=session_cookie(request, res),
            secret=res.settings.session_secret,
            now=res.clock(),
        )
    except (Unauthenticated, Forbidden):
        return None
