"""Staff records: seed loading and the admin operations (create, update, deactivate, tokens)."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import ROLES, SESSION_LABEL, hash_token, new_token
from services.status.errors import Conflict, InvalidInput, NotFound
from services.status.models import Staff, StaffToken, TranscriptAccess
from services.status.presence import set_status
from services.status.settings import SEED_FILE_VARIABLE
from shared.events import PresenceChanged, StaffStatus
from shared.text import Text

ROLE_PATTERN = "^(" + "|".join(ROLES) + ")$"
ID_PATTERN = "^[a-z0-9][a-z0-9._-]{1,63}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


async def staff_names(
    session: AsyncSession, ids: Iterable[str | None] | None = None
) -> dict[str, str]:
    """Staff ids to display names, for authors and assignees: every staff member's, or only
    these."""
    query = select(Staff.id, Staff.name)
    if ids is not None:
        wanted = sorted({staff_id for staff_id in ids if staff_id})
        if not wanted:
            return {}
        query = query.where(Staff.id.in_(wanted))
    rows = await session.execute(query)
    return {row[0]: row[1] for row in rows.all()}


class StaffIn(BaseModel):
    """A staff member as an admin (or the seed file) describes them."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    name: Text = Field(min_length=1, max_length=200)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    departments: list[str] = Field(default_factory=list)
    campus: Text | None = Field(None, max_length=32)
    role: str = Field("staff", pattern=ROLE_PATTERN)

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        return visible_name(name)


class StaffPatch(BaseModel):
    """Fields an admin may change."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=200)
    email: str | None = Field(None, pattern=EMAIL_PATTERN, max_length=320)
    departments: list[str] | None = None
    campus: Text | None = Field(None, max_length=32, description="null clears it")
    role: str | None = Field(None, pattern=ROLE_PATTERN)
    active: bool | None = None

    @field_validator("name", "email", "departments", "role", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Left out, a field is not changed; given as null it was stored (a null department
        list broke every console page)."""
        if value is None:
            raise ValueError("may not be null: leave the field out to keep it")
        return value

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str | None) -> str | None:
        return None if name is None else visible_name(name)


_INVISIBLE = dict.fromkeys(
    (0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x061C, 0x2060, 0xFEFF, 0x00AD, 0x034F)
)


def visible_name(name: str) -> str:
    """A name as staff see it: trimmed, and with something visible in it (zero-width
    characters alone made an empty link on the staff page); ValueError otherwise."""
    name = " ".join(name.split())
    shown = name.translate(_INVISIBLE)
    if not any(not unicodedata.combining(c) and not c.isspace() for c in shown):
        raise ValueError("must have a visible character")  # marks or accents alone show none
    return name


class SeedEntry(StaffIn):
    dev_token: str | None = None


class RosterError(Exception):
    """The roster file named by REFDESK_STATUS_SEED_FILE cannot be loaded: the service does not
    start."""


