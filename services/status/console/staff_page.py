"""The admins' staff page (/dashboard/staff): every staff member, adding and changing them,
deactivating (after a confirm step), issuing bearer tokens (the secret shown once, on the
answer to the form that issued it) and revoking them. Server-rendered forms, posted with the
console's session and refused from another site or without the form's token; every action
goes through the functions the admin API uses (services/status/staff.py), so its rules hold
here too, and is a line of the access log. A change answers with a redirect to a page that
says what was done (post/redirect/get); a form the rules refuse comes back with the reason
next to the field."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from services.status import presence
from services.status import staff as staff_service
from services.status.auth import ROLES, SESSION_LABEL, Actor, has_role
from services.status.console import error_pages, pages, views
from services.status.dashboard import cross_site
from services.status.deps import ResourcesDep, SessionDep, cookie_actor, session_cookie
from services.status.errors import Conflict, InvalidInput, NotFound, Unavailable
from services.status.leavers import give_back_all
from services.status.models import Conversation, Staff
from services.status.resources import Resources, publish_presence
from services.status.staff import AlreadyIssued, StaffIn, StaffPatch, log_admin_action
from shared.settings import secret_value

router = APIRouter(prefix="/dashboard/staff", tags=["staff page"], include_in_schema=False)

FORM_TOKEN_FIELD = "form_token"  # noqa: S105 (a field name, not a secret)
ISSUE_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""The shape of the issue form's one-time key (a page from before it sends none)."""
ROLE_WORDS = {
    "staff": "Staff",
    "supervisor": "Supervisor",
    "admin": "Admin",
}
ROLE_HINTS = {
    "staff": "Answers the queue of their departments and sets their own status.",
    "supervisor": "Also sees every department, sets anyone's status and reads the reports.",
    "admin": "Also manages staff and their sign-in tokens on this page.",
}
FIELD_WORDS = {
    "id": "Use 2 to 64 lowercase letters, digits, dots, dashes or underscores, starting with "
    "a letter or digit.",
    "name": "Enter a name of at most 200 characters.",
    "email": "Enter an email address like maria.garcia@tccd.edu.",
    "campus": "A campus is at most 32 characters (like campus-ne).",
    "role": "Choose staff, supervisor or admin.",
    "departments": "Choose departments from the list.",
    "label": "Enter a label of at most 64 characters.",
}
MISSING_WORDS = {
    "id": "Enter a staff id (like mgarcia).",
    "name": "Enter the staff member's name.",
    "email": "Enter the staff member's email address.",
    "label": "Enter a label saying what the token is for (like “desk sign-in”).",
}
NOT_YOURSELF_ROLE = (
    "You cannot give up your own admin role: the desk would lose an admin. Another admin can "
    "change it."
)
ONES_LAST_KEY_WORDS = (
    "This is your last token: revoking it would sign you out for good. Issue yourself another "
    "first. Nothing was revoked."
)
CHANGED_MEANWHILE = (
    "Another admin changed this record while you were editing it. Nothing was saved: the form "
    "below still holds what you typed; check it against the record and save again."
)
LAST_ADMIN_WORDS = (
    "This is the desk's last active admin (another admin may have just changed theirs): make "
    "someone else an admin first. Nothing was changed."
)
NOT_YOURSELF_DEACTIVATE = (
    "You cannot deactivate yourself: the desk would lose an admin. Another admin can (make "
    "someone an admin first if you are the last)."
)
ADMINS_ONLY = error_pages.Trouble(
    "Staff administration is for admins",
    "Adding staff, changing their roles and departments and issuing their sign-in tokens is "
    "done by the desk's admins. Ask one if someone's access needs to change.",
)
FORM_ELSEWHERE = error_pages.Trouble(
    "This form came from another site",
    "Nothing was changed. Open the staff page in the desk console and make the change there.",
)
FORM_EXPIRED = error_pages.Trouble(
    "This form has expired",
    "Nothing was changed: the form was opened before you last signed in. Open the staff page "
    "again and repeat the change.",
)
STAFF_NOT_FOUND = error_pages.Trouble(
    "No such staff member",
    "Nobody on the desk's staff has this id. The link may be wrong or out of date.",
)


