"""Who works which shift, and the swaps helpers offer each other. A shift is named by its key
(hub.schedule Shift.key: its start in UTC ISO form); its start is kept beside it, so the plan
can be read by time without regenerating shifts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base

SHIFT_KEY_LENGTH = 40


class ShiftSignup(Base):
    """A helper works a shift: signed up themselves, or assigned by a coordinator or admin."""

    __tablename__ = "shift_signups"

    helper_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    shift_key: Mapped[str] = mapped_column(String(SHIFT_KEY_LENGTH), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]
    assigned_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # When the helper was reminded of the shift (once per sign-up; a swap makes a new sign-up).
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)


class SwapStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"  # the proposer dropped the shift, or it moved on without this swap


class SwapProposal(Base):
    """A helper offers their shift to a named helper, optionally for one of that helper's shifts
    in return. Nothing changes until the other helper says yes."""

    __tablename__ = "shift_swaps"
    __table_args__ = (Index("ix_shift_swaps_to_status", "to_helper_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    from_helper_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    to_helper_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    offered_key: Mapped[str] = mapped_column(String(SHIFT_KEY_LENGTH))
    wanted_key: Mapped[str | None] = mapped_column(String(SHIFT_KEY_LENGTH), default=None)
    status: Mapped[str] = mapped_column(String(12), default=SwapStatus.PENDING)
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(default=None)


class ShiftFeed(Base):
    """What the secret in the address of a helper's own calendar feed is derived from, with the
    hub's secret key (hub.shifts.service.feed_token); a new nonce replaces the address."""

    __tablename__ = "shift_feeds"

    helper_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(64))
