"""shifts: helpers' shift sign-ups and swaps

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shift_signups",
        sa.Column("helper_id", sa.Integer(), nullable=False),
        sa.Column("shift_key", sa.String(length=40), nullable=False),
        sa.Column("starts_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("assigned_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["assigned_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("helper_id", "shift_key"),
    )
    with op.batch_alter_table("shift_signups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shift_signups_starts_at"), ["starts_at"], unique=False)
    op.create_table(
        "shift_swaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_helper_id", sa.Integer(), nullable=False),
        sa.Column("to_helper_id", sa.Integer(), nullable=False),
        sa.Column("offered_key", sa.String(length=40), nullable=False),
        sa.Column("wanted_key", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("answered_at", hub.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["from_helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["to_helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shift_swaps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shift_swaps_from_helper_id"), ["from_helper_id"], unique=False
        )
        batch_op.create_index("ix_shift_swaps_to_status", ["to_helper_id", "status"], unique=False)
    op.create_table(
        "shift_feeds",
        sa.Column("helper_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["helper_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("helper_id"),
        sa.UniqueConstraint("token"),
    )


def downgrade() -> None:
    op.drop_table("shift_feeds")
    with op.batch_alter_table("shift_swaps", schema=None) as batch_op:
        batch_op.drop_index("ix_shift_swaps_to_status")
        batch_op.drop_index(batch_op.f("ix_shift_swaps_from_helper_id"))
    op.drop_table("shift_swaps")
    with op.batch_alter_table("shift_signups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shift_signups_starts_at"))
    op.drop_table("shift_signups")
