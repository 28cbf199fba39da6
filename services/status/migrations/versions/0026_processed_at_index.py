"""processed ids are pruned by their time: an index on processed_at

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLE = "status_processed_events"


def upgrade() -> None:
    op.create_index(f"ix_{TABLE}_processed_at", TABLE, ["processed_at"])


def downgrade() -> None:
    op.drop_index(f"ix_{TABLE}_processed_at", table_name=TABLE)
