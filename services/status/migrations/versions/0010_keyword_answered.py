"""a text of one keyword refdesk answered waits for nobody

`conversations.keyword_answered` is the interaction id of the latest text the router decided
was one keyword (STOP, HELP, HOURS) that refdesk answered itself; the queue's "Waiting" reads
"Answered" when that text is the one message waiting. Existing rows keep NULL (they wait as
before until a librarian answers or closes them).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.add_column("conversations", sa.Column("keyword_answered", sa.String(128)))


def downgrade() -> None:
    """Drop it again (in place: a rebuilt table would lose the queue's expression index)."""
    op.drop_column("conversations", "keyword_answered")
