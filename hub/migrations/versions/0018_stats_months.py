"""stats: each month's figures added up from its days, so a year reads a dozen rows, not 365

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 02:40:00.000000

Empty at first: the hub adds a month up from its days the first time a period covering the
whole month is read, and again whenever one of its days is rebuilt (a new `version` each time).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("asked", sa.LargeBinary(), nullable=False),
        sa.Column("helped", sa.LargeBinary(), nullable=False),
        sa.Column("twice", sa.LargeBinary(), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("site_asked", sa.LargeBinary(), nullable=False),
        sa.Column("waits", sa.LargeBinary(), nullable=False),
        sa.Column("lengths", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("month"),
    )
    op.create_table(
        "stats_month_cells",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("dim", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("few", sa.Integer(), nullable=False),
        sa.Column("students", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("month", "dim", "key"),
    )


def downgrade() -> None:
    op.drop_table("stats_month_cells")
    op.drop_table("stats_months")
