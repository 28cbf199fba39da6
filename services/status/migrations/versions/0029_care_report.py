"""who filed the CARE Team's incident report, and when

The desk's procedures ask the librarian who believes a student is in crisis to fill out a CARE
Team incident report (in the college's own reporting system). Nothing recorded that it was
done: a supervisor reading a crisis could not tell whether anyone had. `care_report_at` and
`care_report_by` hold the first record of it (`edu.tccd.refdesk.desk.care_report_filed.v1`),
and the desk statistics count the conversations with one (`desk_stats.care_report`).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs (SQLite's batch mode would rebuild the table and its partial indexes)
    op.add_column(
        "conversations", sa.Column("care_report_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("conversations", sa.Column("care_report_by", sa.String(64), nullable=True))
    op.add_column(
        "desk_stats",
        sa.Column("care_report", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("desk_stats", "care_report")
    op.drop_column("conversations", "care_report_by")
    op.drop_column("conversations", "care_report_at")