@dataclass
class Admin:
    """The signed-in admin a page is for, and the token their forms carry."""

    actor: Actor
    name: str
    form_token: str


@dataclass
class FormState:
    """A form as it was filled in, and what the rules said about it (field: words)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def first_error(self) -> str | None:
        """The field focus goes to: the first with an error, in the form's order."""
        return next(iter(self.errors), None)


def form_token(cookie: str, secret: Any) -> str:
    """The token a staff-page form carries: an HMAC of the session cookie (which the page's
    script cannot read and another site cannot send), so a form is good for one session."""
    key = (secret_value(secret) or "").encode()
    return hmac.new(key, f"staff-form|{cookie}".encode(), hashlib.sha256).hexdigest()


async def _admin(
    request: Request, res: Resources, session: AsyncSession, *, form: FormData | None = None
) -> Admin | Response:
    """`signed_in_admin` for the staff page."""
    return await signed_in_admin(request, res, session, form=form)


async def signed_in_admin(
    request: Request,
    res: Resources,
    session: AsyncSession,
    *,
    form: FormData | None = None,
    refused: error_pages.Trouble = ADMINS_ONLY,
    role: str = "admin",
) -> Admin | Response:
    """The signed-in admin (or, given `role`, someone of at least that role), or the answer for
    everyone else: signed out, the sign-in page; below the role, the console's 403 page
    (`refused` says why); a form posted from another site or without this session's token, a
    403 page saying nothing was changed."""
    if form is not None and cross_site(request):
        return pages.error_page(request, FORM_ELSEWHERE, 403)
    cookie = session_cookie(request, res) or ""
    actor = await cookie_actor(request, res, session)
    if actor is None:
        return RedirectResponse("/dashboard", status_code=303)
    if not has_role(actor, role):
        return pages.error_page(request, refused, 403)
    token = form_token(cookie, res.settings.session_secret)
    if form is not None:
        sent = form.get(FORM_TOKEN_FIELD)
        if not isinstance(sent, str) or not hmac.compare_digest(sent, token):
            return pages.error_page(request, FORM_EXPIRED, 403)
    names = await staff_service.staff_names(session, [actor.id])
    return Admin(actor=actor, name=names.get(actor.id, actor.id), form_token=token)


async def _form(request: Request) -> FormData:
    """The posted form (small: a few short fields; no files)."""
    return await request.form(max_files=0, max_fields=200)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _departments(form: FormData) -> list[str]:
    return [d for d in form.getlist("departments") if isinstance(d, str)]


def _field_errors(exc: ValidationError, values: Mapping[str, Any]) -> dict[str, str]:
    """A model's refusal as words next to each field."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in errors:
            continue
        if not values.get(name) and name in MISSING_WORDS:
            errors[name] = MISSING_WORDS[name]
        else:
            errors[name] = FIELD_WORDS.get(name, "Check this field.")
    return errors


def _department_error(departments: Iterable[str], known: Mapping[str, Any]) -> str | None:
    unknown = sorted({d for d in departments if d not in known})
    if not unknown:
        return None
    return f"The desk has no department {', '.join(unknown)}: choose from the list."


def _ordered(errors: dict[str, str]) -> dict[str, str]:
    """Errors in the form's order (focus goes to the first)."""
    order = ("id", "name", "email", "campus", "role", "departments", "label", "form")
    return {
        k: errors[k] for k in sorted(errors, key=lambda k: order.index(k) if k in order else 99)
    }


def _department_options(res: Resources) -> list[tuple[str, str]]:
    return [(d, dep.name) for d, dep in res.book.departments().items()]


