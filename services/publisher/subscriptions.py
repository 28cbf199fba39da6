"""Webhook subscriptions: create, change, list, delete, rotate secrets, and match events."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from services.publisher.egress import Egress
from services.publisher.errors import InvalidInput, NotFound
from services.publisher.tables import Delivery, Subscription
from shared.events import PUBLIC_EVENT_TYPES

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def new_secret() -> str:
    """A fresh Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str:
    """The secret if it is a usable whsec_ secret; InvalidInput otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidInput("secret must start with whsec_")
    try:
        Webhook(secret)
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :] + "==", validate=False)
    except Exception as exc:  # the library raises several types for a malformed secret
        raise InvalidInput("secret must be whsec_ followed by base64") from exc
    if len(raw) < 24:
        raise InvalidInput("secret must hold at least 24 random bytes")
    return secret


def check_event_types(types: Sequence[str]) -> list[str]:
    """The event types if every one is a public type; InvalidInput otherwise."""
    unknown = sorted(set(types) - set(PUBLIC_EVENT_TYPES))
    if unknown:
        raise InvalidInput(f"unknown event types: {', '.join(unknown)}")
    return sorted(set(types))


async def create(
    *,
    session: AsyncSession,
    url: str,
    now: datetime,
    egress: Egress,
    secret: str | None = None,
    description: str = "",
    event_types: Sequence[str] = (),
    campuses: Sequence[str] = (),
    departments: Sequence[str] = (),
) -> Subscription:
    """Add a subscription (a secret is issued when none is given)."""
    row = Subscription(
        id=f"sub_{uuid.uuid4().hex}",
        url=await egress.check(url),
        secret=check_secret(secret) if secret else new_secret(),
        description=description,
        event_types=check_event_types(event_types),
        campuses=sorted(set(campuses)),
        departments=sorted(set(departments)),
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def get(*, session: AsyncSession, subscription_id: str) -> Subscription:
    """One subscription; NotFound otherwise."""
    row = await session.get(Subscription, subscription_id)
    if row is None:
        raise NotFound(f"no subscription {subscription_id}")
    return row


async def list_all(*, session: AsyncSession) -> list[Subscription]:
    """Every subscription, oldest first."""
    rows = await session.execute(select(Subscription).order_by(Subscription.created_at))
    return list(rows.scalars())


async def update(
    *,
    session: AsyncSession,
    subscription_id: str,
    changes: Mapping[str, Any],
    now: datetime,
    egress: Egress,
) -> Subscription:
    """Change url, description, event types, filters or active."""
    row = await get(session=session, subscription_id=subscription_id)
    if changes.get("url") is not None:
        row.url = await egress.check(changes["url"])
    if changes.get("event_types") is not None:
        row.event_types = check_event_types(changes["event_types"])
    for name in ("campuses", "departments"):
        if changes.get(name) is not None:
            setattr(row, name, sorted(set(changes[name])))
    if changes.get("description") is not None:
        row.description = changes["description"]
    if changes.get("active") is not None:
        row.active = bool(changes["active"])
    row.updated_at = now
    await session.flush()
    return row


async def rotate_secret(
    *,
    session: AsyncSession,
    subscription_id: str,
    now: datetime,
    grace: timedelta,
    secret: str | None = None,
) -> Subscription:
    """A new secret (issued, or the one given); deliveries from now on are signed with it, and
    also with the one it replaces until `grace` has passed (Standard Webhooks allows several
    signatures in one header), so the subscriber can move to the new secret without refusing a
    delivery. A grace of zero drops the old secret at once (one that leaked)."""
    row = await get(session=session, subscription_id=subscription_id)
    keep = grace > timedelta(0)
    row.previous_secret = row.secret if keep else None
    row.previous_secret_until = now + grace if keep else None
    row.secret = check_secret(secret) if secret is not None else new_secret()
    row.updated_at = now
    await session.flush()
    return row


def signing_secrets(sub: Subscription, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with now: the current one, and the previous one while
    its grace lasts."""
    until = sub.previous_secret_until
    if sub.previous_secret and until is not None and now < until:
        return (sub.secret, sub.previous_secret)
    return (sub.secret,)


async def remove(*, session: AsyncSession, subscription_id: str) -> None:
    """Delete a subscription and its delivery log."""
    await get(session=session, subscription_id=subscription_id)
    await session.execute(delete(Delivery).where(Delivery.subscription_id == subscription_id))
    await session.execute(delete(Subscription).where(Subscription.id == subscription_id))


def event_department(data: Mapping[str, Any]) -> str | None:
    """The department a public event is about, if any."""
    value = data.get("department") or data.get("department_hint")
    return str(value) if value else None


def event_campus(data: Mapping[str, Any]) -> str | None:
    """The campus a public event is about: its hint, or a campus-* department."""
    if data.get("campus_hint"):
        return str(data["campus_hint"])
    department = event_department(data)
    return department if department and department.startswith("campus-") else None


def matches(sub: Subscription, event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether a subscription wants an event (empty lists mean: no filter)."""
    if not sub.active:
        return False
    if sub.event_types and event_type not in sub.event_types:
        return False
    if sub.departments and event_department(data) not in sub.departments:
        return False
    return not (sub.campuses and event_campus(data) not in sub.campuses)


def view(sub: Subscription, *, with_secret: bool = False) -> dict[str, Any]:
    """A subscription as the API shows it (the secret only when just issued)."""
    out: dict[str, Any] = {
        "id": sub.id,
        "url": sub.url,
        "description": sub.description,
        "event_types": sub.event_types,
        "campuses": sub.campuses,
        "departments": sub.departments,
        "active": sub.active,
        "created_at": sub.created_at.isoformat(),
        "updated_at": sub.updated_at.isoformat(),
    }
    until = sub.previous_secret_until
    out["previous_secret_until"] = until.isoformat() if until is not None else None
    if with_secret:
        out["secret"] = sub.secret
    return out
