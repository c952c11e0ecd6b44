"""data rights: the audit log, and what of an ended room's content each retention period deleted

Chat, shared document and attachments now have a retention period each, so a room records when
each was deleted instead of one content_deleted_at.

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0010"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("chat_deleted_at", "document_deleted_at", "attachments_deleted_at")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=12), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entries_actor_id"), ["actor_id"], unique=False)
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        for name in KINDS:
            batch_op.add_column(sa.Column(name, hub.db.UTCDateTime(), nullable=True))
    rooms = sa.table("rooms", *(sa.column(n) for n in (*KINDS, "content_deleted_at")))
    op.execute(
        rooms.update()
        .where(rooms.c.content_deleted_at.is_not(None))
        .values({name: rooms.c.content_deleted_at for name in KINDS})
    )
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_column("content_deleted_at")


def downgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_deleted_at", hub.db.UTCDateTime(), nullable=True))
    rooms = sa.table("rooms", *(sa.column(n) for n in (*KINDS, "content_deleted_at")))
    op.execute(
        rooms.update()
        .where(rooms.c.chat_deleted_at.is_not(None))
        .values(content_deleted_at=rooms.c.chat_deleted_at)
    )
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        for name in reversed(KINDS):
            batch_op.drop_column(name)
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_action"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))
    op.drop_table("audit_entries")
