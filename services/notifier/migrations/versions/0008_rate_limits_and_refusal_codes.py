"""A rate limit's wait that no recovery cuts short, and the provider's code for a refusal

`not_before`: a retry after an HTTP 429 waits at least as long as the provider's Retry-After
said, even when another message's success on the lane makes the other retries due at once.
`error_code`: the provider's code for refusing a message (Twilio's 21610, 21211, 21614, ...),
kept with the dead row so the outcome announced again after a crash says it too.

Revision ID: notifier_0008
Revises: notifier_0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "notifier_0008"
down_revision = "notifier_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_ledger") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("error_code", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("send_ledger") as batch:
        for column in ("error_code", "not_before"):
            batch.drop_column(column)
