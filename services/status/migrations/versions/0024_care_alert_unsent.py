"""the queue says when the CARE Team's alert has not gone out minutes after it was asked for

While the mail relay is down the notifier keeps trying a CARE Team alert for hours and says
nothing until it gives up: the open conversation said "The CARE Team's alert has not gone out
yet", but the crisis's queue row said nothing, so a librarian not in that conversation read it
as handled. The sweep now marks such a conversation with the alert's line
(`care_alert_unsent`); the alert going out or failing clears it. Two partial indexes keep the
sweep's two reads to the few rows concerned: alerts not reported on yet, and the
conversations marked.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_lines = sa.table("transcript_entries", sa.column("kind"), sa.column("delivery_state"))
CARE_ALERT_UNSENT = sa.and_(
    _lines.c.kind == sa.literal("crisis_alert", literal_execute=True),
    _lines.c.delivery_state.is_(None),
)
"""As models.CARE_ALERT_UNSENT."""
CARE_ALERT_LATE = sa.table(
    "conversations", sa.column("care_alert_unsent")
).c.care_alert_unsent.is_not(None)
"""As models.CARE_ALERT_LATE."""


def upgrade() -> None:
    """Add the column and the two partial indexes (existing rows: nothing flagged; the next
    sweep flags what is late)."""
    op.add_column("conversations", sa.Column("care_alert_unsent", sa.String(128), nullable=True))
    op.create_index(
        "ix_transcript_care_alert_unsent",
        "transcript_entries",
        ["at"],
        sqlite_where=CARE_ALERT_UNSENT,
        postgresql_where=CARE_ALERT_UNSENT,
    )
    op.create_index(
        "ix_conversations_care_alert_unsent",
        "conversations",
        ["care_alert_unsent"],
        sqlite_where=CARE_ALERT_LATE,
        postgresql_where=CARE_ALERT_LATE,
    )


def downgrade() -> None:
    """Drop them again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_index("ix_conversations_care_alert_unsent", "conversations")
    op.drop_index("ix_transcript_care_alert_unsent", "transcript_entries")
    op.drop_column("conversations", "care_alert_unsent")