def read_seed(path: Path) -> list[SeedEntry]:
    """Parse and validate a seed YAML file (`staff: [...]`)."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return [SeedEntry.model_validate(item) for item in doc.get("staff", [])]


def read_roster(path: Path, *, departments: Collection[str]) -> list[SeedEntry]:
    """The roster file the status service loads at start; RosterError, naming the variable,
    if it is missing, is not a valid roster or names a department the desk does not know."""
    if not path.is_file():
        raise RosterError(f"{SEED_FILE_VARIABLE}: no such file: {path}")
    try:
        entries = read_seed(path)
        for entry in entries:
            check_departments(entry.departments, known=departments)
    except (OSError, yaml.YAMLError, ValidationError, AttributeError, InvalidInput) as exc:
        raise RosterError(f"{SEED_FILE_VARIABLE}: {path} is not a valid roster: {exc}") from None
    return entries


ADMIN_ACTIONS = (
    "staff-add",
    "staff-change",
    "staff-deactivate",
    "staff-reactivate",
    "token-issue",
    "token-revoke",
)
"""What the access log calls each staff administration action (its `action` column)."""


async def log_admin_action(
    session: AsyncSession,
    *,
    actor_id: str,
    action: str,
    staff_id: str,
    at: datetime,
    fields: Iterable[str] = (),
    token_id: int | None = None,
) -> None:
    """One line of the access log for a staff administration action, in the caller's
    transaction: who, when, which action, whose record, which fields changed or which token
    (never a token, a field's value, or anything about patrons)."""
    if action not in ADMIN_ACTIONS:
        raise ValueError(f"not a staff administration action: {action}")
    detail = staff_id
    if token_id is not None:
        detail += f" token {token_id}"
    changed = ", ".join(sorted(fields))
    if changed:
        detail += f": {changed}"
    values = {"staff_id": actor_id, "action": action, "at": at, "detail": detail[:300]}
    await session.execute(insert(TranscriptAccess), values)


def check_departments(departments: Iterable[str] | None, *, known: Collection[str]) -> None:
    """InvalidInput unless every department is one the desk hands off to (macros.yaml)."""
    unknown = sorted({d for d in departments or () if d not in known})
    if unknown:
        raise InvalidInput(f"departments: unknown {', '.join(unknown)}; known: {', '.join(known)}")


async def seed_staff(
    *, session: AsyncSession, entries: list[SeedEntry], with_tokens: bool, now: datetime
) -> int:
    """Insert seed staff who do not exist yet (admins' later edits win); returns how many."""
    added = 0
    for entry in entries:
        if await session.get(Staff, entry.id) is None:
            session.add(_new_staff(entry, now))
            added += 1
        if with_tokens and entry.dev_token:
            digest = hash_token(entry.dev_token)
            query = select(StaffToken.id).where(StaffToken.token_hash == digest)
            known = await session.execute(query)
            if known.first() is None:
                session.add(
                    StaffToken(staff_id=entry.id, token_hash=digest, label="seed", created_at=now)
                )
        await session.flush()
    return added


def _new_staff(data: StaffIn, now: datetime) -> Staff:
    return Staff(
        id=data.id,
        name=data.name,
        email=data.email,
        departments=data.departments,
        campus=data.campus,
        role=data.role,
        active=True,
        created_at=now,
    )


def staff_view(row: Staff) -> dict[str, Any]:
    """A staff record as the admin API shows it."""
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "departments": row.departments,
        "campus": row.campus,
        "role": row.role,
        "active": row.active,
    }


NOT_YOURSELF = (
    "you cannot deactivate yourself or give up your own admin role: ask another admin (make "
    "someone an admin first if you are the last)"
)


class NotYourself(Conflict):
    """An admin taking away their own admin rights (the last one would lock the desk's
    administration out; another admin, or `refdesk staff` on the database, may)."""

    def __init__(self) -> None:
        super().__init__(NOT_YOURSELF)


def check_not_yourself(*, actor_id: str, staff_id: str, patch: StaffPatch) -> None:
    """NotYourself if an admin's change would deactivate them or drop their admin role."""
    if staff_id == actor_id and (patch.active is False or patch.role not in (None, "admin")):
        raise NotYourself


async def create_staff(*, session: AsyncSession, data: StaffIn, now: datetime) -> Staff:
    """Add a staff member; Conflict if the id is taken."""
    if await session.get(Staff, data.id) is not None:
        raise Conflict("a staff member with this id exists")
    row = _new_staff(data, now)
    session.add(row)
    await session.flush()
    return row


async def get_staff(*, session: AsyncSession, staff_id: str, lock: bool = False) -> Staff:
    """A staff record (`lock`: held until the commit, so a second change waits and then reads
    the first one's result); NotFound otherwise."""
    row = await session.get(Staff, staff_id, with_for_update=lock, populate_existing=lock)
    if row is None:
        raise NotFound("no such staff member")
    return row


async def list_staff(*, session: AsyncSession) -> list[Staff]:
    """Every staff record, by id."""
    return list((await session.execute(select(Staff).order_by(Staff.id))).scalars())


LAST_ADMIN = "the desk must keep an active admin: make someone else an admin first"


async def update_staff(*, session: AsyncSession, staff_id: str, patch: StaffPatch) -> Staff:
    """Apply an admin's changes; Conflict if no active admin would be left (two admins
    demoting each other at once had left the desk with none)."""
    demoting = patch.active is False or patch.role not in (None, "admin")
    if demoting:  # held until the commit: the other demotion waits, then counts again
        await session.execute(_ADMINS.with_for_update())
    row = await get_staff(session=session, staff_id=staff_id)
    for key, value in patch.model_dump(exclude_unset=True).items():
        setattr(row, key, value)
    await session.flush()
    if demoting and not (await session.execute(_ADMINS)).first():
        raise Conflict(LAST_ADMIN)
    return row


_ADMINS = select(Staff.id).where(Staff.role == "admin", Staff.active.is_(True))


