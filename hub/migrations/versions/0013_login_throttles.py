"""login throttle: wrong passwords per address and account, per address and per account

Replaces login_failures (per username only, which let anyone lock a helper out).

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", hub.db.UTCDateTime(), nullable=False),
        sa.Column("last_at", hub.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_throttles_account"), ["account"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_throttles_last_at"), ["last_at"], unique=False)
    # Only recent failures were kept there (a day at most): nothing worth carrying over.
    op.drop_table("login_failures")


def downgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", hub.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_last_at"))
        batch_op.drop_index(batch_op.f("ix_login_throttles_account"))
    op.drop_table("login_throttles")
