"""The staff dashboard: sign-in and sign-out, the console page (queue and conversation, see
console/pages.py), the JSON state it polls for status and Who's Online, and what a browser sees
at an address under /dashboard that no page has (console/error_pages.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.status import api, presence
from services.status.auth import Actor, actor_for_token, cookie_name, has_role
from services.status.console import error_pages, pages
from services.status.deps import ActorDep, ResourcesDep, SessionDep, cookie_actor, session_cookie
from services.status.errors import StatusError, Unauthenticated, Unavailable
from services.status.leavers import give_back_waiting
from services.status.models import Staff
from services.status.openapi import BODY, CONSOLE_PAGE, SIGN_IN_FORM, SIGNED_IN, problems
from services.status.resources import broker_answers, publish_presence
from services.status.sessions import close_session, open_session, open_sessions
from services.status.throttle import client_address, throttle_of
from services.status.token_use import token_use_of
from shared.events import StaffStatus
from shared.http import (
    CSP,
    DATABASE_AWAY,
    DATABASE_UNREACHABLE,
    RETRY_AFTER_S,
    SECURITY_HEADERS,
    http_problem,
    log_unreachable,
    unhandled_problem,
)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"

router = APIRouter(prefix="/dashboard", tags=["dashboard"])

SIGN_IN_TOO_LONG = (
    "That staff id or token is longer than any the desk issues. Check what you typed or pasted."
)
SIGN_IN_MISSING = "Enter both your staff id and your token."


def templates() -> Jinja2Templates:
    """The dashboard's Jinja2 templates (autoescaped)."""
    return pages.templates()


async def board_state(*, res: ResourcesDep, session: SessionDep, actor: Actor) -> dict[str, Any]:
    """The caller's status and Who's Online by department name, which every open console polls
    (the queue has its own reads and live updates: `GET /conversations`, /console/events)."""
    return {
        "me": await presence.status_of(session=session, staff_id=actor.id),
        "online": await pages.whos_online(res, session),
        "broker": await broker_answers(res),
    }


