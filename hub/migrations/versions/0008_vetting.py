"""vetting: partner organisations' profiles and helper vetting

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:50:00.000000

Organisations that exist were made by admins, so they count as screened (approved). Helpers
already approved had their certificate checked under the old rule, which kept no date: they get
their account's creation date as the check date (a check cannot have come before the account, so
this never makes a certificate look newer than it is), the introduction as done and the welcome
page as read, so they can go on duty as before; the oldest are warned first and checked again
within two years.
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CERTIFICATE_VALID = timedelta(days=2 * 365)  # hub.config's default when this was written


def upgrade() -> None:
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("offers", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("approved", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("certificate_checked_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("certificate_expires_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("introduction_done", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("welcome_seen", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    connection = op.get_bind()
    organisations = sa.table("organisations", sa.column("approved", sa.Boolean()))
    connection.execute(organisations.update().values(approved=True))
    users = sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("role", sa.String()),
        sa.column("approved", sa.Boolean()),
        sa.column("created_at", hub.db.UTCDateTime()),
        sa.column("certificate_checked_on", sa.Date()),
        sa.column("certificate_expires_on", sa.Date()),
        sa.column("introduction_done", sa.Boolean()),
        sa.column("welcome_seen", sa.Boolean()),
    )
    approved_helpers = sa.select(users.c.id, users.c.created_at).where(
        users.c.role == "helper", users.c.approved.is_(True)
    )
    for user_id, created_at in connection.execute(approved_helpers).all():
        checked_on = created_at.date()
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(
                certificate_checked_on=checked_on,
                certificate_expires_on=checked_on + CERTIFICATE_VALID,
                introduction_done=True,
                welcome_seen=True,  # they are already helping; no need to send them there
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("welcome_seen")
        batch_op.drop_column("introduction_done")
        batch_op.drop_column("certificate_expires_on")
        batch_op.drop_column("certificate_checked_on")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("approved")
        batch_op.drop_column("offers")
