"""Desk statistics: one row per conversation and one per transfer, no patron data.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the statistics tables (filled by the consumer from the topics)."""
    stamp = sa.DateTime(timezone=True)
    op.create_table(
        "desk_stats",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("received_at", stamp, nullable=False),
        sa.Column("last_message_at", stamp),
        sa.Column("desk_day", sa.Date(), nullable=False),
        sa.Column("desk_hour", sa.Integer(), nullable=False),
        sa.Column("desk_weekday", sa.Integer(), nullable=False),
        sa.Column("desk_week", sa.Date(), nullable=False),
        sa.Column("desk_month", sa.String(7), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("received_by", sa.String(64)),
        sa.Column("department", sa.String(64)),
        sa.Column("path", sa.String(300)),
        sa.Column("transfers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("action", sa.String(32)),
        sa.Column("overnight", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("crisis", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("crisis_at", stamp),
        sa.Column("acknowledged_at", stamp),
        sa.Column("ack_s", sa.Float()),
        sa.Column("safety_review", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("lang", sa.String(8)),
        sa.Column("first_response_at", stamp),
        sa.Column("first_response_s", sa.Float()),
        sa.Column("last_closed_at", stamp),
        sa.Column("closed_at", stamp),
        sa.Column("resolution_s", sa.Float()),
        sa.Column("closed_by", sa.String(64)),
        sa.Column("read_scale", sa.Integer()),
        sa.Column("topic", sa.String(32)),
        sa.Column("tagged_at", stamp),
    )
    op.create_index("ix_desk_stats_day", "desk_stats", ["desk_day", "received_by"])
    op.create_index("ix_desk_stats_fiscal_year", "desk_stats", ["fiscal_year"])
    op.create_table(
        "desk_stat_transfers",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("from_department", sa.String(64)),
        sa.Column("to_department", sa.String(64), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("at", stamp, nullable=False),
    )
    op.create_index(
        "ix_desk_stat_transfers_conversation_id", "desk_stat_transfers", ["conversation_id"]
    )


def downgrade() -> None:
    """Drop the statistics tables."""
    op.drop_table("desk_stat_transfers")
    op.drop_table("desk_stats")
