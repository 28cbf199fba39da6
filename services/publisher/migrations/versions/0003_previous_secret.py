"""A rotated subscription keeps its previous secret for a while: deliveries are signed with
both until then, so a subscriber can switch to the new one without refusing any.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(200), nullable=True))
        batch.add_column(sa.Column("previous_secret_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
