"""The statistics tables: one row per conversation and one per transfer, with no names,
contacts, TCC IDs or message text. Desk-time buckets are stored beside each timestamp so every
grouping is a plain GROUP BY on both backends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.status import rows
from services.status.models import Base
from shared.db import UTCDateTime


class DeskStat(Base):
    """One conversation as the statistics see it."""

    __tablename__ = "desk_stats"
    __table_args__ = (Index("ix_desk_stats_day", "desk_day", "received_by"),)

    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    """The channel the question arrived on (an SMS thread converted to email stays sms)."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The patron's first message."""
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The latest patron message; None until one is seen."""
    desk_day: Mapped[date] = mapped_column(Date)
    desk_hour: Mapped[int] = mapped_column(Integer)
    desk_weekday: Mapped[int] = mapped_column(Integer)
    """0 Monday ... 6 Sunday, in desk time (America/Chicago)."""
    desk_week: Mapped[date] = mapped_column(Date)
    """The Monday of the desk-time week."""
    desk_month: Mapped[str] = mapped_column(String(7))
    fiscal_year: Mapped[int] = mapped_column(Integer, index=True)
    """July-June, named by the year it ends in."""
    received_by: Mapped[str | None] = mapped_column(String(64))
    """The department of the first routing decision; None until routed (not counted)."""
    department: Mapped[str | None] = mapped_column(String(64))
    """Where it is now."""
    path: Mapped[str | None] = mapped_column(String(300))
    """Departments in order, "reference > nw-circulation"."""
    transfers: Mapped[int] = mapped_column(Integer, default=0)
    action: Mapped[str | None] = mapped_column(String(32))
    """The router's first action."""
    overnight: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_s: Mapped[float | None] = mapped_column(Float)
    safety_review: Mapped[bool] = mapped_column(Boolean, default=False)
    care_report: Mapped[bool] = mapped_column(Boolean, default=False)
    """Staff recorded filing the CARE Team's incident report on this patron."""
    lang: Mapped[str | None] = mapped_column(String(8))
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_s: Mapped[float | None] = mapped_column(Float)
    last_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The latest close event, even if a later patron message reopened the conversation."""
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """The close that ended it, or None while it is open."""
    resolution_s: Mapped[float | None] = mapped_column(Float)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_through: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Of the latest close: the received time of the latest patron message it accounted for
    (a later message reopens, as in the queue)."""
    read_scale: Mapped[int | None] = mapped_column(Integer)
    topic: Mapped[str | None] = mapped_column(String(32))
    tagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the tags were last set (a close or an edit): an older event never undoes a newer."""


@dataclass(slots=True, eq=False, kw_only=True)
class DeskStatRow:
    """A row of `desk_stats`; the columns are documented on `DeskStat`."""

    conversation_id: str
    channel: str
    received_at: datetime
    last_message_at: datetime | None = None
    desk_day: date
    desk_hour: int
    desk_weekday: int
    desk_week: date
    desk_month: str
    fiscal_year: int
    received_by: str | None = None
    department: str | None = None
    path: str | None = None
    transfers: int = 0
    action: str | None = None
    overnight: bool = False
    crisis: bool = False
    crisis_at: datetime | None = None
    acknowledged_at: datetime | None = None
    ack_s: float | None = None
    safety_review: bool = False
    care_report: bool = False
    lang: str | None = None
    first_response_at: datetime | None = None
    first_response_s: float | None = None
    last_closed_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_s: float | None = None
    closed_by: str | None = None
    closed_through: datetime | None = None
    read_scale: int | None = None
    topic: str | None = None
    tagged_at: datetime | None = None


rows.register(DeskStatRow, DeskStat.__table__)


class DeskStatTransfer(Base):
    """One move of a conversation to another department (by staff, the platform or a later
    routing decision)."""

    __tablename__ = "desk_stat_transfers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    from_department: Mapped[str | None] = mapped_column(String(64))
    to_department: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(64))
    """router, platform, or the staff id that transferred it."""
    at: Mapped[datetime] = mapped_column(UTCDateTime)
