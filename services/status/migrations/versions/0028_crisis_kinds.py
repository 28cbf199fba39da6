"""the kind of crisis the router saw, kept for the re-escalation

A re-escalation told the supervisors how long a crisis had waited but not what the router saw
in it ("Detected as", which the CARE Team's first alert carries): the status service kept no
crisis kinds. `crisis_kinds` holds them, from the routing decision's crisis rules' ids.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN (SQLite's batch mode would rebuild the table and its partial indexes)
    op.add_column("conversations", sa.Column("crisis_kinds", sa.String(160), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "crisis_kinds")