def _base_context(admin: Admin, res: Resources) -> dict[str, Any]:
    return {
        "actor": admin.actor,
        "actor_name": admin.name,
        "form_token": admin.form_token,
        "form_token_field": FORM_TOKEN_FIELD,
        "roles": [(r, ROLE_WORDS[r], ROLE_HINTS[r]) for r in ROLES],
        "role_words": ROLE_WORDS,
        "department_options": _department_options(res),
    }


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return pages.templates().TemplateResponse(request, f"staff/{name}", context, status_code=status)


# ---------------------------------------------------------------------------------------- list


async def _roster(res: Resources, session: AsyncSession) -> list[dict[str, Any]]:
    """Every staff member as the list shows them."""
    now = res.clock()
    statuses = {s.id: p for s, p in await presence.current(session=session)}
    tokens = await staff_service.token_counts(session=session)
    signed_in = await staff_service.last_sign_ins(session=session)
    rows: list[dict[str, Any]] = []
    for row in await staff_service.list_staff(session=session):
        status = statuses.get(row.id)
        shown = status.status if status is not None and row.active else "Offline"
        last = signed_in.get(row.id)
        rows.append(
            {
                "id": row.id,
                "name": row.name,
                "email": row.email,
                "role": row.role,
                "role_word": ROLE_WORDS.get(row.role, row.role),
                "departments": [res.book.department_name(d) for d in row.departments],
                "active": row.active,
                "status": shown,
                "since": views.desk_time(status.since, now) if status and row.active else "",
                "tokens": tokens.get(row.id, 0),
                "last_sign_in": views.desk_time(last, now) if last else "",
                "last_sign_in_full": views.full_time(last) if last else "",
            }
        )
    rows.sort(key=lambda r: (not r["active"], r["name"].lower(), r["id"]))
    return rows


DONE_WORDS = {
    "added": "Added {name}. Issue a token below so they can sign in.",
    "changed": "Saved the changes to {name}.",
    "unchanged": "Nothing to save: {name}'s record already says that.",
    "deactivated": "Deactivated {name}: signed out everywhere, every token revoked, set Offline.",
    "reactivated": "Reactivated {name}. Their old tokens stay revoked: issue a new one.",
    "revoked": "Token revoked: {name} can no longer sign in with “{label}”.",
}


