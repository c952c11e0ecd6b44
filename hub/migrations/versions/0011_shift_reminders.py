"""shift reminders: a helper's optional e-mail for them, and when each sign-up was reminded

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-05 12:00:00.000000

Sign-ups that exist get no mark: a shift starting within the reminder window when the hub is
upgraded is reminded once, as it would have been.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0011"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminder_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("reminder_language", sa.String(length=5), nullable=True))
    with op.batch_alter_table("shift_signups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminded_at", hub.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shift_signups", schema=None) as batch_op:
        batch_op.drop_column("reminded_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("reminder_language")
        batch_op.drop_column("reminder_email")
