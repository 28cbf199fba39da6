"""times as timestamptz (shared.db.UTCDateTime, aware UTC like every service)

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None

COLUMNS = (
    ("seen_keys", "expires_at"),
    ("sms_threads", "last_message_at"),
    ("blocked_contacts", "added_at"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite stores the same text either way; UTCDateTime reads it back as UTC
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.DateTime(timezone=True),
            postgresql_using=f"{column} AT TIME ZONE 'UTC'",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.DateTime(timezone=False),
            postgresql_using=f"{column} AT TIME ZONE 'UTC'",
        )
