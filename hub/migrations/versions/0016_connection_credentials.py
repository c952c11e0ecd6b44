"""connections.credential_id: the login or API token a socket was opened with, so revoking it
closes the socket too (before, only new connections were refused)

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-04 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_connections_credential_id"), ["credential_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_credential_id"))
        batch_op.drop_column("credential_id")
