"""contacts blocked at the desk, with who blocked and unblocked them, when and why

A patron harassing the desk (or a bot flooding it) could be blocked only through ingest's admin
API: no librarian could do it from the conversation, nobody could see who was blocked or why,
and a close still sent the blocked sender the survey (an outside review). `blocked_contacts`
keeps each block made at the desk, in force until a supervisor unblocks it; the row stays as
the record of both, and retention removes it once unblocked for the transcripts' time.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_blocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("conversation_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("blocked_by", sa.String(64), nullable=False),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unblocked_by", sa.String(64), nullable=True),
        sa.Column("unblocked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_desk_blocks_contact", "desk_blocks", ["contact"])


def downgrade() -> None:
    op.drop_index("ix_desk_blocks_contact", table_name="desk_blocks")
    op.drop_table("desk_blocks")