@router.get(
    "", response_class=HTMLResponse, summary="Staff dashboard", responses={503: CONSOLE_PAGE[503]}
)
async def dashboard(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """The console when signed in (the queue, filtered or searched by the query string), else
    the sign-in form."""
    actor = await cookie_actor(request, res, session)
    if actor is None:
        return _login_page(request)
    return await pages.render_console(request, res=res, session=session, actor=actor)


@router.get(
    "/c/{conversation_id}",
    response_class=HTMLResponse,
    summary="Console: conversation",
    responses=CONSOLE_PAGE,
)
async def conversation_page(
    conversation_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """The console with one conversation open (a link staff can share or bookmark)."""
    actor = await cookie_actor(request, res, session)
    if actor is None:  # signed in from here, the console opens this conversation
        return _login_page(request, then=THEN_CONVERSATION + conversation_id)
    return await pages.render_console(
        request, res=res, session=session, actor=actor, conversation_id=conversation_id
    )


# HEAD as a browser's probe, the same answers; kept out of the OpenAPI document, where it had
# shared GET's operation id (and ids must be unique)
for page_path, page in (("", dashboard), ("/c/{conversation_id}", conversation_page)):
    router.add_api_route(
        page_path, page, methods=["HEAD"], response_class=HTMLResponse, include_in_schema=False
    )


THEN_REPORTS = "reports"
"""The sign-in form's `then` for the reports page: signed in there, no shift starts."""
THEN_CONVERSATION = "c:"
"""The sign-in form's `then` prefix for a conversation's address (a link a colleague shared):
signed in, the console opens it."""


def _then(value: str | None) -> str | None:
    """A `then` the form may carry: the reports, or a conversation; anything else is none."""
    if value == THEN_REPORTS:
        return value
    if value and value.startswith(THEN_CONVERSATION) and len(value) > len(THEN_CONVERSATION):
        return value
    return None


def _after_sign_in(then: str | None) -> str:
    """Where a sign-in goes: built here, never taken from the form (no open redirect)."""
    if then == THEN_REPORTS:
        return "/dashboard/reports"
    if then is not None and then.startswith(THEN_CONVERSATION):
        return "/dashboard/c/" + quote(then.removeprefix(THEN_CONVERSATION), safe="")
    return "/dashboard"


SIGN_IN_UNAVAILABLE = (
    "The desk cannot reach its database right now, so nobody can sign in. Try again in a "
    "minute; patrons' messages are kept meanwhile."
)


def _login_page(
    request: Request, error: str | None = None, status: int = 200, then: str | None = None
) -> Response:
    context = {"error": error, "then": _then(then), "reports": then == THEN_REPORTS}
    return templates().TemplateResponse(request, "login.html", context, status_code=status)


def reports_sign_in(request: Request) -> Response:
    """The sign-in form as the reports page shows it to someone signed out."""
    return _login_page(request, then=THEN_REPORTS)


class SignInForm(APIRoute):
    """The sign-in form's route: a browser whose form the route refuses (a field too long or
    missing) gets the sign-in page again with a plain message (422); other clients keep the
    app's problem+json naming the field."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, answering a browser's invalid form with the sign-in page."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                if not error_pages.wants_html(request.headers.get("accept")):
                    raise
                too_long = any(e.get("type") == "string_too_long" for e in exc.errors())
                return _login_page(request, SIGN_IN_TOO_LONG if too_long else SIGN_IN_MISSING, 422)

        return handle


SIGN_IN_ELSEWHERE = "This sign-in came from another site. Sign in on this page."


def cross_site(request: Request) -> bool:
    """Whether a browser says the form was posted from another site: Fetch Metadata's
    Sec-Fetch-Site, else an Origin whose host is not the one asked. A client that sends
    neither (a script, an old browser) is not a cross-site form."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()


async def login(
    request: Request,
    res: ResourcesDep,
    session: SessionDep,
    staff_id: Annotated[str, Form(max_length=64)],
    token: Annotated[str, Form(max_length=200)],
    then: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """Check the token and open a session (throttled per staff id and client address, and per
    client address). A sign-in posted from another site is refused (login CSRF: a page
    elsewhere signing a librarian's browser into someone else's account)."""
    if cross_site(request):
        return _login_page(request, SIGN_IN_ELSEWHERE, 403, then)
    throttle, address, now = throttle_of(res.extra), client_address(request), res.clock()
    try:
        actor = await actor_for_token(session=session, token=token.strip())
    except Unauthenticated:
        actor = None
    if actor is None or actor.id != staff_id.strip():
        # a right token always signs in (throttle.py); wrong ones wait once there were many
        wait = throttle.retry_after(address=address, staff_id=staff_id.strip(), now=now.timestamp())
        if wait is not None:
            page = _login_page(request, "Too many failed sign-ins. Try again later.", 429, then)
            page.headers["Retry-After"] = str(wait)
            return page
        throttle.failed(address=address, staff_id=staff_id.strip(), now=now.timestamp())
        return _login_page(request, "Staff id or token not recognised.", 401, then)
    throttle.succeeded(address=address, staff_id=actor.id)
    token_use_of(res.extra).note(actor, now)
    cookie = await open_session(
        session=session,
        staff_id=actor.id,
        token=token.strip(),
        secret=res.settings.session_secret,
        now=now,
        max_age_s=res.settings.session_max_age_s,
    )
    # signing in at the desk starts the shift (the seed: log in -> Online); someone already
    # Online or Away keeps their status; a supervisor signing in to read the reports starts
    # none (the router would send patrons to a desk nobody watches)
    started = None
    to_reports = then == THEN_REPORTS and has_role(actor, "supervisor")  # staff: the desk
    status_now = (await presence.status_of(session=session, staff_id=actor.id))["status"]
    if status_now == "Offline" and not to_reports:
        started = await presence.set_status(
            session=session,
            staff_id=actor.id,
            status=StaffStatus.ONLINE,
            actor_id=actor.id,
            now=now,
            shift="start",
        )
    await session.commit()
    if started is not None:
        with contextlib.suppress(Unavailable):  # the next sweep republishes presence
            await publish_presence(res, [started])
    response = RedirectResponse(_after_sign_in(_then(then)), 303)
    # a browser-session cookie: closing the browser of a shared desk computer signs out (the
    # session itself still ends after REFDESK_STATUS_SESSION_MAX_AGE_S, whatever the browser)
    response.set_cookie(
        cookie_name(res.settings.cookie_secure),
        cookie,
        httponly=True,
        samesite="strict",
        secure=res.settings.cookie_secure,
        path="/",
    )
    return response


async def back_to_console() -> Response:
    """A browser that opens the sign-in or sign-out form's address goes to the console (the
    sign-in page when signed out)."""
    return RedirectResponse("/dashboard", status_code=303)


for form_path in ("/login", "/logout"):
    router.add_api_route(form_path, back_to_console, methods=["GET"], include_in_schema=False)
router.add_api_route(
    "/login",
    login,
    methods=["POST"],
    summary="Sign in with staff id and token",
    route_class_override=SignInForm,
    responses=SIGN_IN_FORM,
)


@router.post("/logout", summary="End the session", responses={**BODY, **problems(503)})
async def logout(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """Sign out of the dashboard: the session ends server-side, and so does the shift (the
    seed: Offline before you sign off) unless the staff member is still signed in elsewhere.
    A sign-out another site posted (SameSite=Strict lets a same-site page through: another
    port, another host of the college's domain) ends nothing: such a page signed librarians
    out and set them Offline, and the router then treated their departments as unstaffed."""
    if cross_site(request):
        return RedirectResponse("/dashboard", status_code=303)
    now = res.clock()
    staff_id = await close_session(
        session=session,
        cookie=session_cookie(request, res),
        secret=res.settings.session_secret,
        now=now,
    )
    ended = None
    if staff_id is not None and not await open_sessions(
        session=session, staff_id=staff_id, now=now, max_age_s=res.settings.session_max_age_s
    ):
        ended = await presence.set_status(
            session=session,
            staff_id=staff_id,
            status=StaffStatus.OFFLINE,
            actor_id=staff_id,
            now=now,
            note="signed out",
            shift="end",
        )
    await session.commit()
    if ended is not None:
        with contextlib.suppress(Unavailable):  # the next sweep republishes presence
            await publish_presence(res, [ended])
        staff = await session.get(Staff, ended.staff_id)
        if staff is not None:  # their patrons waiting for an answer go back to the queue
            actor = Actor(id=staff.id, role=staff.role, departments=tuple(staff.departments))
            with contextlib.suppress(Unavailable):  # saved, as any action whose event waits
                await give_back_waiting(res, session, actor)
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(
        cookie_name(res.settings.cookie_secure),
        path="/",
        secure=res.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get(
    "/state",
    summary="The caller's status and Who's Online, for the console's poll",
    responses=SIGNED_IN,
)
async def state(actor: ActorDep, res: ResourcesDep, session: SessionDep) -> dict[str, Any]:
    """Own status and Who's Online (every open console asks every 30 s, so this answer does
    not grow with the queue)."""
    return await board_state(res=res, session=session, actor=actor)


router.include_router(pages.router)


def _browser_page(request: Request) -> bool:
    """Whether a request is a browser's navigation to a console page (GET, or HEAD as its
    probe, under /dashboard, asking for HTML): the requests that get an error page rather than
    problem+json."""
    path = request.url.path
    return (
        (path == "/dashboard" or path.startswith("/dashboard/"))
        and request.method in ("GET", "HEAD")
        and error_pages.wants_html(request.headers.get("accept"))
    )


def install_page_errors(app: FastAPI) -> None:
    """A browser at an address under /dashboard that no route takes (404, or 405 for a method
    none has) gets the console's "Page not found" page; a path ending in "/" goes first to the
    path without it. A console page that fails on the desk's side (the database or broker
    unreachable: 503; anything unexpected: 500) gets a page saying so, with no detail. Every
    other request keeps problem+json (shared/http.py, api.py). Installed after
    `install_problem_handlers` and `api.install_error_handler`, whose handlers it replaces."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code not in (404, 405) or not _browser_page(request):
            return http_problem(exc, request)
        path = request.url.path
        if path.endswith("/") and path.rstrip("/"):
            # relative, on this host whatever the Host header said (it had named the host of
            # the redirect), and one leading slash ("//evil.example/" is not another site)
            query = request.url.query
            return RedirectResponse("/" + path.strip("/") + (f"?{query}" if query else ""), 307)
        return pages.error_page(request, error_pages.PAGE_NOT_FOUND, 404)

    @app.exception_handler(StatusError)
    async def _domain(request: Request, exc: StatusError) -> Response:
        if exc.status < 500 or not _browser_page(request):
            return api.domain_problem(exc)
        unavailable = exc.status == 503
        trouble = error_pages.UNAVAILABLE_TROUBLE if unavailable else error_pages.SERVER_TROUBLE
        return pages.error_page(request, trouble, exc.status)

    async def _unreachable(request: Request, exc: Exception) -> Response:
        # as an Unavailable: problem+json with Retry-After, or the console's page saying so
        log_unreachable(exc)
        signing_in = request.url.path == "/dashboard/login" and request.method == "POST"
        if signing_in and error_pages.wants_html(request.headers.get("accept")):
            # the sign-in form answered in its own words (it had shown raw problem+json)
            page = _login_page(request, SIGN_IN_UNAVAILABLE, 503)
            page.headers["Retry-After"] = str(RETRY_AFTER_S)
            return page
        return await _domain(request, Unavailable(DATABASE_AWAY))

    for unreachable in DATABASE_UNREACHABLE:
        app.add_exception_handler(unreachable, _unreachable)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        # Starlette's outermost ServerErrorMiddleware answers with this and then re-raises the
        # exception for the server to log; the page must not fail in its turn.
        if _browser_page(request):
            with contextlib.suppress(Exception):
                response = pages.error_page(request, error_pages.SERVER_TROUBLE, 500)
                response.headers.update({"Content-Security-Policy": CSP, **SECURITY_HEADERS})
                return response
        return unhandled_problem()
