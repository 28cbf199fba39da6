"""re-escalation goes on until someone acknowledges the crisis

The sweep re-escalated an unacknowledged crisis once: its partial index and query left out
every crisis already re-escalated, so a crisis nobody acknowledged for half an hour (a second
message in it included) reached the supervisors once, at five minutes (an outside
patron-safety review). `reescalations` counts the rounds sent, and the index now holds every
open crisis awaiting acknowledgement, re-escalated or not.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_conversations = sa.table(
    "conversations",
    sa.column("state"),
    sa.column("crisis", sa.Boolean),
    sa.column("acknowledged_at"),
    sa.column("reescalated_at"),
)
_OPEN_UNACKNOWLEDGED = (
    _conversations.c.state == sa.literal("open", literal_execute=True),
    _conversations.c.crisis == sa.true(),
    _conversations.c.acknowledged_at.is_(None),
)
AWAITING_ACKNOWLEDGEMENT = sa.and_(*_OPEN_UNACKNOWLEDGED)
"""As models.AWAITING_ACKNOWLEDGEMENT, rendered for each dialect."""
BEFORE = sa.and_(*_OPEN_UNACKNOWLEDGED, _conversations.c.reescalated_at.is_(None))
"""The index's predicate from migration 0005."""


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite's batch mode would rebuild the table and its partial indexes)
    op.add_column(
        "conversations",
        sa.Column("reescalations", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        sa.text("UPDATE conversations SET reescalations = 1 WHERE reescalated_at IS NOT NULL")
    )
    op.drop_index("ix_conversations_crisis_due", "conversations")
    op.create_index(
        "ix_conversations_crisis_due",
        "conversations",
        ["crisis_at"],
        sqlite_where=AWAITING_ACKNOWLEDGEMENT,
        postgresql_where=AWAITING_ACKNOWLEDGEMENT,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_crisis_due", "conversations")
    op.create_index(
        "ix_conversations_crisis_due",
        "conversations",
        ["crisis_at"],
        sqlite_where=BEFORE,
        postgresql_where=BEFORE,
    )
    op.drop_column("conversations", "reescalations")
