"""schedule: opening hours, closed days and shifts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_opening_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("schedule_opening_hours", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schedule_opening_hours_weekday"), ["weekday"], unique=False
        )
    op.create_table(
        "schedule_closed_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("schedule_closed_days")
    with op.batch_alter_table("schedule_opening_hours", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_opening_hours_weekday"))
    op.drop_table("schedule_opening_hours")
