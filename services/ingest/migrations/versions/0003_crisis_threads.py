"""sms_threads.crisis: a text thread the CARE Team was alerted about

Revision ID: ingest_0003
Revises: ingest_0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0003"
down_revision = "ingest_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_threads") as batch:
        batch.add_column(
            sa.Column("crisis", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_threads") as batch:
        batch.drop_column("crisis")
