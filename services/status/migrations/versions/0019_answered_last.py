"""the queue puts every conversation whose patron waits above the answered ones

Answered conversations (staff replied after the patron's last message; tickets stay open until
someone closes them) kept their place by arrival, so after a few hours a new chat whose patron
was waiting now fell below the fold under rows nobody needed to look at (a shift probe: four
answered rows above it at 1366x768). They are now the last band, below everyone waiting; a
patron's new message moves one up again. Crises keep their bands, answered or not. The queue's
expression index is rebuilt on the new expression.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BAND = (
    "(CASE WHEN crisis THEN (CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END)"
    " WHEN waiting_since IS NULL THEN 5"
    " WHEN safety_review THEN 2 WHEN overnight THEN 3 ELSE 4 END)"
)
"""The same expression as services.status.queue.BAND (a planner uses an expression index only
for the expression it was built on; a test reads both databases' query plans)."""

BEFORE = (
    "(CASE WHEN crisis THEN (CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END)"
    " WHEN safety_review THEN 2 WHEN overnight THEN 3 ELSE 4 END)"
)
"""Migration 0014's expression."""


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
    """Back to 0014's bands."""
    _index(BEFORE)
