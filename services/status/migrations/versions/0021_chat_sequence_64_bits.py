"""a chat platform's sequence numbers are kept as 64-bit integers

`transcript_entries.seq` was a 32-bit integer on PostgreSQL: a platform numbering messages by
millisecond timestamps, or any number past 2,147,483,647, failed the whole consumer batch
until the message was dead-lettered, and the conversation (a crisis too) reached the console
without the patron's words. Ingest now refuses a sequence past 2^63 - 1 (422), and the column
holds every number it accepts. SQLite's INTEGER is already 64-bit: nothing to change there.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Widen the column (PostgreSQL rewrites it; SQLite needs nothing)."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "transcript_entries", "seq", type_=sa.BigInteger(), existing_type=sa.Integer()
        )


def downgrade() -> None:
    """Back to 32 bits (fails if a kept number does not fit, as it should)."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "transcript_entries", "seq", type_=sa.Integer(), existing_type=sa.BigInteger()
        )
