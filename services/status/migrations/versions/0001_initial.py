"""Initial status schema: staff, tokens, presence, status history, conversations, processed.

Revision ID: 0001
Revises:
Create Date: 2025-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "staff",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("campus", sa.String(32)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at", False),
    )
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.String(64), sa.ForeignKey("staff.id"), nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(64), nullable=False),
        _ts("created_at", False),
        _ts("revoked_at"),
    )
    op.create_table(
        "presence",
        sa.Column("staff_id", sa.String(64), sa.ForeignKey("staff.id"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("since", False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        _ts("last_heartbeat_at"),
        _ts("shift_started_at"),
    )
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.String(64), sa.ForeignKey("staff.id"), nullable=False, index=True),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        _ts("changed_at", False),
        sa.Column("note", sa.String(500)),
    )
    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("department", sa.String(64), index=True),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("overnight", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        _ts("opened_at", False),
        _ts("last_message_at", False),
        _ts("closed_at"),
        sa.Column("assignee", sa.String(64), index=True),
        sa.Column("crisis", sa.Boolean(), nullable=False),
        _ts("crisis_at"),
        _ts("acknowledged_at"),
        sa.Column("acknowledged_by", sa.String(64)),
        _ts("reescalated_at"),
        _ts("first_response_at"),
        sa.Column("patron_contact", sa.String(320)),
        sa.Column("converted_from", sa.String(16)),
        sa.Column("last_interaction_id", sa.String(128)),
        sa.Column("note", sa.Text()),
    )
    op.create_table(
        "status_processed_events",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        _ts("processed_at", False),
    )


def downgrade() -> None:
    """Drop every table."""
    for table in (
        "status_processed_events",
        "conversations",
        "status_history",
        "presence",
        "staff_tokens",
        "staff",
    ):
        op.drop_table(table)
