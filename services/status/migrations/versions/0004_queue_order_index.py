"""The desk queue in index order: open conversations by band (crisis, safety review, overnight,
the rest), then oldest first, so a page of the queue reads its rows off an index instead of
sorting every open conversation; closed ones newest first likewise.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BAND = "(CASE WHEN crisis THEN 0 WHEN safety_review THEN 1 WHEN overnight THEN 2 ELSE 3 END)"
"""The same expression as services.status.queue.BAND (a planner uses an expression index only
for the expression it was built on; a test reads both databases' query plans)."""


def upgrade() -> None:
    """Index the queue's order and the closed list's."""
    op.create_index(
        "ix_conversations_queue",
        "conversations",
        [sa.text("state"), sa.text(BAND), sa.text("opened_at"), sa.text("conversation_id")],
    )
    op.create_index("ix_conversations_closed", "conversations", ["state", "closed_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_conversations_closed", "conversations")
    op.drop_index("ix_conversations_queue", "conversations")
