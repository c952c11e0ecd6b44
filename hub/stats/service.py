"""The figures for the evaluation: plain functions from the hub's tables to a `Dashboard` that the
page, its charts and the CSV export all show, with the same small cells suppressed.

Every figure is computed from a group of help requests. It is shown only if the group holds no
student or at least `MIN_STUDENTS` of them; otherwise it reads "<5". Where the rows of a table add
up to a total shown elsewhere, further rows are hidden, smallest first, until the hidden ones
together hold at least `MIN_STUDENTS` students, so no small figure can be worked out by
subtraction (complementary suppression; `protect`). The summary's number of requests is hidden
when, with the sessions shown, it would give away a small number of given-up or left requests.

The figures come from `stats_facts`, one narrow row per finished request, which the hub keeps
up to date from the requests the database triggers mark (`refresh`, before every read), and from
`stats_days`, each day's figures in a form that adds up over days exactly (`Cells`), and
`stats_months`, the same for each calendar month, added up from its days (`roll_up`: when a period
covering the whole month is first read, and again in the transaction that rebuilds one of its
days). The dashboard of all sites adds up the period's whole months and the days around them (a
year: 11 or 12 months and some 30 days, whatever the number of requests); one site's is counted
from its facts, those of whole months once per hub process and month version (`cells_of_site`).
Requests of students whose account has gone (a kiosk visit
past the retention period, a student who deleted their account) stay as facts without the link
(`archive_student`), so the figures of a past period do not change when the raw rows are deleted.
"""

from __future__ import annotations

