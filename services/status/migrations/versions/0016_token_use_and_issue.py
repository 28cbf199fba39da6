"""when each sign-in token was last used, and which form issued it

`staff_tokens.last_used_at`: the latest request or console sign-in made with a bearer token,
to the minute (written by the periodic task from what each replica noted, never per request).
Admins tell a token in daily use from one nobody has used since it was issued, and revoke the
latter. Existing tokens start empty ("not used since this was recorded").

`staff_tokens.issue_key`: the one-time key of the staff page's form that issued the token
(unique), so the same form sent again (a browser reload of the answer that showed the token)
issues nothing new: before it, each reload left another token nobody had seen.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns."""
    op.add_column(
        "staff_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("staff_tokens", sa.Column("issue_key", sa.String(64), nullable=True))
    op.create_index("ix_staff_tokens_issue_key", "staff_tokens", ["issue_key"], unique=True)


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_staff_tokens_issue_key", "staff_tokens")
    op.drop_column("staff_tokens", "issue_key")
    op.drop_column("staff_tokens", "last_used_at")
