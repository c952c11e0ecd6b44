"""The figures for the evaluation: plain functions from the hub's tables to a `Dashboard` that the
page, its charts and the CSV export all show, with the same small cells suppressed.

Every figure is computed from a group of help requests. It is shown only if the group holds no
student or at least `MIN_STUDENTS` of them; otherwise it reads "<5". Where the rows of a table add
up to a total shown elsewhere, further rows are hidden, smallest first, until the hidden ones
together hold at least `MIN_STUDENTS` students, so no small figure can be worked out by
subtraction (complementary suppression; `protect`). The summary's number of requests is hidden
when, with the sessions shown, it would give away a small number of given-up or left requests.

Requests of students whose account has gone (a kiosk visit past the retention period, a student
who deleted their account) are kept as anonymous `ArchivedRequest` rows (`archive_student`), so
the figures of a past period do not change when the raw rows are deleted.
"""

from __future__ import annotations

import math
import secrets
import statistics
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import Select, String, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from hub.accounts.models import Organisation, Role, Site, User
from hub.catalog.models import GRADES, Subject
from hub.devices.models import KioskVisit
from hub.matching.models import HelpRequest, RequestStatus
from hub.rooms.models import Feedback, Room
from hub.stats.models import ArchivedRequest

MIN_STUDENTS = 5
# Days in the statistics are the café's days, not UTC's.
TIMEZONE = ZoneInfo("Europe/Copenhagen")
LONGEST_PERIOD = timedelta(days=731)

KIOSK, HOME = "kiosk", "home"


# ---------------------------------------------------------------------------------------------
# One fact per finished help request, from the live tables or the archive


@dataclass(frozen=True)
class Fact:
    asked_at: datetime
    site_id: int | None
    subject_id: int | None
    grade: int
    channel: str  # KIOSK | HOME
    outcome: str  # matched | cancelled | left
    wait_s: float  # until matched, or until the student gave up or left
    session_s: float | None  # the room's length, once it has ended
    helper_organisation_id: int | None
    student_rating: int | None
    helper_rating: int | None
    student_key: str  # the same for all requests of one student, and nothing more

    @cached_property
    def day(self) -> date:
        """The café's day it was asked on (once: the dashboard groups by it often)."""
        return local_day(self.asked_at)


FACT_FIELDS = tuple(Fact.__dataclass_fields__)


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    """`later - earlier` in seconds, computed by the database (much cheaper than in Python)."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _live_query(dialect: str) -> Select:
    """One row per finished request, its columns named as `Fact`'s fields."""
    student, helper = aliased(User), aliased(User)
    by_student, by_helper = aliased(Feedback), aliased(Feedback)
    return (
        select(
            HelpRequest.created_at.label("asked_at"),
            student.site_id.label("site_id"),
            HelpRequest.subject_id.label("subject_id"),
            HelpRequest.grade.label("grade"),
            case((KioskVisit.id.is_not(None), KIOSK), else_=HOME).label("channel"),
            HelpRequest.status.label("outcome"),
            _seconds(HelpRequest.ended_at, HelpRequest.created_at, dialect).label("wait_s"),
            _seconds(Room.ended_at, Room.created_at, dialect).label("session_s"),
            helper.organisation_id.label("helper_organisation_id"),
            by_student.rating.label("student_rating"),
            by_helper.rating.label("helper_rating"),
            (literal("u") + cast(HelpRequest.student_id, String)).label("student_key"),
        )
        .join(student, student.id == HelpRequest.student_id)
        .outerjoin(KioskVisit, KioskVisit.user_id == HelpRequest.student_id)
        .outerjoin(Room, Room.request_id == HelpRequest.id)
        .outerjoin(helper, helper.id == Room.helper_id)
        .outerjoin(
            by_student, (by_student.room_id == Room.id) & (by_student.role == Role.STUDENT.value)
        )
        .outerjoin(
            by_helper, (by_helper.room_id == Room.id) & (by_helper.role == Role.HELPER.value)
        )
        .where(HelpRequest.status != RequestStatus.WAITING, HelpRequest.ended_at.is_not(None))
    )


