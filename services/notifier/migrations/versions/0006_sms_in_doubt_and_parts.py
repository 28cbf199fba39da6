"""SMS exactly once: attempts in doubt, and texts sent in parts

Twilio's Messages API has no idempotency key, so an SMS whose earlier attempt may have reached
it is looked up before it is sent again: `claimed_at` (when a lease was taken; a lease that ran
out without an outcome puts its attempt in doubt) and `in_doubt_since` (since when an attempt's
outcome is unknown). A text over Twilio's 1,600-character limit goes out in parts, each sent
once: `progress` (how far the text got and the parts' SIDs).

Revision ID: notifier_0006
Revises: notifier_0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0006"
down_revision = "notifier_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("in_doubt_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("progress", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("send_ledger") as batch:
        for column in ("progress", "in_doubt_since", "claimed_at"):
            batch.drop_column(column)
