"""Opening hours as blocks of local wall-clock time per weekday, and closed days (holidays).
Times are the café's local time (config `timezone`), so 15:00 stays 15:00 across a DST change."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base

WEEKDAYS = range(7)  # Monday is 0, as in date.weekday()


class OpeningHours(Base):
    """One block of opening time on a weekday, e.g. Monday 15:00–18:00; one shift each week."""

    __tablename__ = "schedule_opening_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column(index=True)
    opens: Mapped[time]
    closes: Mapped[time]  # later than opens on the same day


class ClosedDay(Base):
    """A date the café stays closed whatever its opening hours say."""

    __tablename__ = "schedule_closed_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