def _archived_query() -> Select:
    return select(*(getattr(ArchivedRequest, name) for name in FACT_FIELDS))


def _fact(row: Any) -> Fact:
    """A row of either query (its columns in `FACT_FIELDS` order) as a Fact."""
    asked, site, subject, grade, channel, outcome, wait_s, session_s, *rest = row
    # Whole milliseconds: SQLite's julianday arithmetic is off by microseconds.
    wait_s = round(float(wait_s), 3)
    session_s = None if session_s is None else round(float(session_s), 3)
    return Fact(asked, site, subject, grade, channel, outcome, wait_s, session_s, *rest)


def facts(s: Session, start: datetime, end: datetime, site_id: int | None) -> list[Fact]:
    """The finished requests asked in [start, end), at one site or all: live and archived."""
    live = _live_query(s.get_bind().dialect.name)
    live = live.where(HelpRequest.created_at >= start, HelpRequest.created_at < end)
    archived = _archived_query().where(
        ArchivedRequest.asked_at >= start, ArchivedRequest.asked_at < end
    )
    if site_id is not None:
        live = live.where(live.selected_columns.site_id == site_id)
        archived = archived.where(ArchivedRequest.site_id == site_id)
    connection = s.connection()
    return [_fact(row) for query in (live, archived) for row in connection.execute(query)]


def archive_student(s: Session, user_id: int) -> int:
    """Keep the finished requests of a student about to be deleted as anonymous rows. Call it in
    the transaction that deletes the account. Returns how many were kept."""
    key = secrets.token_hex(16)
    query = _live_query(s.get_bind().dialect.name).where(HelpRequest.student_id == user_id)
    kept = [replace(_fact(row), student_key=key) for row in s.execute(query)]
    s.add_all(ArchivedRequest(**{f: getattr(fact, f) for f in FACT_FIELDS}) for fact in kept)
    s.flush()
    return len(kept)


# ---------------------------------------------------------------------------------------------
# Periods


@dataclass(frozen=True)
class Period:
    """Whole days, `first` to `last` inclusive, in the café's time zone."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), TIMEZONE).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), TIMEZONE).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @classmethod
    def ending(cls, last: date, days: int = 30) -> Period:
        return cls(last - timedelta(days=days - 1), last)


def local_day(moment: datetime) -> date:
    return moment.astimezone(TIMEZONE).date()


def week_of(day: date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


# ---------------------------------------------------------------------------------------------
# Figures and their suppression


class Unit(StrEnum):
    COUNT = "count"
    MINUTES = "minutes"
    HOURS = "hours"
    RATING = "rating"


class Hidden(StrEnum):
    SMALL = "small"  # fewer than MIN_STUDENTS students
    COMPLEMENT = "complement"  # would give away a small cell beside it


@dataclass(frozen=True)
class Figure:
    value: float | None  # None: nothing to compute it from (e.g. the median of no sessions)
    unit: Unit
    hidden: Hidden | None = None

    @classmethod
    def of(cls, value: float | None, students: int, unit: Unit = Unit.COUNT) -> Figure:
        small = 0 < students < MIN_STUDENTS
        return cls(value, unit, Hidden.SMALL if small else None)

    def csv(self) -> str:
        """As the CSV export writes it: plain numbers, or what stands in for a hidden one."""
        if self.hidden is not None:
            return self._stand_in()
        if self.value is None:
            return ""
        return str(int(self.value)) if self.unit == Unit.COUNT else f"{self.value:.1f}"

    def shown(self) -> str:
        """As the page shows it, in the page's language."""
        if self.hidden is not None:
            return self._stand_in()
        if self.value is None:
            return "–"
        if self.unit == Unit.COUNT:
            return str(int(self.value))
        return str(format_decimal(self.value, format="0.0"))

    def _stand_in(self) -> str:
        return f"<{MIN_STUDENTS}" if self.hidden == Hidden.SMALL else _("hidden")

    @property
    def drawn(self) -> float:
        """The length of its bar: none for a hidden figure."""
        return 0.0 if self.hidden is not None or self.value is None else self.value


