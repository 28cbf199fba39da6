"""Dashboard sessions kept server-side, so signing out, revoking the token one signed in with,
or deactivating the staff member ends them at once (a signed cookie alone stays valid until
it expires, whatever happens).

A session is a staff_tokens row labelled "session:<id of the token used to sign in>" holding
the hash of a random session id; the signed cookie carries the id. A cookie is honoured while
its signature and expiry hold, its row and its sign-in token are unrevoked and the staff member
is active.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import (
    ACTOR_BY_LIVE_TOKEN,
    SESSION_LABEL,
    Actor,
    actor_of,
    hash_token,
    new_token,
    session_claims,
    sign_session,
)
from services.status.errors import Unauthenticated
from services.status.models import Staff, StaffToken


async def open_session(
    *,
    session: AsyncSession,
    staff_id: str,
    token: str,
    secret: SecretStr | str,
    now: datetime,
    max_age_s: int,
) -> str:
    """Record a session for a staff member who signed in with `token`; the cookie value."""
    parent = (
        await session.execute(
            select(StaffToken.id).where(StaffToken.token_hash == hash_token(token))
        )
    ).scalar_one()
    # this staff member's expired sessions go as a new one opens (the table does not grow)
    await session.execute(
        delete(StaffToken).where(
            StaffToken.staff_id == staff_id,
            StaffToken.label.like(f"{SESSION_LABEL}%"),
            StaffToken.created_at < now - timedelta(seconds=max_age_s),
        )
    )
    session_id = new_token()
    session.add(
        StaffToken(
            staff_id=staff_id,
            token_hash=hash_token(session_id),
            label=f"{SESSION_LABEL}{parent}",
            created_at=now,
        )
    )
    await session.flush()
    return sign_session(
        staff_id, secret=secret, now=now, max_age_s=max_age_s, session_id=session_id
    )


async def _open_row(
    *, session: AsyncSession, cookie: str | None, secret: SecretStr | str, now: datetime
) -> StaffToken | None:
    claims = session_claims(cookie, secret=secret, now=now)
    if claims is None or not claims[1]:
        return None
    staff_id, session_id = claims
    row = (
        await session.execute(
            select(StaffToken).where(
                StaffToken.token_hash == hash_token(session_id),
                StaffToken.staff_id == staff_id,
                StaffToken.label.like(f"{SESSION_LABEL}%"),
                StaffToken.revoked_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    parent_id = row.label.removeprefix(SESSION_LABEL)
    parent = await session.get(StaffToken, int(parent_id)) if parent_id.isdigit() else None
    if parent is None or parent.revoked_at is not None:
        return None
    return row


_SESSION_LABEL_OF = select(StaffToken.label).where(
    StaffToken.token_hash == bindparam("token_hash"),
    StaffToken.staff_id == bindparam("staff_id"),
    StaffToken.label.like(f"{SESSION_LABEL}%"),
    StaffToken.revoked_at.is_(None),
)
_SIGNED_IN_WITH = ACTOR_BY_LIVE_TOKEN.where(
    StaffToken.id == bindparam("parent_id"), Staff.id == bindparam("staff_id")
)


async def session_actor(
    *, session: AsyncSession, cookie: str | None, secret: SecretStr | str, now: datetime
) -> Actor | None:
    """The staff member of a session cookie while the session is open; None otherwise (every
    request signed in with a cookie asks: two indexed lookups, prebuilt)."""
    claims = session_claims(cookie, secret=secret, now=now)
    if claims is None or not claims[1]:
        return None
    staff_id, session_id = claims
    label = (
        await session.execute(
            _SESSION_LABEL_OF, {"token_hash": hash_token(session_id), "staff_id": staff_id}
        )
    ).scalar_one_or_none()
    parent_id = label.removeprefix(SESSION_LABEL) if label else ""
    if not parent_id.isdigit():
        return None
    found = await session.execute(
        _SIGNED_IN_WITH, {"parent_id": int(parent_id), "staff_id": staff_id}
    )
    try:
        return actor_of(found.one_or_none(), via_cookie=True, token_id=int(parent_id))
    except Unauthenticated:
        return None


async def close_session(
    *, session: AsyncSession, cookie: str | None, secret: SecretStr | str, now: datetime
) -> str | None:
    """End the session a cookie names (signing out): whose it was, or None if it was not
    open."""
    row = await _open_row(session=session, cookie=cookie, secret=secret, now=now)
    if row is None:
        return None
    row.revoked_at = now
    await session.flush()
    return row.staff_id


async def open_sessions(
    *, session: AsyncSession, staff_id: str, now: datetime, max_age_s: int
) -> int:
    """How many dashboard sessions of this staff member are open (another browser, another
    desk)."""
    found = await session.execute(
        select(func.count()).where(
            StaffToken.staff_id == staff_id,
            StaffToken.label.like(f"{SESSION_LABEL}%"),
            StaffToken.revoked_at.is_(None),
            StaffToken.created_at >= now - timedelta(seconds=max_age_s),
        )
    )
    return int(found.scalar_one())
