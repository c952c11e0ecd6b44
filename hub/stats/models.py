"""What the statistics keep: one narrow row per finished help request (`StatsFact`), the day's
figures worked out from them (`StatsDay`, so a year is 365 rows to add up, not 500,000 requests),
and the requests that changed since (`StatsDirty`, filled by database triggers, see migration 0012).

A fact holds no note, no chat and no name: only what the dashboard counts. While the student's
account exists, `student_key` is their user id and `request_id` links the fact to the request;
when the account is deleted (a kiosk visit past the retention period, or a student who deleted
their account) both links are dropped: the key becomes a random number, the same for all of that
student's facts (so they still count as one student's), and nothing leads back to the account."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base


class StatsFact(Base):
    __tablename__ = "stats_facts"
    __table_args__ = (
        Index("ix_stats_facts_day_site", "day", "site_id"),
        Index("ix_stats_facts_site_day", "site_id", "day"),  # one site's period
        Index("ix_stats_facts_student_key", "student_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The live request, until the student's account is deleted.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("help_requests.id", ondelete="SET NULL"), unique=True, default=None
    )
    day: Mapped[date]  # the café's day it was asked on (Europe/Copenhagen)
    asked_at: Mapped[datetime]
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("sites.id", ondelete="SET NULL"), default=None
    )
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("subjects.id", ondelete="SET NULL"), default=None
    )
    grade: Mapped[int]
    channel: Mapped[str] = mapped_column(String(8))  # kiosk | home
    outcome: Mapped[str] = mapped_column(String(12))  # a RequestStatus other than waiting
    wait_s: Mapped[int]  # whole seconds
    session_s: Mapped[int | None] = mapped_column(default=None)  # whole seconds, once ended
    helper_organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), default=None
    )
    student_rating: Mapped[int | None] = mapped_column(default=None)
    helper_rating: Mapped[int | None] = mapped_column(default=None)
    # The user id while the account exists; afterwards a random negative number.
    student_key: Mapped[int] = mapped_column(BigInteger)


class StatsDay(Base):
    """One day's figures, all sites together, in a form that adds up over days exactly
    (`hub.stats.service.Cells`), beside its bars in `StatsDayCell`: the students who asked, per
    site, and who had a session (int64 arrays), and the waits and session lengths as histograms
    of whole seconds (for exact medians), each a dense array of uint32 counts, so that the days of
    a period add up as one big integer each."""

    __tablename__ = "stats_days"

    day: Mapped[date] = mapped_column(primary_key=True)
    # Bitmaps of `StatsNumber`s (bit n: byte n // 8, bit n % 8): who asked, who had a session
    # (global numbers), and who asked at each site (that site's numbers, one after the other,
    # `sites` giving [[site id or 0, bytes], ...]).
    asked: Mapped[bytes] = mapped_column(LargeBinary)
    helped: Mapped[bytes] = mapped_column(LargeBinary)
    sites: Mapped[str] = mapped_column(Text)
    site_asked: Mapped[bytes] = mapped_column(LargeBinary)
    waits: Mapped[bytes] = mapped_column(LargeBinary)
    lengths: Mapped[bytes] = mapped_column(LargeBinary)


class StatsDayCell(Base):
    """One bar or count of one day (all sites): requests, a sum (seconds or ratings), and up to
    five of the students behind it, all small-cell suppression needs; the database adds these up
    over a period (GROUP BY dim, key)."""

    __tablename__ = "stats_day_cells"

    day: Mapped[date] = mapped_column(primary_key=True)
    dim: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # JSON of the key
    n: Mapped[int]
    total: Mapped[float]
    few: Mapped[int]  # how many students are in `students` (at most five)
    students: Mapped[str] = mapped_column(Text)  # their keys, space-separated


class StatsNumber(Base):
    """A small number for each student in the statistics, once overall (scope -1) and once per
    site they asked at (scope: the site's id, 0 without one), so the days can keep who asked
    as bitmaps that a period ORs together (exact distinct counts at the speed of integers).
    The key changes with the facts' when an account is deleted; the number does not lead back."""

    __tablename__ = "stats_numbers"
    __table_args__ = (Index("ix_stats_numbers_scope_number", "scope", "number", unique=True),)

    scope: Mapped[int] = mapped_column(primary_key=True)
    student_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)
    number: Mapped[int]


class StatsDirty(Base):
    """A request whose fact may be out of date: the triggers add one row whenever a finished
    request, its room or its feedback is written; `hub.stats.service.refresh` works them off."""

    __tablename__ = "stats_dirty"

    seq: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int]


class StatsMonth(Base):
    """One calendar month's figures, all sites, added up from its days (`StatsDay`, the same
    columns) so that a year reads a dozen rows instead of 365, beside its bars in
    `StatsMonthCell`. `twice`: who had sessions on more than one day of the month (returning
    students). A month is added up the first time a period covering all of it is read, and again
    in the transaction that rebuilds one of its days (`hub.stats.service.rebuild_days`)."""

    __tablename__ = "stats_months"

    month: Mapped[date] = mapped_column(primary_key=True)  # its first day
    # New (random) each time the month is added up: what a hub process computed from the month's
    # facts of one site is still right while the version it was computed at is.
    version: Mapped[int] = mapped_column(BigInteger)
    asked: Mapped[bytes] = mapped_column(LargeBinary)
    helped: Mapped[bytes] = mapped_column(LargeBinary)
    twice: Mapped[bytes] = mapped_column(LargeBinary)
    sites: Mapped[str] = mapped_column(Text)
    site_asked: Mapped[bytes] = mapped_column(LargeBinary)
    waits: Mapped[bytes] = mapped_column(LargeBinary)
    lengths: Mapped[bytes] = mapped_column(LargeBinary)


class StatsMonthCell(Base):
    """One bar or count of one month (all sites), the sum of its days' `StatsDayCell`s: `few` is
    how many students are behind it up to MIN_STUDENTS, and `students` lists them only when there
    are fewer (a period's small cells need them; a cell with enough students is enough anyway)."""

    __tablename__ = "stats_month_cells"

    month: Mapped[date] = mapped_column(primary_key=True)
    dim: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int]
    total: Mapped[float]
    few: Mapped[int]
    students: Mapped[str] = mapped_column(Text)
