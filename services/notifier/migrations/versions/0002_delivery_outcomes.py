"""delivery outcomes: what was delivered, and whether refdesk.deliveries has it

Revision ID: notifier_0002
Revises: notifier_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0002"
down_revision = "notifier_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("delivered_text", sa.Text, nullable=True))
        batch.add_column(sa.Column("subject", sa.Text, nullable=True))
        batch.add_column(sa.Column("segments", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("outcome_published", sa.Boolean, nullable=False, server_default=sa.false())
        )
    # Outcomes of rows finished before this revision are not announced: no consumer awaits them.
    op.execute("UPDATE send_ledger SET outcome_published = true WHERE state <> 'pending'")
    op.create_index("ix_send_ledger_unpublished", "send_ledger", ["outcome_published", "channel"])


def downgrade() -> None:
    op.drop_index("ix_send_ledger_unpublished", table_name="send_ledger")
    with op.batch_alter_table("send_ledger") as batch:
        for column in (
            "outcome_published",
            "segments",
            "subject",
            "delivered_text",
            "reason",
            "finished_at",
        ):
            batch.drop_column(column)