@router.api_route(
    "", methods=["GET", "HEAD"], response_class=HTMLResponse, summary="Staff page (admins)"
)
async def staff_list(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """Every staff member and the form that adds one."""
    admin = await _admin(request, res, session)
    if isinstance(admin, Response):
        return admin
    return await _list_page(request, res, session, admin, FormState(values={"role": "staff"}))


async def _list_page(
    request: Request,
    res: Resources,
    session: AsyncSession,
    admin: Admin,
    add: FormState,
    status: int = 200,
) -> Response:
    staff = await _roster(res, session)
    context = {
        **_base_context(admin, res),
        "staff": staff,
        "active_count": sum(1 for s in staff if s["active"]),
        "add": add,
    }
    return _render(request, "list.html", context, status)


@router.post("", response_class=HTMLResponse, summary="Staff page: add a staff member")
async def add_staff(request: Request, res: ResourcesDep, session: SessionDep) -> Response:
    """Add a staff member; the list again, with the reasons, when the rules refuse it."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    values: dict[str, Any] = {
        "id": _text(form, "id"),
        "name": _text(form, "name"),
        "email": _text(form, "email"),
        "campus": _text(form, "campus") or None,
        "role": _text(form, "role") or "staff",
        "departments": _departments(form),
    }
    state = FormState(values=values)
    known = res.book.departments()
    try:
        data = StaffIn.model_validate(values)
    except ValidationError as exc:
        state.errors = _field_errors(exc, values)
    problem = _department_error(values["departments"], known)
    if problem:
        state.errors.setdefault("departments", problem)
    if not state.errors:
        now = res.clock()
        try:
            row = await staff_service.create_staff(session=session, data=data, now=now)
        except Conflict:
            state.errors["id"] = (
                f"A staff member with the id {values['id']} exists already: choose another id, "
                "or open their record in the list to change it."
            )
        else:
            await log_admin_action(
                session, actor_id=admin.actor.id, action="staff-add", staff_id=row.id, at=now
            )
            await session.commit()
            return _done(row.id, "added")
    state.errors = _ordered(state.errors)
    return await _list_page(request, res, session, admin, state, status=422)


def _done(staff_id: str, what: str, **more: str | int) -> Response:
    query = "&".join(f"{k}={v}" for k, v in {"done": what, **more}.items())
    return RedirectResponse(f"/dashboard/staff/{staff_id}?{query}", status_code=303)


# ---------------------------------------------------------------------------------- one member


def record_version(row: Staff) -> str:
    """What the record form was filled from, as a short digest: a form sent back carries it, so
    a change another admin saved meanwhile is not silently undone by an older form."""
    seen = [row.name, row.email, row.campus or "", row.role, sorted(row.departments), row.active]
    return hashlib.sha256(repr(seen).encode()).hexdigest()[:16]


async def _member_page(
    request: Request,
    res: Resources,
    session: AsyncSession,
    admin: Admin,
    staff_id: str,
    *,
    edit: FormState | None = None,
    issue: FormState | None = None,
    issued: dict[str, Any] | None = None,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    """One staff member: their record as a form, their tokens, and what was just done."""
    try:
        row = await staff_service.get_staff(session=session, staff_id=staff_id)
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    now = res.clock()
    tokens = await staff_service.list_tokens(session=session, staff_id=staff_id)
    issuers = await staff_service.token_issuers(session=session, staff_id=staff_id, tokens=tokens)
    issuer_names = await staff_service.staff_names(session, issuers.values())
    me = await presence.status_of(session=session, staff_id=staff_id)
    signed_in = (await staff_service.last_sign_ins(session=session)).get(staff_id)
    if edit is None:
        edit = FormState(
            values={
                "name": row.name,
                "email": row.email,
                "campus": row.campus or "",
                "role": row.role,
                "departments": list(row.departments),
            }
        )
    known = res.book.departments()
    context = {
        **_base_context(admin, res),
        "member": {
            "id": row.id,
            "name": row.name,
            "role_word": ROLE_WORDS.get(row.role, row.role),
            "active": row.active,
            "status": me["status"] if row.active else "Offline",
            "since": views.desk_time(me["since"], now) if me["since"] and row.active else "",
            "created": views.desk_time(row.created_at, now),
            "created_full": views.full_time(row.created_at),
            "last_sign_in": views.desk_time(signed_in, now) if signed_in else "",
            "last_sign_in_full": views.full_time(signed_in) if signed_in else "",
            # a department the directory no longer has stays checked, under its id
            "unknown_departments": [d for d in row.departments if d not in known],
        },
        "is_me": row.id == admin.actor.id,
        "tokens": [
            {
                "id": t.id,
                "label": t.label,
                "issued": views.desk_time(t.created_at, now),
                "issued_full": views.full_time(t.created_at),
                "issued_by": _issuer(issuers.get(t.id), staff_id, issuer_names),
                "revoked": views.desk_time(t.revoked_at, now) if t.revoked_at else "",
                "revoked_full": views.full_time(t.revoked_at) if t.revoked_at else "",
                "used": views.desk_time(t.last_used_at, now) if t.last_used_at else "",
                "used_full": views.full_time(t.last_used_at) if t.last_used_at else "",
            }
            for t in reversed(tokens)
        ],
        "live_tokens": sum(1 for t in tokens if t.revoked_at is None),
        "edit": edit,
        "seen": record_version(row),
        "issue": issue or FormState(values={"label": ""}),
        # a fresh one-time key each time the form is shown: the same form sent again (a
        # reload of the answer that showed the token) issues nothing new
        "issue_key": secrets.token_urlsafe(18),
        "issued": issued,
        "notice": notice,
        "problem": problem,
    }
    return _render(request, "member.html", context, status)


async def _done_words(request: Request, session: AsyncSession, staff_id: str) -> str | None:
    """What the redirect after a change asked the page to say ("Added Maria Garcia")."""
    what = request.query_params.get("done", "")
    if what not in DONE_WORDS:
        return None
    names = await staff_service.staff_names(session, [staff_id])
    label = ""
    token_id = request.query_params.get("token", "")
    if what == "revoked" and _token_number(token_id) is not None:
        with contextlib.suppress(NotFound):
            for token in await staff_service.list_tokens(session=session, staff_id=staff_id):
                if token.id == _token_number(token_id):
                    label = token.label
    return DONE_WORDS[what].format(name=names.get(staff_id, staff_id), label=label or "it")


@router.api_route(
    "/{staff_id}",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    summary="Staff page: one member",
)
async def member(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """One staff member's record, tokens and actions."""
    admin = await _admin(request, res, session)
    if isinstance(admin, Response):
        return admin
    notice = await _done_words(request, session, staff_id)
    return await _member_page(request, res, session, admin, staff_id, notice=notice)


@router.post("/{staff_id}", response_class=HTMLResponse, summary="Staff page: change a member")
async def change_member(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Save name, email, campus, role and departments (only what changed)."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    try:
        row = await staff_service.get_staff(session=session, staff_id=staff_id, lock=True)
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    values: dict[str, Any] = {
        "name": _text(form, "name"),
        "email": _text(form, "email"),
        "campus": _text(form, "campus") or None,
        "role": _text(form, "role"),
        "departments": _departments(form),
    }
    state = FormState(values={**values, "campus": values["campus"] or ""})
    current: dict[str, Any] = {
        "name": row.name,
        "email": row.email,
        "campus": row.campus,
        "role": row.role,
        "departments": list(row.departments),
    }
    if _text(form, "seen") != record_version(row):
        # another admin saved this record after this form was filled: nothing is saved, and
        # the form comes back with what was typed, over the record as it is now
        return await _member_page(
            request,
            res,
            session,
            admin,
            staff_id,
            edit=state,
            problem=CHANGED_MEANWHILE,
            status=409,
        )
    changed = {k: v for k, v in values.items() if v != current[k]}
    if set(values["departments"]) == set(current["departments"]):
        changed.pop("departments", None)
    try:
        patch = StaffPatch.model_validate(changed)
    except ValidationError as exc:
        state.errors = _field_errors(exc, values)
    # a department the directory has since dropped may stay; none may be added
    added = set(changed.get("departments", ())) - set(current["departments"])
    problem = _department_error(added, res.book.departments())
    if problem:
        state.errors.setdefault("departments", problem)
    if not state.errors:
        try:
            staff_service.check_not_yourself(
                actor_id=admin.actor.id, staff_id=staff_id, patch=patch
            )
        except Conflict:
            state.errors["role"] = NOT_YOURSELF_ROLE
    if state.errors:
        state.errors = _ordered(state.errors)
        status = (
            409 if "role" in state.errors and state.errors["role"] == NOT_YOURSELF_ROLE else 422
        )
        return await _member_page(request, res, session, admin, staff_id, edit=state, status=status)
    if not changed:
        return _done(staff_id, "unchanged")
    try:
        row = await staff_service.update_staff(session=session, staff_id=staff_id, patch=patch)
    except Conflict:  # the last active admin
        await session.rollback()
        state.errors["role"] = LAST_ADMIN_WORDS
        return await _member_page(request, res, session, admin, staff_id, edit=state, status=409)
    await log_admin_action(
        session,
        actor_id=admin.actor.id,
        action="staff-change",
        staff_id=staff_id,
        at=res.clock(),
        fields=changed,
    )
    event = await presence.after_staff_change(session=session, staff=row, changed=changed)
    await session.commit()
    if event is not None:
        with contextlib.suppress(Unavailable):  # the next sweep republishes presence
            await publish_presence(res, [event])
    return _done(staff_id, "changed")


def _issuer(actor: str | None, staff_id: str, names: dict[str, str]) -> str:
    """Who issued a token, in words ("" when the log no longer says)."""
    if actor is None:
        return ""
    if actor == staff_id:
        return "themselves"
    if actor == "refdesk-cli":
        return "an operator (refdesk staff)"
    return names.get(actor, actor)


@router.api_route(
    "/{staff_id}/deactivate",
    methods=["GET", "HEAD"],
    response_class=HTMLResponse,
    summary="Staff page: confirm",
)
async def confirm_deactivate(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """The confirm step before a deactivation: what it does, and the button that does it."""
    admin = await _admin(request, res, session)
    if isinstance(admin, Response):
        return admin
    try:
        row = await staff_service.get_staff(session=session, staff_id=staff_id)
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    tokens = await staff_service.list_tokens(session=session, staff_id=staff_id)
    me = await presence.status_of(session=session, staff_id=staff_id)
    is_me = row.id == admin.actor.id
    context = {
        **_base_context(admin, res),
        "member": {"id": row.id, "name": row.name, "active": row.active, "status": me["status"]},
        "live_tokens": sum(1 for t in tokens if t.revoked_at is None),
        "held": await session.scalar(
            select(func.count()).where(
                Conversation.assignee == staff_id, Conversation.state == "open"
            )
        ),
        # said apart: a live crisis back in the queue with nobody on it is the admin's to hand
        # over now (an outside review saw one return unassigned, with no word of it)
        "held_crises": await session.scalar(
            select(func.count()).where(
                Conversation.assignee == staff_id,
                Conversation.state == "open",
                Conversation.crisis.is_(True),
            )
        ),
        "is_me": is_me,
        "problem": NOT_YOURSELF_DEACTIVATE if is_me else None,
    }
    return _render(request, "deactivate.html", context, 409 if is_me else 200)


@router.post(
    "/{staff_id}/deactivate", response_class=HTMLResponse, summary="Staff page: deactivate"
)
async def deactivate(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Deactivate a staff member: signed out, tokens revoked, Offline (never oneself)."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    now = res.clock()
    try:
        if not (await staff_service.get_staff(session=session, staff_id=staff_id)).active:
            # deactivated already: nothing to log again, but anything still held goes back
            await give_back_all(res, session, admin.actor, staff_id)
            return _done(staff_id, "unchanged")
        _, event = await staff_service.deactivate_staff(
            session=session, staff_id=staff_id, actor_id=admin.actor.id, now=now
        )
    except staff_service.NotYourself:
        return await _member_page(
            request, res, session, admin, staff_id, problem=NOT_YOURSELF_DEACTIVATE, status=409
        )
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    except Conflict:  # the last active admin
        await session.rollback()
        return await _member_page(
            request, res, session, admin, staff_id, problem=LAST_ADMIN_WORDS, status=409
        )
    await log_admin_action(
        session, actor_id=admin.actor.id, action="staff-deactivate", staff_id=staff_id, at=now
    )
    await session.commit()
    await give_back_all(res, session, admin.actor, staff_id)
    if event is not None:
        with contextlib.suppress(Unavailable):  # the next sweep republishes presence
            await publish_presence(res, [event])
    return _done(staff_id, "deactivated")


@router.post(
    "/{staff_id}/reactivate", response_class=HTMLResponse, summary="Staff page: reactivate"
)
async def reactivate(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Let a deactivated staff member back in (with a new token: their old ones stay
    revoked)."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    try:
        row = await staff_service.get_staff(session=session, staff_id=staff_id)
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    if row.active:
        return _done(staff_id, "unchanged")
    await staff_service.update_staff(
        session=session, staff_id=staff_id, patch=StaffPatch(active=True)
    )
    await log_admin_action(
        session,
        actor_id=admin.actor.id,
        action="staff-reactivate",
        staff_id=staff_id,
        at=res.clock(),
    )
    await session.commit()
    return _done(staff_id, "reactivated")


@router.post("/{staff_id}/tokens", response_class=HTMLResponse, summary="Staff page: issue")
async def issue_token(
    staff_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Issue a bearer token: this answer is the only place its secret is ever shown (it is
    not redirected to, logged or kept: only its hash is stored)."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    label = _text(form, "label")
    state = FormState(values={"label": label})
    if not label:
        state.errors["label"] = MISSING_WORDS["label"]
    elif len(label) > 64:
        state.errors["label"] = FIELD_WORDS["label"]
    elif label.startswith(SESSION_LABEL):
        state.errors["label"] = f"A label may not start with “{SESSION_LABEL}”: choose another."
    if state.errors:
        return await _member_page(request, res, session, admin, staff_id, issue=state, status=422)
    now = res.clock()
    key = _text(form, "issue_key")
    try:
        token_id, token = await staff_service.issue_token(
            session=session,
            staff_id=staff_id,
            now=now,
            label=label,
            issue_key=key if ISSUE_KEY.fullmatch(key) else None,
        )
    except NotFound:
        return pages.error_page(request, STAFF_NOT_FOUND, 404)
    except AlreadyIssued as earlier:
        problem = (
            f"This form already issued the token “{earlier.label}”, and its secret was shown "
            "once, on the page that answered it. Nothing new was issued. If it was not "
            "copied, revoke it below and issue another."
        )
        return await _member_page(
            request, res, session, admin, staff_id, problem=problem, status=409
        )
    except Conflict:
        problem = "This staff member is deactivated: reactivate them before issuing a token."
        return await _member_page(
            request, res, session, admin, staff_id, problem=problem, status=409
        )
    except InvalidInput:  # a form of another member's page, sent to this one's address
        problem = "That form was another staff member's. Nothing was issued: try again here."
        return await _member_page(
            request, res, session, admin, staff_id, problem=problem, status=422
        )
    await log_admin_action(
        session,
        actor_id=admin.actor.id,
        action="token-issue",
        staff_id=staff_id,
        at=now,
        token_id=token_id,
    )
    await session.commit()
    issued = {"id": token_id, "label": label, "token": token}
    return await _member_page(request, res, session, admin, staff_id, issued=issued)


@router.post(
    "/{staff_id}/tokens/{token_id}/revoke",
    response_class=HTMLResponse,
    summary="Staff page: revoke a token",
)
async def revoke_token(
    staff_id: str, token_id: str, request: Request, res: ResourcesDep, session: SessionDep
) -> Response:
    """Revoke one token, and with it the console sessions signed in with it."""
    form = await _form(request)
    admin = await _admin(request, res, session, form=form)
    if isinstance(admin, Response):
        return admin
    number = _token_number(token_id)
    now = res.clock()
    try:
        if number is None:
            raise NotFound("no such token")
        _, event = await staff_service.revoke_token(
            session=session, staff_id=staff_id, token_id=number, now=now, actor_id=admin.actor.id
        )
    except NotFound:
        return await _member_or_missing(request, res, session, admin, staff_id)
    except Conflict:
        return await _member_page(
            request, res, session, admin, staff_id, problem=ONES_LAST_KEY_WORDS, status=409
        )
    await log_admin_action(
        session,
        actor_id=admin.actor.id,
        action="token-revoke",
        staff_id=staff_id,
        at=res.clock(),
        token_id=number,
    )
    await session.commit()
    if event is not None:
        with contextlib.suppress(Unavailable):  # the next sweep republishes presence
            await publish_presence(res, [event])
    return _done(staff_id, "revoked", token=number)


def _token_number(text: str) -> int | None:
    """A token id as the page's addresses carry it (ASCII digits, within the column's range:
    "²" and a 25-digit number had answered 500), else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= staff_service.MAX_TOKEN_ID else None


async def _member_or_missing(
    request: Request, res: Resources, session: AsyncSession, admin: Admin, staff_id: str
) -> Response:
    problem = "That token is not one of this staff member's: nothing was revoked."
    return await _member_page(request, res, session, admin, staff_id, problem=problem, status=404)
