"""Helpdesk tickets and the replies on them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class TicketKind(StrEnum):
    PROBLEM = "problem"  # opened from a page or a kiosk
    REPORT = "report"  # a report made from a room (hub.rooms), mirrored here


class TicketStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class Ticket(Base):
    """One problem someone reported. `site_id` is what site staff see it by (the kiosk's site, or
    the reporter's); `organisation_id` (reports only) is whose coordinators see it. A ticket
    opened without an account has no reporter, only the hash of the code shown to them once."""

    __tablename__ = "helpdesk_tickets"
    __table_args__ = (UniqueConstraint("device_id", "client_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default=TicketKind.PROBLEM)
    status: Mapped[str] = mapped_column(String(12), default=TicketStatus.OPEN, index=True)
    category: Mapped[str] = mapped_column(String(12))
    text: Mapped[str] = mapped_column(Text, default="")
    page: Mapped[str] = mapped_column(String(200), default="")  # a path, never a query string
    browser: Mapped[str] = mapped_column(String(200), default="")  # the User-Agent
    reporter_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    follow_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), default=None
    )
    client_ref: Mapped[str | None] = mapped_column(String(40), default=None)  # a kiosk's resend
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="SET NULL"), index=True, default=None
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), default=None
    )
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), unique=True, default=None
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class TicketReply(Base):
    __tablename__ = "helpdesk_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("helpdesk_tickets.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
