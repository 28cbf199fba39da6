"""what the router has done in each conversation

Revision ID: router_0002
Revises: router_0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "router_0002"
down_revision = "router_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "router_conversations",
        sa.Column("conversation_id", sa.String(128), primary_key=True),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("crisis", sa.Boolean(), nullable=False),
        sa.Column("circulation_emailed", sa.Boolean(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("router_conversations")
