"""What the statistics keep after the raw rows are gone: one anonymous row per help request of a
student whose account was deleted (a kiosk visit past the retention period, or a student who
deleted their account). No user id, no note, no chat: only what the dashboard counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class ArchivedRequest(Base):
    __tablename__ = "stats_archived_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(index=True)
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="SET NULL"), default=None
    )
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("subjects.id", ondelete="SET NULL"), default=None
    )
    grade: Mapped[int]
    channel: Mapped[str] = mapped_column(String(8))  # kiosk | home
    outcome: Mapped[str] = mapped_column(String(12))  # a RequestStatus other than waiting
    wait_s: Mapped[float]
    session_s: Mapped[float | None] = mapped_column(default=None)
    helper_organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), default=None
    )
    student_rating: Mapped[int | None] = mapped_column(default=None)
    helper_rating: Mapped[int | None] = mapped_column(default=None)
    # Random, made when the student was archived: their requests count as one student's (for
    # "returning" and for small-cell suppression), but nothing leads back to the account.
    student_key: Mapped[str] = mapped_column(String(32))
