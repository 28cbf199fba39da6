"""whether a conversation holds anything but text keywords

A conversation of keywords only (HELP, HOURS...) asked the desk nothing: its close sends no
rating survey. Rows written before this column are taken to have asked something.

Revision ID: router_0003
Revises: router_0002
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0003"
down_revision = "router_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "router_conversations",
        sa.Column("asked", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("router_conversations", "asked")