@dataclass(frozen=True)
class Row:
    key: str  # stable, for the CSV (a date, a grade, a site's name)
    label: str
    figure: Figure
    students: int  # behind the figure; not shown


@dataclass(frozen=True)
class Breakdown:
    name: str  # for the CSV and the page's anchors
    title: str
    unit: Unit
    rows: list[Row]

    @property
    def largest(self) -> float:
        return max((r.figure.drawn for r in self.rows), default=0.0) or 1.0


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    figure: Figure


@dataclass(frozen=True)
class Dashboard:
    period: Period
    site_id: int | None
    by: str  # day | week
    summary: list[Measure]
    breakdowns: list[Breakdown]

    def csv_rows(self) -> list[tuple[str, str, str, str]]:
        """(table, key, label, value) for every figure on the page."""
        rows = [("summary", m.name, m.label, m.figure.csv()) for m in self.summary]
        for b in self.breakdowns:
            rows += [(b.name, r.key, r.label, r.figure.csv()) for r in b.rows]
        return rows


def protect(rows: list[Row]) -> list[Row]:
    """Complementary suppression, for rows that add up to a total shown elsewhere: while the
    hidden rows together hold fewer than MIN_STUDENTS students, also hide the smallest visible
    non-zero row, so the total minus the visible rows gives no small figure away."""
    hidden = [r for r in rows if r.figure.hidden == Hidden.SMALL]
    while hidden and sum(r.students for r in hidden) < MIN_STUDENTS:
        visible = [r for r in rows if r.figure.hidden is None and r.figure.value]
        if not visible:
            break
        partner = min(visible, key=lambda r: r.figure.drawn)
        replaced = replace(partner, figure=replace(partner.figure, hidden=Hidden.COMPLEMENT))
        rows = [replaced if r is partner else r for r in rows]
        hidden.append(replaced)
    return rows


# ---------------------------------------------------------------------------------------------
# Computing the dashboard


def students(group: Iterable[Fact]) -> int:
    return len({f.student_key for f in group})


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value at least 90% are not above."""
    if not values:
        return None
    return sorted(values)[math.ceil(0.9 * len(values)) - 1]


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


@dataclass(frozen=True)
class Names:
    """What the tables call sites, subjects and organisations, in the reader's language."""

    sites: dict[int, str]
    subjects: dict[int, str]
    organisations: dict[int, str]

    @classmethod
    def load(cls, s: Session, locale: str) -> Names:
        return cls(
            sites={x.id: x.name for x in s.scalars(select(Site).order_by(Site.name))},
            subjects={x.id: x.name(locale) for x in s.scalars(select(Subject))},
            organisations={
                x.id: x.name for x in s.scalars(select(Organisation).order_by(Organisation.name))
            },
        )


def _minutes(seconds: Iterable[float]) -> list[float]:
    return [x / 60 for x in seconds]


Group = tuple[str, str, list[Fact]]  # key, label, the facts


def _breakdown(
    name: str,
    title: str,
    groups: Iterable[Group],
    measure: Callable[[list[Fact]], float] = len,
    unit: Unit = Unit.COUNT,
    adds_up: bool = True,
) -> Breakdown:
    """`adds_up`: the rows add up to a total shown elsewhere, so `protect` them."""
    rows = []
    for key, label, group in groups:
        behind = students(group)
        rows.append(Row(key, label, Figure.of(measure(group), behind, unit), behind))
    return Breakdown(name, title, unit, protect(rows) if adds_up else rows)


def _grouped(facts: list[Fact], key: Callable[[Fact], Any], labels: dict[Any, str]) -> list[Group]:
    """One group per label (in the labels' order), also when empty; facts of other keys dropped."""
    by_key: dict[Any, list[Fact]] = {k: [] for k in labels}
    for f in facts:
        found = by_key.get(key(f))
        if found is not None:
            found.append(f)
    return [(str(k), labels[k], by_key[k]) for k in labels]


