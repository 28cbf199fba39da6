"""the queue says when the latest reply or the CARE Team's alert never got through

A staff reply the notifier gave up on (the relay refused it), that the carrier did not
deliver or that bounced put the patron back to waiting with nothing on the queue row saying
why; a CARE Team alert the relay refused was a line in the timeline alone, while the crisis
sat at the top of the queue as if the team knew. `failed_reply` holds the reply's line until
someone replies again; `care_alert_failed` marks the crisis whose alert was refused.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two columns (existing rows: nothing flagged)."""
    op.add_column("conversations", sa.Column("failed_reply", sa.String(128), nullable=True))
    op.add_column(
        "conversations",
        sa.Column("care_alert_failed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_column("conversations", "care_alert_failed")
    op.drop_column("conversations", "failed_reply")
