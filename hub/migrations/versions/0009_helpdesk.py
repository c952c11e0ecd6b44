"""helpdesk: helpdesk tickets and replies

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "helpdesk_tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("category", sa.String(length=12), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("page", sa.String(length=200), nullable=False),
        sa.Column("browser", sa.String(length=200), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("follow_code_hash", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("client_ref", sa.String(length=40), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("closed_at", hub.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "client_ref"),
        sa.UniqueConstraint("follow_code_hash"),
        sa.UniqueConstraint("report_id"),
    )
    with op.batch_alter_table("helpdesk_tickets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_helpdesk_tickets_closed_at"), ["closed_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_helpdesk_tickets_reporter_id"), ["reporter_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_helpdesk_tickets_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_helpdesk_tickets_status"), ["status"], unique=False)

    op.create_table(
        "helpdesk_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["ticket_id"], ["helpdesk_tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("helpdesk_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_helpdesk_replies_ticket_id"), ["ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("helpdesk_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_helpdesk_replies_ticket_id"))
    op.drop_table("helpdesk_replies")
    with op.batch_alter_table("helpdesk_tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_helpdesk_tickets_status"))
        batch_op.drop_index(batch_op.f("ix_helpdesk_tickets_site_id"))
        batch_op.drop_index(batch_op.f("ix_helpdesk_tickets_reporter_id"))
        batch_op.drop_index(batch_op.f("ix_helpdesk_tickets_closed_at"))
    op.drop_table("helpdesk_tickets")
