"""the queue puts a crisis nobody has acknowledged above an acknowledged one

The queue's bands were crisis, safety review, overnight, the rest, oldest first within each:
an acknowledged crisis from the morning stayed above a crisis that had just arrived and that
nobody had acknowledged. The crisis band splits in two, unacknowledged first, and the queue's
expression index (migration 0004) is rebuilt on the new expression.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BAND = (
    "(CASE WHEN crisis THEN (CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END)"
    " WHEN safety_review THEN 2 WHEN overnight THEN 3 ELSE 4 END)"
)
"""The same expression as services.status.queue.BAND (a planner uses an expression index only
for the expression it was built on; a test reads both databases' query plans)."""

BEFORE = "(CASE WHEN crisis THEN 0 WHEN safety_review THEN 1 WHEN overnight THEN 2 ELSE 3 END)"
"""Migration 0004's expression."""


def _index(band: str) -> None:
    op.drop_index("ix_conversations_queue", "conversations")
    op.create_index(
        "ix_conversations_queue",
        "conversations",
        [sa.text("state"), sa.text(band), sa.text("opened_at"), sa.text("conversation_id")],
    )


def upgrade() -> None:
    """Rebuild the queue's index on the new bands."""
    _index(BAND)


def downgrade() -> None:
    """Back to 0004's bands."""
    _index(BEFORE)