import json
import math
import secrets
import statistics
import sys
from array import array
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from operator import itemgetter
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import (
    LargeBinary,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased

from hub.accounts.models import Organisation, Role, Site, User
from hub.catalog.models import GRADES, Subject
from hub.db import Base
from hub.devices.models import KioskVisit
from hub.matching.models import HelpRequest, RequestStatus
from hub.rooms.models import Feedback, Room
from hub.stats.models import (
    StatsDay,
    StatsDayCell,
    StatsDirty,
    StatsFact,
    StatsMonth,
    StatsMonthCell,
    StatsNumber,
)

MIN_STUDENTS = 5
# Days in the statistics are the café's days, not UTC's.
TIMEZONE = ZoneInfo("Europe/Copenhagen")
LONGEST_PERIOD = timedelta(days=731)

KIOSK, HOME = "kiosk", "home"


# ---------------------------------------------------------------------------------------------
# One fact per finished help request, kept in stats_facts


@dataclass(frozen=True)
class Fact:
    asked_at: datetime
    site_id: int | None
    subject_id: int | None
    grade: int
    channel: str  # KIOSK | HOME
    outcome: str  # matched | cancelled | left
    wait_s: float  # until matched, or until the student gave up or left (stored: whole seconds)
    session_s: float | None  # the room's length, once it has ended (stored: whole seconds)
    helper_organisation_id: int | None
    student_rating: int | None
    helper_rating: int | None
    student_key: int | str  # the same for all requests of one student, and nothing more

    @cached_property
    def day(self) -> date:
        """The café's day it was asked on (once: the dashboard groups by it often)."""
        return local_day(self.asked_at)


FACT_FIELDS = tuple(Fact.__dataclass_fields__)
FACT_COLUMNS = tuple(getattr(StatsFact, name) for name in FACT_FIELDS)
# Dirty requests are turned into facts this many at a time.
REFRESH_CHUNK = 2000
REFRESH_LOCK = 4709  # PostgreSQL advisory lock: one refresh at a time
EVERY_DAY = -1  # in stats_dirty: rebuild the figures of every day that has facts


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    """`later - earlier` in seconds, computed by the database (much cheaper than in Python)."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _live_query(dialect: str) -> Select:
    """One row per finished request: its columns named as `Fact`'s fields, then its id."""
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
            HelpRequest.student_id.label("student_key"),
            HelpRequest.id.label("request_id"),
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


def _table(model: type[Base]) -> Table:
    """A model's table, for Core's executemany inserts (faster than the ORM's bulk insert)."""
    return cast(Table, model.__table__)


def _live_fact(row: Any) -> Fact:
    """A row of the live query as a Fact, its durations in whole seconds (SQLite's julianday
    arithmetic is off by microseconds; the dashboard shows tenths of minutes)."""
    asked, site, subject, grade, channel, outcome, wait_s, session_s, *rest = row[:12]
    wait = max(0, round(float(wait_s)))
    length = None if session_s is None else max(0, round(float(session_s)))
    return Fact(asked, site, subject, grade, channel, str(outcome), wait, length, *rest)


def _stored_fact(row: Any, day: date) -> Fact:
    found = Fact(*row)
    found.__dict__["day"] = day  # the cached property, known already
    return found


def _store_facts(s: Session, ids: list[int], dialect: str) -> dict[date, set[Any]]:
    """(Re)write the facts of these requests from the live tables; the days they touched, each
    with the students whose facts of that day these were (before or after)."""
    touched: dict[date, set[Any]] = {}
    before = select(StatsFact.day, StatsFact.student_key).where(StatsFact.request_id.in_(ids))
    for day, key in s.execute(before):
        touched.setdefault(day, set()).add(key)
    rows: dict[int, dict[str, Any]] = {}
    for row in s.execute(_live_query(dialect).where(HelpRequest.id.in_(ids))):
        request_id = row[-1]
        if request_id in rows:  # several kiosk visits of one account: the first is enough
            continue
        fact = _live_fact(row)
        values = {name: getattr(fact, name) for name in FACT_FIELDS}
        rows[request_id] = {**values, "day": fact.day, "request_id": request_id}
    s.execute(delete(StatsFact).where(StatsFact.request_id.in_(ids)))
    if rows:
        s.connection().execute(insert(_table(StatsFact)), list(rows.values()))
    for r in rows.values():
        touched.setdefault(r["day"], set()).add(r["student_key"])
    return touched


def refresh(s: Session) -> int:
    """Bring the facts and the days' figures up to date with the requests the triggers marked
    (a request finished, its room began or ended, feedback came). Returns how many requests it
    looked at. The dashboard calls it first, so it shows every request finished so far."""
    if s.scalar(select(StatsDirty.seq).limit(1)) is None:
        return 0
    dialect = s.get_bind().dialect.name
    _lock(s)
    last = s.scalar(select(func.max(StatsDirty.seq)))
    if last is None:
        return 0
    ids = sorted(set(s.scalars(select(StatsDirty.request_id).where(StatsDirty.seq <= last))))
    every: set[date] = set()
    if ids and ids[0] == EVERY_DAY:  # e.g. after migration 0012 moved the old archive in
        ids.pop(0)
        every = set(s.scalars(select(StatsFact.day).distinct()))
    changed: dict[date, set[Any]] = {}
    for at in range(0, len(ids), REFRESH_CHUNK):
        for day, keys in _store_facts(s, ids[at : at + REFRESH_CHUNK], dialect).items():
            changed.setdefault(day, set()).update(keys)
    s.execute(delete(StatsDirty).where(StatsDirty.seq <= last))
    for day in every:
        changed.pop(day, None)  # counted afresh
    rebuild_days(s, every | changed.keys(), changed)
    return len(ids)


def rebuild_days(
    s: Session, days: Iterable[date], changed: dict[date, set[Any]] | None = None
) -> None:
    """Work the figures of these days out again from their facts, and those of their months that
    were added up already (in the same transaction, so a reader never sees one without the
    other; a month not added up yet is added up when a period covering it is first read).
    `changed`: for a day, the only students whose facts of it may have changed since its figures
    were worked out; its bitmaps of who asked are then those kept with only their bits set again
    (the others' numbers and bits stay as they were), instead of every student's looked up."""
    touched = sorted(set(days))
    if not touched:
        return
    _lock(s)
    tops: dict[int, int] = {}  # the highest number of each scope, read when first needed
    for day in touched:
        rows = s.execute(select(*CELL_COLUMNS).where(StatsFact.day == day)).all()
        keys = None if changed is None else changed.get(day)
        kept = None
        if keys is not None and rows:
            kept = s.execute(
                select(StatsDay.asked, StatsDay.helped, StatsDay.sites, StatsDay.site_asked).where(
                    StatsDay.day == day
                )
            ).one_or_none()
        s.execute(delete(StatsDay).where(StatsDay.day == day))
        if kept is None:
            s.execute(delete(StatsDayCell).where(StatsDayCell.day == day))
        if rows:
            found = cells_from_rows(rows)
            if keys is not None and kept is not None:
                bitmaps = _patched(s, found, keys, kept, tops)
            else:
                bitmaps = _bitmaps(found, _numbers(s, day, found, tops))
            whole, cells = _encode_day(day, found, bitmaps)
            connection = s.connection()
            connection.execute(insert(_table(StatsDay)), [whole])
            if kept is not None:
                cells = _changed_cells(s, day, cells)
            if cells:
                connection.execute(insert(_table(StatsDayCell)), cells)
    months = {month_of(day) for day in touched}
    rolled = s.scalars(select(StatsMonth.month).where(StatsMonth.month.in_(months)))
    roll_up(s, set(rolled), again=True)


def _changed_cells(s: Session, day: date, cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of a day's new cells, those to insert: its kept cells that are gone or differ are deleted,
    the others stay (a few changed facts change a few dozen of a day's hundreds of cells)."""
    columns = (StatsDayCell.n, StatsDayCell.total, StatsDayCell.few, StatsDayCell.students)
    query = select(StatsDayCell.dim, StatsDayCell.key, *columns).where(StatsDayCell.day == day)
    kept = {(dim, key): tuple(rest) for dim, key, *rest in s.execute(query)}
    new = {(c["dim"], c["key"]): c for c in cells}
    stale = [
        {"d": day, "m": dim, "k": key}
        for (dim, key), values in kept.items()
        if (c := new.get((dim, key))) is None
        or (c["n"], c["total"], c["few"], c["students"]) != values
    ]
    if stale:
        t = _table(StatsDayCell)
        where = (
            (t.c.day == bindparam("d")) & (t.c.dim == bindparam("m")) & (t.c.key == bindparam("k"))
        )
        s.connection().execute(delete(t).where(where), stale)
    same = kept.keys() - {(x["m"], x["k"]) for x in stale}
    return [c for at, c in new.items() if at not in same]


EVERYWHERE = -1  # the scope of a student's number across all sites


def _scope(site_id: int | None) -> int:
    return site_id or 0


def _numbers(s: Session, day: date, c: Cells, tops: dict[int, int]) -> dict[tuple[int, Any], int]:
    """The numbers of the students in these cells (the day's facts), overall and at each site
    they asked at; new ones are given the next free number of their scope (`tops`: the highest
    so far). Those there already are read by a join with the day's facts on the primary key,
    only the (scope, student) pairs the day needs: no lists of keys sent, no other scopes read."""
    wanted = {(EVERYWHERE, k) for who in c.asked.values() for k in who}
    wanted |= {(_scope(site), k) for site, who in c.asked.items() for k in who}
    of_day = StatsFact.day == day
    pairs = union(
        select(literal(EVERYWHERE).label("scope"), StatsFact.student_key).where(of_day),
        select(func.coalesce(StatsFact.site_id, 0).label("scope"), StatsFact.student_key).where(
            of_day
        ),
    ).subquery()
    query = select(StatsNumber.scope, StatsNumber.student_key, StatsNumber.number).join(
        pairs,
        (pairs.c.scope == StatsNumber.scope) & (pairs.c.student_key == StatsNumber.student_key),
    )
    found: dict[tuple[int, Any], int] = {
        (scope, key): number for scope, key, number in s.execute(query)
    }
    return _assign(s, wanted, found, tops)


def _assign(
    s: Session,
    wanted: set[tuple[int, Any]],
    found: dict[tuple[int, Any], int],
    tops: dict[int, int],
) -> dict[tuple[int, Any], int]:
    """`found` with the next free number of its scope given to each wanted one not in it."""
    new = []
    for scope, key in sorted(wanted - found.keys()):
        if scope not in tops:
            highest = s.scalar(
                select(func.max(StatsNumber.number)).where(StatsNumber.scope == scope)
            )
            tops[scope] = -1 if highest is None else highest
        number = tops[scope] = tops[scope] + 1
        found[(scope, key)] = number
        new.append({"scope": scope, "student_key": key, "number": number})
    if new:
        s.connection().execute(insert(_table(StatsNumber)), new)
    return found


Bitmaps = tuple[bytes, bytes, list[tuple[int, bytes]]]  # asked, helped, [(scope, asked there)]


def _bitmaps(c: Cells, numbers: dict[tuple[int, Any], int]) -> Bitmaps:
    """A day's bitmaps of who asked, who had a session and who asked at each site."""
    asked = {numbers[(EVERYWHERE, k)] for who in c.asked.values() for k in who}
    helped = {numbers[(EVERYWHERE, k)] for who in c.helped.values() for k in who}
    sites = [
        (_scope(site), _bitmap(numbers[(_scope(site), k)] for k in who))
        for site, who in c.asked.items()
    ]
    return _bitmap(asked), _bitmap(helped), sites


def _patched(s: Session, c: Cells, keys: set[Any], kept: Any, tops: dict[int, int]) -> Bitmaps:
    """A day's bitmaps as `_bitmaps` gives them, from those kept (`kept`: the day's row before)
    when only these students' facts of the day changed: their bits set or cleared, in every
    scope they have a number in (new numbers given as needed); everyone else's stay."""
    everyone: set[Any] = set().union(*c.asked.values())
    had: set[Any] = set().union(*c.helped.values())
    where: dict[Any, set[int]] = {}
    for site, who in c.asked.items():
        for key in who & keys:
            where.setdefault(key, set()).add(_scope(site))
    wanted = {(EVERYWHERE, k) for k in keys & everyone}
    wanted |= {(scope, k) for k, scopes in where.items() for scope in scopes}
    query = select(StatsNumber.scope, StatsNumber.student_key, StatsNumber.number).where(
        StatsNumber.student_key.in_(sorted(keys))
    )
    found = {(scope, key): number for scope, key, number in s.execute(query)}
    numbers = _assign(s, wanted, found, tops)
    asked = int.from_bytes(kept.asked, "little")
    helped = int.from_bytes(kept.helped, "little")
    at_site: dict[int, int] = {}
    at = 0
    for scope, size in json.loads(kept.sites):
        at_site[scope] = int.from_bytes(kept.site_asked[at : at + size], "little")
        at += size
    for (scope, key), number in numbers.items():
        if key not in keys:
            continue
        bit = 1 << number
        if scope == EVERYWHERE:
            asked = asked | bit if key in everyone else asked & ~bit
            helped = helped | bit if key in had else helped & ~bit
        else:
            there = at_site.get(scope, 0)
            at_site[scope] = there | bit if scope in where.get(key, ()) else there & ~bit
    sites = [(_scope(site), _bits(at_site.get(_scope(site), 0))) for site in c.asked]
    return _bits(asked), _bits(helped), sites


def _bitmap(numbers: Iterable[int]) -> bytes:
    """Bit n set for each number n (byte n // 8, bit n % 8): int.from_bytes(…, "little")."""
    ordered = sorted(numbers)
    bits = bytearray((ordered[-1] // 8 + 1) if ordered else 0)
    for n in ordered:
        bits[n >> 3] |= 1 << (n & 7)
    return bytes(bits)


def facts(s: Session, start: datetime, end: datetime, site_id: int | None) -> list[Fact]:
    """The finished requests asked in [start, end), at one site or all: live and archived."""
    refresh(s)
    query = select(*FACT_COLUMNS, StatsFact.day).where(
        StatsFact.day >= local_day(start),
        StatsFact.day <= local_day(end),
        StatsFact.asked_at >= start,
        StatsFact.asked_at < end,
    )
    if site_id is not None:
        query = query.where(StatsFact.site_id == site_id)
    return [_stored_fact(row[:-1], row[-1]) for row in s.execute(query)]


def new_student_key() -> int:
    """A random key for a deleted student's facts: negative, so never a user id."""
    return -1 - secrets.randbits(62)


def archive_student(s: Session, user_id: int) -> int:
    """Drop the link between a student about to be deleted and their facts: the facts stay, under
    a random key and without their request. Call it in the transaction that deletes the account.
    Returns how many facts were kept."""
    refresh(s)
    owned = StatsFact.student_key == user_id
    days = set(s.scalars(select(StatsFact.day).where(owned).distinct()))
    key = new_student_key()
    kept = s.execute(update(StatsFact).where(owned).values(student_key=key, request_id=None))
    s.execute(update(StatsNumber).where(StatsNumber.student_key == user_id).values(student_key=key))
    rebuild_days(s, days)  # the days' figures held the user id too
    return int(getattr(kept, "rowcount", 0) or 0)


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
# What the figures are computed from: cells that add up over days exactly


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


def _ranked(histogram: Counter[float], ranks: Sequence[int]) -> list[float]:
    """The values at these 1-based ranks (ascending) of the values a histogram counts."""
    found, wanted, seen = [], iter(ranks), 0
    rank = next(wanted, None)
    for value, count in sorted(histogram.items()):
        seen += count
        while rank is not None and rank <= seen:
            found.append(value)
            rank = next(wanted, None)
        if rank is None:
            break
    return found


def histogram_median(histogram: Counter[float]) -> float | None:
    n = sum(histogram.values())
    if not n:
        return None
    middle = _ranked(histogram, [(n + 1) // 2, n // 2 + 1])
    return middle[0] if n % 2 else (middle[0] + middle[1]) / 2


def histogram_p90(histogram: Counter[float]) -> float | None:
    n = sum(histogram.values())
    return _ranked(histogram, [math.ceil(0.9 * n)])[0] if n else None


@dataclass
class Cell:
    """One bar or count: how many requests, a sum (seconds, ratings), and up to MIN_STUDENTS of
    the students behind them: all that small-cell suppression needs, and it adds up over days."""

    n: int = 0
    total: float = 0.0
    students: set[Any] = field(default_factory=set)

    def add(self, student: Any, amount: float = 0.0) -> None:
        self.n += 1
        self.total += amount
        if len(self.students) < MIN_STUDENTS:
            self.students.add(student)

    def merge(self, n: int, total: float, students: Iterable[Any]) -> None:
        self.n += n
        self.total += total
        for student in students:
            if len(self.students) >= MIN_STUDENTS:
                break
            self.students.add(student)

    @property
    def few(self) -> int:
        """The students behind it, exact below MIN_STUDENTS (more are not counted)."""
        return len(self.students)


@dataclass
class Cells:
    """Everything the dashboard shows, for a set of facts (`cells_from_facts`) or for whole days
    added up from `stats_days` (`cells_from_days`); both give the same figures."""

    cells: dict[tuple[str, Any], Cell] = field(default_factory=dict)
    asked: dict[int | None, set[Any]] = field(default_factory=dict)  # site: who asked (exact)
    helped: dict[date, set[Any]] = field(default_factory=dict)  # day: who had a session
    waits: Counter[float] = field(default_factory=Counter)  # sessions' waits, seconds
    lengths: Counter[float] = field(default_factory=Counter)  # ended sessions, seconds
    # Counted already (by `cells_from_days`, from bitmaps) instead of `asked` and `helped`.
    asked_total: int | None = None
    asked_at_site: dict[int | None, int] | None = None
    returning_total: int | None = None

    def students_asked(self) -> int:
        if self.asked_total is not None:
            return self.asked_total
        return len(set().union(*self.asked.values()))

    def students_at(self, site_id: int | None) -> int:
        if self.asked_at_site is not None:
            return self.asked_at_site.get(site_id, 0)
        return len(self.asked.get(site_id, ()))

    def returning(self) -> int:
        """Students with sessions on more than one day."""
        if self.returning_total is not None:
            return self.returning_total
        seen: set[Any] = set()
        twice: set[Any] = set()
        for who in self.helped.values():
            twice |= seen & who
            seen |= who
        return len(twice)

    def cell(self, dim: str, key: Any) -> Cell:
        return self.cells.get((dim, key)) or Cell()

    def add(self, dim: str, key: Any, student: Any, amount: float = 0.0) -> None:
        found = self.cells.get((dim, key))
        if found is None:
            found = self.cells[(dim, key)] = Cell()
        found.add(student, amount)

    def keys(self, dim: str) -> set[Any]:
        return {key for d, key in self.cells if d == dim}

    def merge(self, other: Cells) -> None:
        """Add the cells of other facts (both from facts, `cells_from_rows`), exactly as if they
        had been counted together; `other` stays as it was."""
        for at, cell in other.cells.items():
            mine = self.cells.get(at)
            if mine is None:
                self.cells[at] = Cell(cell.n, cell.total, set(cell.students))
            else:
                mine.merge(cell.n, cell.total, cell.students)
        for site, who in other.asked.items():
            self.asked.setdefault(site, set()).update(who)
        for day, who in other.helped.items():
            self.helped.setdefault(day, set()).update(who)
        self.waits.update(other.waits)
        self.lengths.update(other.lengths)


def _band(bands: Sequence[int], seconds: float) -> int:
    return max(0, bisect_right(bands, seconds / 60) - 1)


# The columns of a fact that its cells are made of, in this order (`cells_from_rows`).
CELL_COLUMNS = (
    StatsFact.day,
    StatsFact.site_id,
    StatsFact.subject_id,
    StatsFact.grade,
    StatsFact.channel,
    StatsFact.outcome,
    StatsFact.wait_s,
    StatsFact.session_s,
    StatsFact.helper_organisation_id,
    StatsFact.student_rating,
    StatsFact.helper_rating,
    StatsFact.student_key,
)
_DAY, _SITE, _SUBJECT, _GRADE, _CHANNEL, _OUTCOME, _WAIT, _LENGTH = range(8)
_ORGANISATION, _STUDENT_RATING, _HELPER_RATING, _KEY = range(8, 12)


def cells_from_facts(found: Iterable[Fact]) -> Cells:
    return cells_from_rows(
        [
            (
                f.day,
                f.site_id,
                f.subject_id,
                f.grade,
                f.channel,
                f.outcome,
                f.wait_s,
                f.session_s,
                f.helper_organisation_id,
                f.student_rating,
                f.helper_rating,
                f.student_key,
            )
            for f in found
        ]
    )


def _add_bars(
    c: Cells,
    dim: str,
    keys: Sequence[Any],
    students: Sequence[Any],
    amounts: Sequence[float] | None = None,
) -> None:
    """The bars of one dimension: a fact's key, student and amount at the same place in each.
    Counted a dimension at a time by Python's C loops (Counter, set, zip), not fact by fact."""
    totals: dict[Any, float] = {}
    if amounts is not None:
        for key, amount in zip(keys, amounts, strict=True):
            totals[key] = totals.get(key, 0.0) + amount
    who: dict[Any, set[Any]] = {}
    for key, student in set(zip(keys, students, strict=True)):
        listed = who.get(key)
        if listed is None:
            who[key] = {student}
        elif len(listed) < MIN_STUDENTS:
            listed.add(student)
    for key, n in Counter(keys).items():
        c.cells[(dim, key)] = Cell(n, float(totals.get(key, 0.0)), who[key])


def cells_from_rows(rows: Sequence[Sequence[Any]]) -> Cells:
    """The cells of a set of facts, each given as its `CELL_COLUMNS`."""
    c = Cells()

    def column(at: int, of: Sequence[Sequence[Any]]) -> list[Any]:
        return list(map(itemgetter(at), of))

    everyone = column(_KEY, rows)
    for site, student in set(zip(column(_SITE, rows), everyone, strict=True)):
        c.asked.setdefault(site, set()).add(student)
    _add_bars(c, "outcome", column(_OUTCOME, rows), everyone)
    _add_bars(c, "subject_asked", column(_SUBJECT, rows), everyone)

    matched_value = RequestStatus.MATCHED.value
    matched = [r for r in rows if r[_OUTCOME] == matched_value]
    keys = column(_KEY, matched)
    days = column(_DAY, matched)
    for day, student in set(zip(days, keys, strict=True)):
        c.helped.setdefault(day, set()).add(student)
    waits = column(_WAIT, matched)
    _add_bars(c, "day", days, keys)
    _add_bars(c, "site", column(_SITE, matched), keys)
    _add_bars(c, "subject", column(_SUBJECT, matched), keys)
    _add_bars(c, "grade", column(_GRADE, matched), keys)
    _add_bars(c, "channel", column(_CHANNEL, matched), keys)
    _add_bars(c, "wait", [_band(WAIT_BANDS, w) for w in waits], keys)
    c.waits.update(waits)
    for at, dim, overall in (
        (_STUDENT_RATING, "student_rating", "rated_by_students"),
        (_HELPER_RATING, "helper_rating", "rated_by_helpers"),
    ):
        rated = [r for r in matched if r[at] is not None]
        if rated:
            ratings, raters = column(at, rated), column(_KEY, rated)
            _add_bars(c, dim, ratings, raters)
            _add_bars(c, overall, [None] * len(rated), raters, ratings)
    ended = [r for r in matched if r[_LENGTH] is not None]
    if ended:
        lengths, enders = column(_LENGTH, ended), column(_KEY, ended)
        _add_bars(c, "ended", [None] * len(ended), enders, lengths)
        _add_bars(c, "length", [_band(LENGTH_BANDS, x) for x in lengths], enders)
        _add_bars(c, "organisation", column(_ORGANISATION, ended), enders, lengths)
        c.lengths.update(lengths)
    return c


def _dense(histogram: Counter[float]) -> bytes:
    """Counts of whole seconds 0, 1, 2, … as little-endian uint32 (stored facts: integers)."""
    counts = array("I", bytes(4 * (int(max(histogram, default=-1)) + 1)))
    for value, count in histogram.items():
        counts[int(value)] = count
    if sys.byteorder != "little":
        counts.byteswap()
    return counts.tobytes()


def _undense(total: int) -> Counter[float]:
    """A sum of `_dense` arrays, read as one little-endian integer, as a histogram again."""
    size = (total.bit_length() + 31) // 32
    counts = array("I", total.to_bytes(4 * size, "little"))
    if sys.byteorder != "little":
        counts.byteswap()
    return Counter({value: count for value, count in enumerate(counts) if count})


def _encode_day(
    day: date, c: Cells, bitmaps: Bitmaps
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A day's cells as its stats_days row and stats_day_cells rows (from stored facts: keys
    and seconds are integers)."""
    cells = [
        {
            "day": day,
            "dim": dim,
            "key": json.dumps(key.isoformat() if dim == "day" else key),
            "n": cell.n,
            "total": cell.total,
            "few": cell.few,
            "students": " ".join(str(k) for k in sorted(cell.students)),
        }
        for (dim, key), cell in c.cells.items()
    ]
    asked, helped, at_sites = bitmaps
    whole = {
        "day": day,
        "asked": asked,
        "helped": helped,
        "sites": json.dumps(
            [[scope, len(bits)] for scope, bits in at_sites], separators=(",", ":")
        ),
        "site_asked": b"".join(bits for _scope_, bits in at_sites),
        "waits": _dense(c.waits),
        "lengths": _dense(c.lengths),
    }
    return whole, cells


# Stands in for the students of a cell that has at least MIN_STUDENTS of them.
_MANY = frozenset(f"many{n}" for n in range(MIN_STUDENTS))


def month_of(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return (month + timedelta(days=32)).replace(day=1)


def _month_last(month: date) -> date:
    return _next_month(month) - timedelta(days=1)


@dataclass(frozen=True)
class Spans:
    """A period as the whole calendar months inside it and the days around them."""

    months: tuple[date, date] | None  # the first and the last whole month (their first days)
    days: tuple[tuple[date, date], ...]  # the other days, as ranges (first, last)

    @classmethod
    def of(cls, period: Period) -> Spans:
        first = month_of(period.first)
        if first < period.first:
            first = _next_month(first)
        last = month_of(period.last)
        if _month_last(last) > period.last:
            last = month_of(last - timedelta(days=1))
        if first > last:
            return cls(None, ((period.first, period.last),))
        days = []
        if period.first < first:
            days.append((period.first, first - timedelta(days=1)))
        if _month_last(last) < period.last:
            days.append((_month_last(last) + timedelta(days=1), period.last))
        return cls((first, last), tuple(days))


def _in_ranges(column: Any, ranges: Iterable[tuple[date, date]]) -> Any:
    return or_(*(column.between(first, last) for first, last in ranges))


def _words(total: int) -> bytes:
    """A sum of `_dense` arrays as an array again (whole uint32s)."""
    return total.to_bytes(4 * ((total.bit_length() + 31) // 32), "little")


def _bits(total: int) -> bytes:
    """ORed bitmaps as a bitmap again."""
    return total.to_bytes((total.bit_length() + 7) // 8, "little")


@dataclass
class Sums:
    """Days' and months' figures added up exactly: each bar (dim, key as JSON) as the requests,
    the sum and up to MIN_STUDENTS of its students (`_MANY` once a single day or month had that
    many), and who asked, who had a session (and on more than one day) and the histograms as big
    integers. Gives a period's `Cells`, or a month's rows."""

    bars: dict[tuple[str, str], tuple[int, float, set[Any] | None]] = field(default_factory=dict)
    asked: int = 0
    seen: int = 0  # had a session
    twice: int = 0  # had sessions on more than one day
    at_site: dict[int, int] = field(default_factory=dict)  # scope: who asked there
    waits: int = 0
    lengths: int = 0

    def add(
        self,
        asked: bytes,
        helped: bytes,
        twice: bytes,
        sites: str,
        site_asked: bytes,
        waits: bytes,
        lengths: bytes,
    ) -> None:
        """One day's or month's row (a day's `twice` is empty: one day is never two)."""
        self.asked |= int.from_bytes(asked, "little")
        had = int.from_bytes(helped, "little")
        self.twice |= (self.seen & had) | int.from_bytes(twice, "little")
        self.seen |= had
        at = 0
        for scope, size in json.loads(sites):
            bits = int.from_bytes(site_asked[at : at + size], "little")
            self.at_site[scope] = self.at_site.get(scope, 0) | bits
            at += size
        self.waits += int.from_bytes(waits, "little")
        self.lengths += int.from_bytes(lengths, "little")

    def cells(self) -> Cells:
        c = Cells()
        for (dim, key_json), (n, total, who) in self.bars.items():
            key = json.loads(key_json)
            if dim == "day":
                key = date.fromisoformat(key)
            c.cells[(dim, key)] = Cell(n, total, set(_MANY) if who is None else who)
        c.asked_total, c.returning_total = self.asked.bit_count(), self.twice.bit_count()
        c.asked_at_site = {(k or None): bits.bit_count() for k, bits in self.at_site.items()}
        c.waits, c.lengths = _undense(self.waits), _undense(self.lengths)
        return c

    def month_rows(self, month: date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """As the month's stats_months row and stats_month_cells rows."""
        cells = []
        for (dim, key_json), (n, total, who) in self.bars.items():
            # A bar with enough students lists none: the reader needs only the small ones'.
            listed = "" if who is None else " ".join(str(k) for k in sorted(who))
            few = MIN_STUDENTS if who is None else len(who)
            cells.append(
                {"month": month, "dim": dim, "key": key_json, "n": n, "total": total}
                | {"few": few, "students": listed}
            )
        scopes = sorted(self.at_site)
        site_bits = [_bits(self.at_site[scope]) for scope in scopes]
        whole = {
            "month": month,
            "asked": _bits(self.asked),
            "helped": _bits(self.seen),
            "twice": _bits(self.twice),
            "sites": json.dumps(
                [[scope, len(bits)] for scope, bits in zip(scopes, site_bits, strict=True)],
                separators=(",", ":"),
            ),
            "site_asked": b"".join(site_bits),
            "waits": _words(self.waits),
            "lengths": _words(self.lengths),
        }
        return whole, cells


def add_up(s: Session, spans: Spans) -> Sums:
    """The figures of these months (from stats_months, as far as they are there) and days
    (stats_days) added up: the bars by the database, the students and histograms here."""
    sums = Sums()
    cell_parts, small_parts = [], []
    if spans.days:
        in_days = _in_ranges(StatsDayCell.day, spans.days)
        day_cells = (StatsDayCell.dim, StatsDayCell.key, StatsDayCell.n, StatsDayCell.total)
        cell_parts.append(select(*day_cells, StatsDayCell.few).where(in_days))
        small_parts.append(
            select(StatsDayCell.dim, StatsDayCell.key, StatsDayCell.students).where(
                in_days, StatsDayCell.few < MIN_STUDENTS
            )
        )
    if spans.months:
        in_months = StatsMonthCell.month.between(*spans.months)
        month_cells = (StatsMonthCell.dim, StatsMonthCell.key, StatsMonthCell.n)
        cell_parts.append(
            select(*month_cells, StatsMonthCell.total, StatsMonthCell.few).where(in_months)
        )
        small_parts.append(
            select(StatsMonthCell.dim, StatsMonthCell.key, StatsMonthCell.students).where(
                in_months, StatsMonthCell.few < MIN_STUDENTS
            )
        )
    if not cell_parts:
        return sums
    every = union_all(*cell_parts).subquery()
    bars = s.execute(
        select(
            every.c.dim,
            every.c.key,
            func.sum(every.c.n),
            func.sum(every.c.total),
            func.max(every.c.few),
        ).group_by(every.c.dim, every.c.key)
    )
    # The students of the bars no single day or month had enough for are listed by a second
    # query of only the small cells (few of them): aggregating every cell's list would cost more.
    small: dict[tuple[str, str], set[Any]] = {}
    for dim, key_json, n, total, most in bars:
        if most >= MIN_STUDENTS:  # one day or month alone had enough
            who: set[Any] | None = None
        else:
            who = small[(dim, key_json)] = set()
        sums.bars[(dim, key_json)] = (int(n), float(total), who)
    if small:
        listed = union_all(*small_parts).subquery()
        for dim, key_json, keys in s.execute(select(listed)):
            listed_for = small.get((dim, key_json))
            if listed_for is None:  # a small day of a bar other days had enough for
                continue
            for student in {int(k) for k in keys.split()}:
                if len(listed_for) >= MIN_STUDENTS:
                    break
                listed_for.add(student)
    if spans.days:
        rows = s.execute(
            select(
                StatsDay.asked,
                StatsDay.helped,
                literal(b"", LargeBinary),
                StatsDay.sites,
                StatsDay.site_asked,
                StatsDay.waits,
                StatsDay.lengths,
            ).where(_in_ranges(StatsDay.day, spans.days))
        )
        for row in rows:
            sums.add(*row)
    if spans.months:
        rows = s.execute(
            select(
                StatsMonth.asked,
                StatsMonth.helped,
                StatsMonth.twice,
                StatsMonth.sites,
                StatsMonth.site_asked,
                StatsMonth.waits,
                StatsMonth.lengths,
            ).where(StatsMonth.month.between(*spans.months))
        )
        for row in rows:
            sums.add(*row)
    return sums


def _lock(s: Session) -> None:
    """One writer of the facts, days and months at a time (on SQLite the process lock already
    serialises transactions); held until the transaction ends, and taken again at no cost."""
    if s.get_bind().dialect.name != "sqlite":
        s.execute(text(f"SELECT pg_advisory_xact_lock({REFRESH_LOCK})"))


def _months_between(first: date, last: date) -> list[date]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def roll_up(s: Session, months: Iterable[date], again: bool = False) -> None:
    """Add these months (their first days) up from their days into stats_months, those not
    there yet, or (`again`) all of them afresh. A month with no facts gets an empty row, so it is
    not looked for again."""
    wanted = set(months)
    if not wanted:
        return
    _lock(s)
    if not again:
        wanted -= set(s.scalars(select(StatsMonth.month).where(StatsMonth.month.in_(wanted))))
    for month in sorted(wanted):
        s.execute(delete(StatsMonth).where(StatsMonth.month == month))
        s.execute(delete(StatsMonthCell).where(StatsMonthCell.month == month))
        whole, cells = add_up(s, Spans(None, ((month, _month_last(month)),))).month_rows(month)
        whole["version"] = secrets.randbits(62)
        connection = s.connection()
        connection.execute(insert(_table(StatsMonth)), [whole])
        if cells:
            connection.execute(insert(_table(StatsMonthCell)), cells)


def cells_from_days(s: Session, period: Period) -> Cells:
    """All sites' cells of a period, added up from its whole months (each added up from its days
    once, `roll_up`) and the days around them."""
    spans = Spans.of(period)
    if spans.months is not None:
        wanted = _months_between(*spans.months)
        have = set(
            s.scalars(select(StatsMonth.month).where(StatsMonth.month.between(*spans.months)))
        )
        if len(have) < len(wanted):
            roll_up(s, set(wanted) - have)
    return add_up(s, spans).cells()


# One site's cells of whole months, as this process computed them from the site's facts, with
# the month's version they are right for: {(site, month): (version, cells)}, the oldest first.
_site_months: OrderedDict[tuple[int, date], tuple[int, Cells]] = OrderedDict()
SITE_MONTHS_KEPT = 4000  # some 100 sites' two years; a month's cells are a few kilobytes


def _site_rows(s: Session, site_id: int, where: Any) -> list[Any]:
    query = select(*CELL_COLUMNS).where(StatsFact.site_id == site_id, where)
    return list(s.execute(query).all())


def _kept(site_id: int, versions: dict[date, int]) -> dict[date, Cells]:
    """The site's months this process has the cells of at the versions given."""
    found = {month: _site_months.get((site_id, month)) for month in versions}
    return {m: x[1] for m, x in found.items() if x is not None and x[0] == versions[m]}


def cells_of_site(s: Session, period: Period, site_id: int) -> Cells:
    """One site's cells of a period, from its facts (a year at a busy site: some 5,000): those of
    whole months computed once per process and month version (`StatsMonth.version`, new whenever
    one of the month's days changes), the days around them on every read."""
    spans = Spans.of(period)
    around = _in_ranges(StatsFact.day, spans.days) if spans.days else None
    c = cells_from_rows(_site_rows(s, site_id, around)) if around is not None else Cells()
    if spans.months is None:
        return c
    wanted = _months_between(*spans.months)
    in_months = StatsMonth.month.between(*spans.months)
    versions = dict(s.execute(select(StatsMonth.month, StatsMonth.version).where(in_months)).all())
    if len(versions) < len(wanted):
        roll_up(s, set(wanted) - versions.keys())
        versions = dict(
            s.execute(select(StatsMonth.month, StatsMonth.version).where(in_months)).all()
        )
    known = _kept(site_id, versions)
    if len(known) < len(wanted):
        # Under the lock no day changes, so the facts read are those of the versions read.
        _lock(s)
        versions = dict(
            s.execute(select(StatsMonth.month, StatsMonth.version).where(in_months)).all()
        )
        known = _kept(site_id, versions)
        missing = [month for month in wanted if month not in known]
        ranges = [(month, _month_last(month)) for month in missing]
        by_month: dict[date, list[Any]] = {month: [] for month in missing}
        for row in _site_rows(s, site_id, _in_ranges(StatsFact.day, ranges)):
            by_month[month_of(row[_DAY])].append(row)
        for month, rows in by_month.items():
            known[month] = cells_from_rows(rows)
            _site_months[(site_id, month)] = (versions[month], known[month])
            _site_months.move_to_end((site_id, month))
        while len(_site_months) > SITE_MONTHS_KEPT:
            _site_months.popitem(last=False)
    for month in wanted:
        c.merge(known[month])
    return c


# ---------------------------------------------------------------------------------------------
# Computing the dashboard


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


Group = tuple[str, str, float, int]  # key, label, the figure's value, the students behind it


def _breakdown(
    name: str, title: str, groups: Iterable[Group], unit: Unit = Unit.COUNT, adds_up: bool = True
) -> Breakdown:
    """`adds_up`: the rows add up to a total shown elsewhere, so `protect` them."""
    rows = [
        Row(key, label, Figure.of(value, behind, unit), behind)
        for key, label, value, behind in groups
    ]
    return Breakdown(name, title, unit, protect(rows) if adds_up else rows)


def _grouped(
    c: Cells, dim: str, labels: dict[Any, str], value: Callable[[Cell], float] = lambda x: x.n
) -> list[Group]:
    """One group per label (in the labels' order), also when empty; other keys are dropped."""
    groups: list[Group] = []
    for key, label in labels.items():
        cell = c.cell(dim, key)
        groups.append((str(key), label, value(cell), cell.few))
    return groups


def _banded(c: Cells, dim: str, bands: Sequence[int]) -> list[Group]:
    """Groups by minutes: [0, b1), [b1, b2), … and the last band upwards."""
    groups: list[Group] = []
    for index, (low, high) in enumerate(zip(bands, [*bands[1:], None], strict=True)):
        label = (
            _("%(low)d–%(high)d min", low=low, high=high)
            if high is not None
            else _("%(low)d min or more", low=low)
        )
        cell = c.cell(dim, index)
        groups.append((f"{low}-{high or ''}", label, cell.n, cell.few))
    return groups


WAIT_BANDS = (0, 2, 5, 10, 20)
LENGTH_BANDS = (0, 10, 20, 30, 45)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def _mean(cell: Cell) -> float | None:
    return cell.total / cell.n if cell.n else None


def dashboard(
    facts: list[Fact], period: Period, site_id: int | None, by: str, names: Names
) -> Dashboard:
    """Every figure of the dashboard for `facts` (already those of the period and site)."""
    return from_cells(cells_from_facts(facts), period, site_id, by, names)


def from_cells(c: Cells, period: Period, site_id: int | None, by: str, names: Names) -> Dashboard:
    """Every figure of the dashboard from the cells of the period and site."""
    matched = RequestStatus.MATCHED.value
    sessions, ended = c.cell("outcome", matched), c.cell("ended", None)
    gave_up = c.cell("outcome", RequestStatus.CANCELLED.value)
    left = c.cell("outcome", RequestStatus.LEFT.value)
    by_students, by_helpers = c.cell("rated_by_students", None), c.cell("rated_by_helpers", None)
    requests = sessions.n + gave_up.n + left.n
    asked = c.students_asked()
    returning = c.returning()
    summary = [
        Measure(
            "requests", _("Requests for help"), _requests_total(requests, gave_up, left, asked)
        ),
        Measure("sessions", _("Sessions with a helper"), Figure.of(sessions.n, sessions.few)),
        Measure("students", _("Students who asked"), Figure.of(asked, asked)),
        Measure(
            "returning_students",
            _("Students who came back on another day"),
            Figure.of(returning, returning),
        ),
        Measure(
            "wait_median_minutes",
            _("Wait until matched, median (minutes)"),
            Figure.of(_minutes(histogram_median(c.waits)), sessions.few, Unit.MINUTES),
        ),
        Measure(
            "wait_p90_minutes",
            _("Wait until matched, 90th percentile (minutes)"),
            Figure.of(_minutes(histogram_p90(c.waits)), sessions.few, Unit.MINUTES),
        ),
        Measure("gave_up", _("Gave up waiting"), Figure.of(gave_up.n, gave_up.few)),
        Measure(
            "left_unmatched",
            _("Left without being matched (connection lost)"),
            Figure.of(left.n, left.few),
        ),
        Measure(
            "session_median_minutes",
            _("Session length, median (minutes)"),
            Figure.of(_minutes(histogram_median(c.lengths)), ended.few, Unit.MINUTES),
        ),
        Measure(
            "session_p90_minutes",
            _("Session length, 90th percentile (minutes)"),
            Figure.of(_minutes(histogram_p90(c.lengths)), ended.few, Unit.MINUTES),
        ),
        Measure(
            "helper_hours",
            _("Hours helpers spent in sessions"),
            Figure.of(ended.total / 3600, ended.few, Unit.HOURS),
        ),
        Measure(
            "student_rating",
            _("Students' rating of the session, mean (1–5)"),
            Figure.of(_mean(by_students), by_students.few, Unit.RATING),
        ),
        Measure(
            "helper_rating",
            _("Helpers' rating of the session, mean (1–5)"),
            Figure.of(_mean(by_helpers), by_helpers.few, Unit.RATING),
        ),
    ]

    days = [period.first + timedelta(days=offset) for offset in range(period.days)]
    if by == "week":
        weeks: dict[str, Cell] = {}
        for day in days:
            cell = c.cell("day", day)
            weeks.setdefault(week_of(day), Cell()).merge(cell.n, cell.total, cell.students)
        over_time = _breakdown(
            "sessions_by_week",
            _("Sessions per week"),
            [(week, week, cell.n, cell.few) for week, cell in weeks.items()],
        )
    else:
        over_time = _breakdown(
            "sessions_by_day",
            _("Sessions per day"),
            _grouped(c, "day", {d: d.isoformat() for d in days}),
        )

    by_site = names.sites if site_id is None else {}
    subjects_asked = c.keys("subject_asked")
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

    def hours(cell: Cell) -> float:
        return cell.total / 3600

    students_by_site: list[Group] = []
    for key, label in by_site.items():
        who = c.students_at(key)
        students_by_site.append((str(key), label, who, who))

    breakdowns = [
        over_time,
        _breakdown("sessions_by_site", _("Sessions per site"), _grouped(c, "site", by_site)),
        _breakdown("students_by_site", _("Students who asked, per site"), students_by_site),
        _breakdown(
            "sessions_by_subject", _("Sessions per subject"), _grouped(c, "subject", subjects)
        ),
        _breakdown("sessions_by_grade", _("Sessions per grade"), _grouped(c, "grade", grades)),
        _breakdown(
            "sessions_by_channel",
            _("Sessions at a kiosk and from home"),
            _grouped(c, "channel", channels),
        ),
        _breakdown(
            "requests_by_outcome",
            _("How requests ended"),
            _grouped(c, "outcome", outcomes),
            adds_up=False,  # its total, the requests, is protected in the summary instead
        ),
        _breakdown(
            "sessions_by_wait",
            _("Sessions by wait until matched"),
            _banded(c, "wait", WAIT_BANDS),
        ),
        _breakdown(
            "sessions_by_length", _("Sessions by length"), _banded(c, "length", LENGTH_BANDS)
        ),
        _breakdown(
            "helper_hours_by_organisation",
            _("Hours helpers spent in sessions, per partner organisation"),
            _grouped(c, "organisation", names.organisations, value=hours),
            unit=Unit.HOURS,
        ),
        _breakdown(
            "student_ratings", _("Students' ratings"), _grouped(c, "student_rating", ratings)
        ),
        _breakdown("helper_ratings", _("Helpers' ratings"), _grouped(c, "helper_rating", ratings)),
    ]
    breakdowns = [b for b in breakdowns if b.rows]
    return Dashboard(period, site_id, by, summary, breakdowns)


def _requests_total(requests: int, gave_up: Cell, left: Cell, asked: int) -> Figure:
    """All requests: the sessions plus those given up or left. The sessions are the headline,
    so where the given-up and left ones are small it is this total that is hidden instead."""
    total = Figure.of(requests, asked)
    small = [g.few for g in (gave_up, left) if 0 < g.few < MIN_STUDENTS]
    if total.hidden is None and small and sum(small) < MIN_STUDENTS:
        return replace(total, hidden=Hidden.COMPLEMENT)
    return total


def compute(s: Session, period: Period, site_id: int | None, by: str, locale: str) -> Dashboard:
    """The dashboard of `period` at one site (or all), as the page and the CSV show it: all
    sites from the months' and days' figures, one site from its facts by the database."""
    refresh(s)
    cells = cells_from_days(s, period) if site_id is None else cells_of_site(s, period, site_id)
    return from_cells(cells, period, site_id, by, Names.load(s, locale))
