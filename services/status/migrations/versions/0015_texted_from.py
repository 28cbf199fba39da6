"""a text thread turned email keeps the number it came from

`conversations.texted_from` holds the number of an SMS thread staff turned into an email
ticket (its `patron_contact` becomes the email address): a search by the patron's number found
nothing of it, and the conversation view no longer listed the number's earlier conversations.
Student data: retention clears it with the contact. Existing converted rows stay empty (their
number was overwritten).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column and its index."""
    op.add_column("conversations", sa.Column("texted_from", sa.String(32), nullable=True))
    op.create_index("ix_conversations_texted_from", "conversations", ["texted_from"])


def downgrade() -> None:
    """Drop them again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_index("ix_conversations_texted_from", "conversations")
    op.drop_column("conversations", "texted_from")
