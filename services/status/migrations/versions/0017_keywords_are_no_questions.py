"""a conversation of text keywords only is no question in the desk statistics

Texts of one keyword (STOP, HELP, HOURS) had been counted as questions, reference
transactions in the annual report among them (an outside probe). The projection no longer
counts them; this takes out of the count the rows it had counted: SMS conversations the router
decided only as keywords (their statistics row has no routing action, and the conversation a
keyword answered). A row a staff member moved stays counted: a keyword conversation someone
transferred was handled.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Un-count the keyword-only rows."""
    op.execute(
        """
        UPDATE desk_stats SET received_by = NULL, department = NULL, path = NULL
        WHERE action IS NULL AND transfers = 0 AND channel = 'sms'
          AND conversation_id IN (
            SELECT conversation_id FROM conversations WHERE keyword_answered IS NOT NULL
          )
        """
    )


def downgrade() -> None:
    """Nothing to undo: a keyword-only row counted again would be the defect again."""
