"""The publisher's tables: the presence tally and its department counts, webhook subscriptions
and their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime


class Base(DeclarativeBase):
    pass


class PresenceTally(Base):
    """Each staff member's last known presence; never published (only per-department counts)."""

    __tablename__ = "presence_tally"

    staff_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DepartmentPresence(Base):
    """The Online count last published for each department, and the time it holds from."""

    __tablename__ = "presence_departments"

    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    online: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The newest presence change applied to this department; only ever moves forward."""


class Subscription(Base):
    """A campus system's webhook endpoint and what it wants to receive."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    """whsec_... (needed in clear to sign; only admins can read it back, once, when issued)."""
    previous_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The secret before the last rotation: deliveries carry its signature beside the new
    one's until `previous_secret_until` (migration 0003)."""
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    campuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One public event owed to one subscription: the delivery log and the retry queue."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_delivery_event"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_sub_time", "subscription_id", "event_time"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """msg_<uuid5(subscription, event)>: the webhook-id header, the same on every attempt."""
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(128))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