class AlreadyIssued(Exception):
    """The form that asks for a token was sent before: its token exists and was shown once."""

    def __init__(self, token_id: int, label: str) -> None:
        super().__init__(f"token {token_id} was already issued by this form")
        self.token_id, self.label = token_id, label


async def issue_token(
    *,
    session: AsyncSession,
    staff_id: str,
    now: datetime,
    label: str = "api",
    issue_key: str | None = None,
) -> tuple[int, str]:
    """Create a bearer token for an active staff member: its id and the token, which is shown
    once (only its hash is stored). NotFound or Conflict (inactive) otherwise. `issue_key`,
    the one-time key of the form that asks: AlreadyIssued when that form issued one before
    (a reload of the page that showed it), even at the same moment on another replica."""
    staff = await get_staff(session=session, staff_id=staff_id)
    if not staff.active:
        raise Conflict("this staff member is inactive: reactivate them first")
    if label.startswith(SESSION_LABEL):
        raise InvalidInput(f"a token label may not start with {SESSION_LABEL!r}")
    if issue_key is not None:
        await _not_issued_yet(session, staff_id, issue_key)
    token = new_token()
    row = StaffToken(
        staff_id=staff_id,
        token_hash=hash_token(token),
        label=label,
        created_at=now,
        issue_key=issue_key,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        if issue_key is None:
            raise
        # the same form sent twice at once (two replicas): the other insert won; this
        # request's transaction wrote nothing else yet
        await session.rollback()
        await _not_issued_yet(session, staff_id, issue_key)
        raise
    return row.id, token


async def _not_issued_yet(session: AsyncSession, staff_id: str, issue_key: str) -> None:
    earlier = (
        await session.execute(
            select(StaffToken.id, StaffToken.label, StaffToken.staff_id).where(
                StaffToken.issue_key == issue_key
            )
        )
    ).one_or_none()
    if earlier is not None:
        if earlier.staff_id != staff_id:  # a key is one form's, for one member
            raise InvalidInput("this form was for another staff member: open theirs again")
        raise AlreadyIssued(earlier.id, earlier.label)


def token_view(row: StaffToken) -> dict[str, Any]:
    """A bearer token as the admin API shows it: never the token or its hash."""
    return {
        "id": row.id,
        "staff_id": row.staff_id,
        "label": row.label,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


async def list_tokens(*, session: AsyncSession, staff_id: str) -> list[StaffToken]:
    """A staff member's bearer tokens, revoked ones too, oldest first (console sessions are
    not listed: revoking the token one signed in with ends them)."""
    await get_staff(session=session, staff_id=staff_id)
    rows = await session.execute(
        select(StaffToken)
        .where(StaffToken.staff_id == staff_id, StaffToken.label.not_like(f"{SESSION_LABEL}%"))
        .order_by(StaffToken.id)
    )
    return list(rows.scalars())


async def token_issuers(
    *, session: AsyncSession, staff_id: str, tokens: Sequence[StaffToken]
) -> dict[int, str]:
    """Who issued each of these tokens of a staff member, by token id, as the access log
    recorded it (an admin's id, or `refdesk-cli`; a token whose line was purged is not in
    it). An admin's token on a colleague's account is one they can act as the colleague with:
    the staff page shows who issued it (an outside review found one outliving its issuer
    unnoticed). Read only around the tokens' own times (the log's `at` index), not the
    whole log of a year's reads."""
    if not tokens:
        return {}
    prefix = f"{staff_id} token "
    rows = await session.execute(
        select(TranscriptAccess.staff_id, TranscriptAccess.detail).where(
            TranscriptAccess.at >= min(t.created_at for t in tokens) - ISSUE_LINE_SLACK,
            TranscriptAccess.at <= max(t.created_at for t in tokens) + ISSUE_LINE_SLACK,
            TranscriptAccess.action == "token-issue",
            TranscriptAccess.detail.startswith(prefix, autoescape=True),
        )
    )
    issued: dict[int, str] = {}
    for actor, detail in rows:
        token = (detail or "").removeprefix(prefix).split(":", 1)[0].strip()
        if token.isdigit():
            issued[int(token)] = actor
    return issued


ISSUE_LINE_SLACK = timedelta(minutes=1)
"""How far a token's access-log line may stand from its creation (the same transaction's
clock: the same moment; the CLI's, a moment apart)."""


MAX_TOKEN_ID = 2**31 - 1
"""The largest id the tokens' integer column holds (PostgreSQL's int4: a larger one answered
500, "value out of int32 range")."""


ONES_LAST_KEY = "this is your last token: issue yourself another before you revoke it"


async def revoke_token(
    *, session: AsyncSession, staff_id: str, token_id: int, now: datetime, actor_id: str
) -> tuple[StaffToken, PresenceChanged | None]:
    """Revoke one bearer token of a staff member, and so the console sessions signed in with
    it; NotFound unless it is theirs; Conflict for an admin's own last token (an outside
    probe's admin revoked theirs from the staff page and could not sign in again). Revoking a
    revoked token changes nothing. A revocation that leaves them no token (and so no console
    session: each lives by the token it signed in with) signs them off: they had stayed Online,
    counted by routing and the availability API, until the heartbeat sweep. The token, and the
    presence change to publish after the commit."""
    if not 1 <= token_id <= MAX_TOKEN_ID:
        raise NotFound("no such token for this staff member")
    row = await session.get(StaffToken, token_id)
    if row is None or row.staff_id != staff_id or row.label.startswith(SESSION_LABEL):
        raise NotFound("no such token for this staff member")
    if row.revoked_at is None:
        if actor_id == staff_id and not await _live_tokens(session, staff_id, besides=token_id):
            raise Conflict(ONES_LAST_KEY)
        row.revoked_at = now
        await session.flush()
    if await _live_tokens(session, staff_id):
        return row, None
    return row, await _sign_off(session, staff_id, actor_id, now, "signed out: no token left")


async def _live_tokens(session: AsyncSession, staff_id: str, *, besides: int = 0) -> int:
    """How many bearer tokens a staff member holds unrevoked (console sessions not counted),
    `besides` that one."""
    found = await session.scalar(
        select(func.count()).where(
            StaffToken.staff_id == staff_id,
            StaffToken.id != besides,
            StaffToken.revoked_at.is_(None),
            StaffToken.label.not_like(f"{SESSION_LABEL}%"),
        )
    )
    return int(found or 0)


async def token_counts(*, session: AsyncSession) -> dict[str, int]:
    """How many unrevoked bearer tokens each staff member holds (console sessions not
    counted)."""
    rows = await session.execute(
        select(StaffToken.staff_id, func.count())
        .where(StaffToken.revoked_at.is_(None), StaffToken.label.not_like(f"{SESSION_LABEL}%"))
        .group_by(StaffToken.staff_id)
    )
    return {staff_id: int(n) for staff_id, n in rows.all()}


async def last_sign_ins(*, session: AsyncSession) -> dict[str, datetime]:
    """When each staff member last signed in to the console (their newest session: a session
    row stays until a later sign-in finds it expired)."""
    rows = await session.execute(
        select(StaffToken.staff_id, func.max(StaffToken.created_at))
        .where(StaffToken.label.like(f"{SESSION_LABEL}%"))
        .group_by(StaffToken.staff_id)
    )
    return {staff_id: at for staff_id, at in rows.all() if at is not None}


async def deactivate_staff(
    *, session: AsyncSession, staff_id: str, actor_id: str, now: datetime
) -> tuple[Staff, PresenceChanged | None]:
    """Deactivate a staff member (never oneself: NotYourself), revoke their tokens, and so
    their console sessions, and sign them off; the record and the presence change to publish
    after the commit (None if they were Offline already)."""
    check_not_yourself(actor_id=actor_id, staff_id=staff_id, patch=StaffPatch(active=False))
    row = await update_staff(session=session, staff_id=staff_id, patch=StaffPatch(active=False))
    await revoke_tokens(session=session, staff_id=staff_id, now=now)
    return row, await _sign_off(session, staff_id, actor_id, now, "deactivated")


async def _sign_off(
    session: AsyncSession, staff_id: str, actor_id: str, now: datetime, why: str
) -> PresenceChanged | None:
    """Offline, the shift ended, for someone who can no longer sign in; the presence change
    to publish after the commit (None if they were Offline already)."""
    return await set_status(
        session=session,
        staff_id=staff_id,
        status=StaffStatus.OFFLINE,
        actor_id=actor_id,
        now=now,
        note=why,
        shift="end",
    )


async def revoke_tokens(*, session: AsyncSession, staff_id: str, now: datetime) -> None:
    """Revoke every token a staff member holds (on deactivation)."""
    rows = await session.execute(
        select(StaffToken).where(StaffToken.staff_id == staff_id, StaffToken.revoked_at.is_(None))
    )
    for token in rows.scalars():
        token.revoked_at = now
    await session.flush()
