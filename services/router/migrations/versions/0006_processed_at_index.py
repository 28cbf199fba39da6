"""processed ids are pruned by their time: an index on processed_at

Revision ID: router_0006
Revises: router_0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "router_0006"
down_revision = "router_0005"
branch_labels = None
depends_on = None

TABLE = "router_processed_events"


def upgrade() -> None:
    op.create_index(f"ix_{TABLE}_processed_at", TABLE, ["processed_at"])


def downgrade() -> None:
    op.drop_index(f"ix_{TABLE}_processed_at", table_name=TABLE)
