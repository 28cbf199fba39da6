"""Who is asking and what they may do: hashed bearer tokens, signed session cookies, roles.

Rules: staff change only their own status; supervisors change anyone's and see Who's Online;
admins manage staff (and may do what supervisors do).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.errors import Forbidden, Unauthenticated
from services.status.models import Staff, StaffToken
from shared.settings import secret_value

ROLES = ("staff", "supervisor", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
COOKIE = "refdesk_status_session"
"""The console's session cookie over plain HTTP (development)."""
HOST_COOKIE = "__Host-refdesk_status_session"
"""The same cookie when it is Secure (production): with the `__Host-` prefix a browser keeps it
only as set by this very host over HTTPS, with Path=/ and no Domain, so neither another host of
the college's domain nor a plain-HTTP page can plant or overwrite a librarian's session."""


def cookie_name(secure: bool) -> str:
    """The session cookie's name: HOST_COOKIE when it is Secure, else COOKIE."""
    return HOST_COOKIE if secure else COOKIE


SESSION_LABEL = "session:"
"""staff_tokens rows so labelled are dashboard sessions (sessions.py), not bearer tokens."""


@dataclass(frozen=True)
class Actor:
    """An authenticated staff member."""

    id: str
    role: str
    departments: tuple[str, ...] = ()
    via_cookie: bool = False
    token_id: int | None = None
    """The bearer token of the request, or the one its console session was opened with."""


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256, hex); tokens are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random bearer token."""
    return secrets.token_urlsafe(32)


def has_role(actor: Actor, role: str) -> bool:
    """Whether the actor's role is at least `role`."""
    return RANK.get(actor.role, -1) >= RANK[role]


def require_role(actor: Actor, role: str) -> None:
    """Forbidden unless the actor's role is at least `role`."""
    if not has_role(actor, role):
        raise Forbidden(f"needs role {role}")


def can_set_status(actor: Actor, staff_id: str) -> bool:
    """Staff set only their own status; supervisors and admins anyone's."""
    return actor.id == staff_id or has_role(actor, "supervisor")


def sign_session(
    staff_id: str,
    *,
    secret: SecretStr | str,
    now: datetime,
    max_age_s: int,
    session_id: str = "",
) -> str:
    """A cookie value naming the staff member and their server-side session (sessions.py)
    until now + max_age_s, HMAC-signed."""
    expires = int(now.timestamp()) + max_age_s
    payload = base64.urlsafe_b64encode(f"{staff_id}|{expires}|{session_id}".encode()).decode()
    return f"{payload}.{_mac(payload, secret)}"


def session_claims(
    value: str | None, *, secret: SecretStr | str, now: datetime
) -> tuple[str, str] | None:
    """(staff id, session id) of a validly signed, unexpired cookie; None otherwise. Whether
    the session is still open is sessions.session_actor's question."""
    if not value or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        return None
    try:
        staff_id, expires, session_id = (
            base64.urlsafe_b64decode(payload.encode()).decode().rsplit("|", 2)
        )
        if int(expires) < now.timestamp():
            return None
    except ValueError:
        return None
    return staff_id, session_id


def read_session(value: str | None, *, secret: SecretStr | str, now: datetime) -> str | None:
    """The staff id a validly signed, unexpired cookie names; None otherwise (signature and
    expiry only: use sessions.session_actor, which also checks the session is still open)."""
    claims = session_claims(value, secret=secret, now=now)
    return None if claims is None else claims[0]


def _mac(payload: str, secret: SecretStr | str) -> str:
    key = secret_value(secret) or ""
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


ACTOR_COLUMNS = (Staff.id, Staff.role, Staff.departments, Staff.active)

ACTOR_BY_LIVE_TOKEN = (
    select(*ACTOR_COLUMNS)
    .join(StaffToken, StaffToken.staff_id == Staff.id)
    .where(StaffToken.revoked_at.is_(None))
)
"""The staff member (ACTOR_COLUMNS) holding an unrevoked token; callers narrow it to one."""

# Built once: every request with a bearer token runs it.
_BY_TOKEN = ACTOR_BY_LIVE_TOKEN.add_columns(StaffToken.id.label("token_id")).where(
    StaffToken.token_hash == bindparam("token_hash"),
    StaffToken.label.not_like(f"{SESSION_LABEL}%"),  # a session is not a bearer token
)


def actor_of(
    row: Row[Any] | Row[str, str, list[str], bool] | None,
    *,
    via_cookie: bool = False,
    token_id: int | None = None,
) -> Actor:
    """The Actor of an ACTOR_COLUMNS row; Unauthenticated if there is none or it is inactive."""
    if row is None or not row.active:
        raise Unauthenticated(
            "unknown or revoked token" if not via_cookie else "session no longer valid"
        )
    return Actor(
        id=row.id,
        role=row.role,
        departments=tuple(row.departments),
        via_cookie=via_cookie,
        token_id=token_id,
    )


async def actor_for_token(*, session: AsyncSession, token: str) -> Actor:
    """The active staff member owning an unrevoked token; Unauthenticated otherwise."""
    found = (await session.execute(_BY_TOKEN, {"token_hash": hash_token(token)})).one_or_none()
    return actor_of(found, token_id=None if found is None else found.token_id)
