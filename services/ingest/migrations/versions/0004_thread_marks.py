"""sms_thread_marks: a CARE Team alert or an erasure, kept by conversation for a replay

A rewind after a restore reads the CARE Team's alerts (refdesk.notifications) and erasures
(refdesk.desk) in no common order with the texts (refdesk.interactions): an alert read before
its text found no thread to mark, and the text then made the thread anew without its crisis,
so a close ended it and the patron's next text opened an ordinary conversation (an outside
review). Each mark is kept here, by conversation, and applied when a text of that conversation
is read back. Purged with the seen keys' time.

Revision ID: ingest_0004
Revises: ingest_0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0004"
down_revision = "ingest_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_thread_marks",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("crisis", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("forgotten", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sms_thread_marks_marked_at", "sms_thread_marks", ["marked_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_thread_marks_marked_at", table_name="sms_thread_marks")
    op.drop_table("sms_thread_marks")
