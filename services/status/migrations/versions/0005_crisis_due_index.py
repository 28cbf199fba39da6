"""the re-escalation sweep reads the crises awaiting acknowledgement, not every open conversation

The sweep (every few seconds) looked for open, unacknowledged crises through the `state`
index: every open conversation was read to find the few crises. A partial index over the
crises awaiting acknowledgement or re-escalation, in `crisis_at` order, serves it instead.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_conversations = sa.table(
    "conversations",
    sa.column("state"),
    sa.column("crisis", sa.Boolean),
    sa.column("acknowledged_at"),
    sa.column("reescalated_at"),
)
AWAITING_ACKNOWLEDGEMENT = sa.and_(
    _conversations.c.state == sa.literal("open", literal_execute=True),
    _conversations.c.crisis == sa.true(),
    _conversations.c.acknowledged_at.is_(None),
    _conversations.c.reescalated_at.is_(None),
)
"""As models.AWAITING_ACKNOWLEDGEMENT, rendered for each dialect (SQLite matches a query to a
partial index only when they spell the predicate alike: `= 1` there, `= true` on PostgreSQL)."""


def upgrade() -> None:
    """Index the crises awaiting acknowledgement by when they were flagged."""
    op.create_index(
        "ix_conversations_crisis_due",
        "conversations",
        ["crisis_at"],
        sqlite_where=AWAITING_ACKNOWLEDGEMENT,
        postgresql_where=AWAITING_ACKNOWLEDGEMENT,
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_conversations_crisis_due", "conversations")
