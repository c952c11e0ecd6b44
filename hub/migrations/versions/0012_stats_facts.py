"""stats: one fact per finished request, the day's figures, and triggers that mark changes

Revision ID: 0012
Revises: 0014
Create Date: 2026-12-03 18:15:00.000000

The anonymous rows of `stats_archived_requests` become facts without a request (their keys
random negative numbers, one per former key); every finished live request is marked dirty (and, if
there were archived rows, -1: every day), so the hub builds the facts and the days' figures the
first time the statistics are read.
"""

import secrets
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import hub.db

revision: str = "0012"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMEZONE = ZoneInfo("Europe/Copenhagen")

# (trigger name, table, event, the request id it marks, condition)
MARKS = [
    ("stats_request_insert", "help_requests", "INSERT", "NEW.id", "NEW.ended_at IS NOT NULL"),
    (
        "stats_request_update",
        "help_requests",
        "UPDATE",
        "NEW.id",
        "NEW.ended_at IS NOT NULL OR OLD.ended_at IS NOT NULL",
    ),
    ("stats_room_insert", "rooms", "INSERT", "NEW.request_id", None),
    ("stats_room_update", "rooms", "UPDATE", "NEW.request_id", None),
    ("stats_feedback_insert", "feedback", "INSERT", None, None),
    ("stats_feedback_update", "feedback", "UPDATE", None, None),
]
FEEDBACK_REQUEST = "(SELECT request_id FROM rooms WHERE rooms.id = NEW.room_id)"


def _create_triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, table, event, request, condition in MARKS:
        value = request or FEEDBACK_REQUEST
        if sqlite:
            when = f" WHEN {condition}" if condition else ""
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} BEGIN "
                f"INSERT INTO stats_dirty (request_id) SELECT {value} WHERE {value} IS NOT NULL; "
                "END"
            )
            continue
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO stats_dirty (request_id) SELECT {value} WHERE {value} IS NOT NULL; "
            "RETURN NULL; END $$"
        )
        when = f" WHEN ({condition})" if condition else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} "
            f"EXECUTE FUNCTION {name}()"
        )


def _drop_triggers() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, table, _event, _request, _condition in MARKS:
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def upgrade() -> None:
    facts = op.create_table(
        "stats_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("asked_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("wait_s", sa.Integer(), nullable=False),
        sa.Column("session_s", sa.Integer(), nullable=True),
        sa.Column("helper_organisation_id", sa.Integer(), nullable=True),
        sa.Column("student_rating", sa.Integer(), nullable=True),
        sa.Column("helper_rating", sa.Integer(), nullable=True),
        sa.Column("student_key", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["help_requests.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["helper_organisation_id"], ["organisations.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_stats_facts_day_site", "stats_facts", ["day", "site_id"])
    op.create_index("ix_stats_facts_site_day", "stats_facts", ["site_id", "day"])
    op.create_index("ix_stats_facts_student_key", "stats_facts", ["student_key"])
    # A fact joins its request's room; without this every refresh scanned all rooms.
    op.create_index("ix_rooms_request_id", "rooms", ["request_id"])
    op.create_table(
        "stats_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("asked", sa.LargeBinary(), nullable=False),
        sa.Column("helped", sa.LargeBinary(), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("site_asked", sa.LargeBinary(), nullable=False),
        sa.Column("waits", sa.LargeBinary(), nullable=False),
        sa.Column("lengths", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "stats_day_cells",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dim", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("few", sa.Integer(), nullable=False),
        sa.Column("students", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day", "dim", "key"),
    )
    op.create_table(
        "stats_numbers",
        sa.Column("scope", sa.Integer(), nullable=False),
        sa.Column("student_key", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "student_key"),
    )
    op.create_index("ix_stats_numbers_student_key", "stats_numbers", ["student_key"])
    op.create_index(
        "ix_stats_numbers_scope_number", "stats_numbers", ["scope", "number"], unique=True
    )
    op.create_table(
        "stats_dirty",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )

    # The archive becomes facts without a request.
    bind = op.get_bind()
    old = sa.table(
        "stats_archived_requests",
        sa.column("asked_at", hub.db.UTCDateTime()),
        *(
            sa.column(c)
            for c in [
                "site_id",
                "subject_id",
                "grade",
                "channel",
                "outcome",
                "wait_s",
                "session_s",
                "helper_organisation_id",
                "student_rating",
                "helper_rating",
                "student_key",
            ]
        ),
    )
    keys: dict[str, int] = {}
    rows = []
    for row in bind.execute(sa.select(old)).mappings():
        asked = row["asked_at"]
        key = keys.setdefault(row["student_key"], -1 - secrets.randbits(62))
        rows.append(
            {
                **row,
                "asked_at": asked,
                "day": asked.astimezone(TIMEZONE).date(),
                "wait_s": round(row["wait_s"]),
                "session_s": None if row["session_s"] is None else round(row["session_s"]),
                "student_key": key,
            }
        )
    if rows:
        op.bulk_insert(facts, rows)
    op.drop_table("stats_archived_requests")
    op.execute(
        "INSERT INTO stats_dirty (request_id) SELECT id FROM help_requests "
        "WHERE ended_at IS NOT NULL AND status != 'waiting'"
    )
    if rows:  # -1: the hub rebuilds the figures of every day with facts (service.EVERY_DAY)
        op.execute("INSERT INTO stats_dirty (request_id) VALUES (-1)")
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_index("ix_rooms_request_id", table_name="rooms")
    op.drop_table("stats_dirty")
    op.drop_table("stats_day_cells")
    op.drop_index("ix_stats_numbers_scope_number", table_name="stats_numbers")
    op.drop_index("ix_stats_numbers_student_key", table_name="stats_numbers")
    op.drop_table("stats_numbers")
    op.drop_table("stats_days")
    op.drop_index("ix_stats_facts_student_key", table_name="stats_facts")
    op.drop_index("ix_stats_facts_site_day", table_name="stats_facts")
    op.drop_index("ix_stats_facts_day_site", table_name="stats_facts")
    op.drop_table("stats_facts")
    # The archive comes back empty: the facts of deleted accounts are not turned back.
    op.create_table(
        "stats_archived_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("asked_at", hub.db.UTCDateTime(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("wait_s", sa.Double(), nullable=False),
        sa.Column("session_s", sa.Double(), nullable=True),
        sa.Column("helper_organisation_id", sa.Integer(), nullable=True),
        sa.Column("student_rating", sa.Integer(), nullable=True),
        sa.Column("helper_rating", sa.Integer(), nullable=True),
        sa.Column("student_key", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["helper_organisation_id"], ["organisations.id"], ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stats_archived_requests_asked_at", "stats_archived_requests", ["asked_at"])
