"""Matching state. It lives only here, in the database, so several hub processes can share it
and a restart loses nothing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class RequestStatus(StrEnum):
    WAITING = "waiting"
    MATCHED = "matched"
    CANCELLED = "cancelled"
    LEFT = "left"  # the student was gone longer than the grace period


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the request or the helper went away while it was pending


class DutyStatus(StrEnum):
    OFF = "off"
    AVAILABLE = "available"
    PAUSED = "paused"
    BUSY = "busy"  # in a room


class HelpRequest(Base):
    __tablename__ = "help_requests"
    __table_args__ = (Index("ix_help_requests_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"))
    grade: Mapped[int]
    language_code: Mapped[str | None] = mapped_column(ForeignKey("languages.code"), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=RequestStatus.WAITING)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set while the student has no open connection; the request leaves after a grace period.
    offline_since: Mapped[datetime | None] = mapped_column(default=None)
    # What the student was last told, so only changes are sent.
    told_position: Mapped[int | None] = mapped_column(default=None)
    told_eta_s: Mapped[int | None] = mapped_column(default=None)


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_status_expires", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("help_requests.id", ondelete="CASCADE"), index=True
    )
    helper_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=OfferStatus.PENDING)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(default=None)


class HelperDuty(Base):
    __tablename__ = "helper_duty"

    helper_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(12), default=DutyStatus.OFF, index=True)
    # When the helper last became free: the helper idle longest is offered first.
    idle_since: Mapped[datetime]
