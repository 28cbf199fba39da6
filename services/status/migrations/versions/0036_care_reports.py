"""each staff member's record of filing the CARE Team's incident report

`conversations.care_report_at`/`_by` held one record: while one librarian's stood, a colleague
who filed the report too kept nothing, and when the first took theirs back (pressed by mistake)
the conversation showed no report filed. `care_reports` keeps a record per staff member until
they take it back; the conversation's columns show the earliest standing one. Each record the
conversations hold now is copied in.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_reports",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("staff_id", sa.String(64), primary_key=True),
        sa.Column("filed_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(64), nullable=True),
    )
    op.create_index(
        "ux_care_reports_standing",
        "care_reports",
        ["conversation_id", "staff_id"],
        unique=True,
        sqlite_where=sa.text("withdrawn_at IS NULL"),
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    op.execute(
        "INSERT INTO care_reports (conversation_id, staff_id, filed_at) "
        "SELECT conversation_id, care_report_by, care_report_at FROM conversations "
        "WHERE care_report_at IS NOT NULL AND care_report_by IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ux_care_reports_standing", table_name="care_reports")
    op.drop_table("care_reports")