def _banded(facts: list[Fact], value: Callable[[Fact], float], bands: Sequence[int]) -> list[Group]:
    """Groups by minutes: [0, b1), [b1, b2), … and the last band upwards."""
    inside: list[list[Fact]] = [[] for _band in bands]
    for f in facts:
        inside[max(0, bisect_right(bands, value(f) / 60) - 1)].append(f)
    groups: list[Group] = []
    for low, high, group in zip(bands, [*bands[1:], None], inside, strict=True):
        label = (
            _("%(low)d–%(high)d min", low=low, high=high)
            if high is not None
            else _("%(low)d min or more", low=low)
        )
        groups.append((f"{low}-{high or ''}", label, group))
    return groups


WAIT_BANDS = (0, 2, 5, 10, 20)
LENGTH_BANDS = (0, 10, 20, 30, 45)


def dashboard(
    facts: list[Fact], period: Period, site_id: int | None, by: str, names: Names
) -> Dashboard:
    """Every figure of the dashboard for `facts` (already those of the period and site)."""
    sessions = [f for f in facts if f.outcome == RequestStatus.MATCHED]
    ended = [f for f in sessions if f.session_s is not None]
    gave_up = [f for f in facts if f.outcome == RequestStatus.CANCELLED]
    left = [f for f in facts if f.outcome == RequestStatus.LEFT]
    rated_by_students = [f for f in sessions if f.student_rating is not None]
    rated_by_helpers = [f for f in sessions if f.helper_rating is not None]
    waits = _minutes(f.wait_s for f in sessions)
    lengths = _minutes(f.session_s for f in ended if f.session_s is not None)
    days_by_student: dict[str, set[date]] = {}
    for f in sessions:
        days_by_student.setdefault(f.student_key, set()).add(f.day)
    returning = sum(1 for days in days_by_student.values() if len(days) > 1)

    def hours(group: list[Fact]) -> float:
        return sum(f.session_s or 0.0 for f in group) / 3600

    # Distinct students of the main groups, counted once.
    asked, helped, timed = students(facts), students(sessions), students(ended)
    summary = [
        Measure("requests", _("Requests for help"), _requests_total(facts, gave_up, left, asked)),
        Measure("sessions", _("Sessions with a helper"), Figure.of(len(sessions), helped)),
        Measure("students", _("Students who asked"), Figure.of(asked, asked)),
        Measure(
            "returning_students",
            _("Students who came back on another day"),
            Figure.of(returning, returning),
        ),
        Measure(
            "wait_median_minutes",
            _("Wait until matched, median (minutes)"),
            Figure.of(median(waits), helped, Unit.MINUTES),
        ),
        Measure(
            "wait_p90_minutes",
            _("Wait until matched, 90th percentile (minutes)"),
            Figure.of(p90(waits), helped, Unit.MINUTES),
        ),
        Measure("gave_up", _("Gave up waiting"), Figure.of(len(gave_up), students(gave_up))),
        Measure(
            "left_unmatched",
            _("Left without being matched (connection lost)"),
            Figure.of(len(left), students(left)),
        ),
        Measure(
            "session_median_minutes",
            _("Session length, median (minutes)"),
            Figure.of(median(lengths), timed, Unit.MINUTES),
        ),
        Measure(
            "session_p90_minutes",
            _("Session length, 90th percentile (minutes)"),
            Figure.of(p90(lengths), timed, Unit.MINUTES),
        ),
        Measure(
            "helper_hours",
            _("Hours helpers spent in sessions"),
            Figure.of(hours(ended), timed, Unit.HOURS),
        ),
        Measure(
            "student_rating",
            _("Students' rating of the session, mean (1–5)"),
            Figure.of(
                mean([f.student_rating or 0 for f in rated_by_students]),
                students(rated_by_students),
                Unit.RATING,
            ),
        ),
        Measure(
            "helper_rating",
            _("Helpers' rating of the session, mean (1–5)"),
            Figure.of(
                mean([f.helper_rating or 0 for f in rated_by_helpers]),
                students(rated_by_helpers),
                Unit.RATING,
            ),
        ),
    ]

    if by == "week":
        weeks: dict[str, str] = {}
        for offset in range(period.days):
            week = week_of(period.first + timedelta(days=offset))
            weeks[week] = week
        over_time = _breakdown(
            "sessions_by_week",
            _("Sessions per week"),
            _grouped(sessions, lambda f: week_of(f.day), weeks),
        )
    else:
        days = [period.first + timedelta(days=offset) for offset in range(period.days)]
        over_time = _breakdown(
            "sessions_by_day",
            _("Sessions per day"),
            _grouped(sessions, lambda f: f.day, {d: d.isoformat() for d in days}),
        )

    by_site = names.sites if site_id is None else {}
    subjects_asked = {f.subject_id for f in facts}
    subjects = {
        k: v for k, v in sorted(names.subjects.items(), key=lambda kv: kv[1]) if k in subjects_asked
    }
    grades = {g: _("Grade %(grade)d", grade=g) for g in GRADES}
    channels = {HOME: _("From home"), KIOSK: _("At a kiosk")}
    outcomes = {
        RequestStatus.MATCHED.value: _("Matched with a helper"),
        RequestStatus.CANCELLED.value: _("Gave up waiting"),
        RequestStatus.LEFT.value: _("Left without being matched"),
    }
    ratings = {r: str(r) for r in range(1, 6)}

    breakdowns = [
        over_time,
        _breakdown(
            "sessions_by_site",
            _("Sessions per site"),
            _grouped(sessions, lambda f: f.site_id, by_site),
        ),
        _breakdown(
            "students_by_site",
            _("Students who asked, per site"),
            _grouped(facts, lambda f: f.site_id, by_site),
            measure=students,
        ),
        _breakdown(
            "sessions_by_subject",
            _("Sessions per subject"),
            _grouped(sessions, lambda f: f.subject_id, subjects),
        ),
        _breakdown(
            "sessions_by_grade",
            _("Sessions per grade"),
            _grouped(sessions, lambda f: f.grade, grades),
        ),
        _breakdown(
            "sessions_by_channel",
            _("Sessions at a kiosk and from home"),
            _grouped(sessions, lambda f: f.channel, channels),
        ),
        _breakdown(
            "requests_by_outcome",
            _("How requests ended"),
            _grouped(facts, lambda f: f.outcome, outcomes),
            adds_up=False,  # its total, the requests, is protected in the summary instead
        ),
        _breakdown(
            "sessions_by_wait",
            _("Sessions by wait until matched"),
            _banded(sessions, lambda f: f.wait_s, WAIT_BANDS),
        ),
        _breakdown(
            "sessions_by_length",
            _("Sessions by length"),
            _banded(ended, lambda f: f.session_s or 0.0, LENGTH_BANDS),
        ),
        _breakdown(
            "helper_hours_by_organisation",
            _("Hours helpers spent in sessions, per partner organisation"),
            _grouped(ended, lambda f: f.helper_organisation_id, names.organisations),
            measure=hours,
            unit=Unit.HOURS,
        ),
        _breakdown(
            "student_ratings",
            _("Students' ratings"),
            _grouped(rated_by_students, lambda f: f.student_rating, ratings),
        ),
        _breakdown(
            "helper_ratings",
            _("Helpers' ratings"),
            _grouped(rated_by_helpers, lambda f: f.helper_rating, ratings),
        ),
    ]
    breakdowns = [b for b in breakdowns if b.rows]
    return Dashboard(period, site_id, by, summary, breakdowns)


def _requests_total(facts: list[Fact], gave_up: list[Fact], left: list[Fact], asked: int) -> Figure:
    """All requests: the sessions plus those given up or left. The sessions are the headline,
    so where the given-up and left ones are small it is this total that is hidden instead."""
    total = Figure.of(len(facts), asked)
    small = [g for g in (gave_up, left) if 0 < students(g) < MIN_STUDENTS]
    if total.hidden is None and small and sum(students(g) for g in small) < MIN_STUDENTS:
        return replace(total, hidden=Hidden.COMPLEMENT)
    return total


def compute(s: Session, period: Period, site_id: int | None, by: str, locale: str) -> Dashboard:
    """The dashboard of `period` at one site (or all), as the page and the CSV show it."""
    found = facts(s, period.start, period.end, site_id)
    return dashboard(found, period, site_id, by, Names.load(s, locale))
