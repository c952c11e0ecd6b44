"""shift_feeds.nonce: a helper's calendar address is derived from a nonce and the hub's secret key,
so the database no longer holds the address's secret (existing addresses change once: the helper's
shifts page shows the new one)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("shift_feeds")  # every address changes anyway: nothing in it is worth keeping
    op.create_table(
        "shift_feeds",
        sa.Column("helper_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("helper_id"),
    )


def downgrade() -> None:
    op.drop_table("shift_feeds")
    op.create_table(
        "shift_feeds",
        sa.Column("helper_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("helper_id"),
        sa.UniqueConstraint("token"),
    )
