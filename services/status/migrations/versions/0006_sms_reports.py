"""what the SMS provider reported about each text, and the index its transcript line is found by

Twilio's status callbacks (refdesk.sms-reports) name a text by its MessageSid only. The most
final report per SID is kept in `sms_reports`, whether its line is known yet or not, and the
line is found by the SID in `transcript_entries.message_id`, now indexed for the texts refdesk
sent (a partial index: the other lines cost no index write). Reports are dropped with the
transcript retention, by `reported_at`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


_lines = sa.table("transcript_entries", sa.column("direction"), sa.column("channel"))
TEXT_SENT = sa.and_(
    _lines.c.direction == sa.literal("out", literal_execute=True),
    _lines.c.channel == sa.literal("sms", literal_execute=True),
)
"""As models.TEXT_SENT: only the texts refdesk sent are indexed by their provider's id."""


def upgrade() -> None:
    """Add the reports' table and index the lines by message id."""
    op.create_table(
        "sms_reports",
        sa.Column("provider_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.Integer()),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_index(
        "ix_transcript_text_sent",
        "transcript_entries",
        ["message_id"],
        sqlite_where=TEXT_SENT,
        postgresql_where=TEXT_SENT,
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_transcript_text_sent", "transcript_entries")
    op.drop_table("sms_reports")
