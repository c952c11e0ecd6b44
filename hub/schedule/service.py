"""When the café is open, and the shifts its opening hours make.

A shift is one opening block on one open day: Monday 15:00–18:00 local time is a shift every
Monday that is not a closed day. Shifts are computed, never stored; a shift is known by its key,
its start in UTC. With no opening hours at all the café is always open (and has no shifts), except
on closed days.

The café's time zone comes from the config (`timezone`); every function takes `zone` for callers
outside a request or the hub's loops, and otherwise reads the running hub's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import Date, Integer, Time, cast, delete, null, select, union_all
from sqlalchemy.orm import Session

from hub.errors import HubError, Invalid
from hub.schedule.models import WEEKDAYS, ClosedDay, OpeningHours
from hub.state import hub_state

# How far ahead next_opening looks: past a year of closed days the café is as good as closed.
HORIZON = timedelta(days=366)


@dataclass(frozen=True)
class Shift:
    starts_at: datetime  # aware, UTC
    ends_at: datetime

    @property
    def key(self) -> str:
        return self.starts_at.astimezone(UTC).isoformat()


def cafe_zone() -> ZoneInfo:
    return hub_state().config.zone


def shifts_between(
    s: Session, start: datetime, end: datetime, zone: ZoneInfo | None = None
) -> list[Shift]:
    """The shifts that overlap [start, end), in order."""
    zone = zone or cafe_zone()
    blocks = _blocks_by_weekday(s)
    if not blocks:
        return []
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    closed = _closed_days(s, first, last)
    shifts = []
    day = first
    while day <= last:
        if day not in closed:
            for opens, closes in blocks.get(day.weekday(), ()):
                shift = Shift(_utc(day, opens, zone), _utc(day, closes, zone))
                if shift.ends_at > start and shift.starts_at < end:
                    shifts.append(shift)
        day += timedelta(days=1)
    return shifts


def shift_at(s: Session, key: str, zone: ZoneInfo | None = None) -> Shift | None:
    """The shift starting at `key` (a Shift.key), if the opening hours make one there."""
    try:
        starts_at = datetime.fromisoformat(key)
    except ValueError:
        return None
    if starts_at.tzinfo is None:
        return None
    starts_at = starts_at.astimezone(UTC)
    for shift in shifts_between(s, starts_at, starts_at + timedelta(seconds=1), zone):
        if shift.starts_at == starts_at:
            return shift
    return None


def is_open(s: Session, now: datetime, zone: ZoneInfo | None = None) -> bool:
    zone = zone or cafe_zone()
    if not _has_opening_hours(s):
        return not _is_closed_day(s, now.astimezone(zone).date())
    return bool(shifts_between(s, now, now + timedelta(microseconds=1), zone))


def next_opening(s: Session, now: datetime, zone: ZoneInfo | None = None) -> datetime | None:
    """When the café next opens after `now` (UTC): the start of the next shift, or with no opening
    hours the next midnight that is not a closed day. None if it does not open within a year."""
    zone = zone or cafe_zone()
    if not _has_opening_hours(s):
        today = now.astimezone(zone).date()
        closed = _closed_days(s, today, today + HORIZON)
        day = today + timedelta(days=1)
        while day in closed:
            day += timedelta(days=1)
        return _utc(day, time(0), zone) if day <= today + HORIZON else None
    shift = next_shift(s, now, zone)
    return shift.starts_at if shift else None


def next_shift(s: Session, now: datetime, zone: ZoneInfo | None = None) -> Shift | None:
    """The first shift that starts after `now`; None with no opening hours, or none within a
    year."""
    zone = zone or cafe_zone()
    if not _has_opening_hours(s):
        return None
    # Week by week: a normal week costs one short pass, a long holiday a few.
    start = now
    while start < now + HORIZON:
        for shift in shifts_between(s, start, start + timedelta(days=7), zone):
            if shift.starts_at > now:
                return shift
        start += timedelta(days=7)
    return None


class Closed(HubError):
    """Refused because the café is closed now; `details.opens_at` says when it opens (ISO, UTC),
    null if it does not open within a year."""

    code = "closed"
    status = 409


def refuse_if_closed(s: Session, now: datetime, zone: ZoneInfo | None = None) -> None:
    """Raise Closed, saying when the café opens next, if it is closed at `now`."""
    status = opening_status(s, now, zone)
    if not status["open"]:
        raise Closed(status["message"], opens_at=status["opens_at"])


def closed_message(opens_at: datetime | None, now: datetime, zone: ZoneInfo) -> str:
    """ "The café is closed now. We open again on Monday at 15:00." in the caller's language."""
    if opens_at is None:
        return _("The homework café is closed now.")
    local, today = opens_at.astimezone(zone), now.astimezone(zone).date()
    at = f"{local:%H:%M}"
    if local.date() == today:
        return _("The homework café is closed now. We open again today at %(time)s.", time=at)
    # A weekday name is enough within a week; further ahead the date too.
    shape = "EEEE" if local.date() - today < timedelta(days=7) else "EEEE d MMMM"
    day = format_date(local.date(), shape, locale=_locale())
    return _(
        "The homework café is closed now. We open again on %(day)s at %(time)s.", day=day, time=at
    )


def opening_status(s: Session, now: datetime, zone: ZoneInfo | None = None) -> dict[str, Any]:
    """Whether the café is open at `now`, and if not when it opens and what to tell a student."""
    zone = zone or cafe_zone()
    if is_open(s, now, zone):
        return {"open": True, "opens_at": None, "message": ""}
    opens_at = next_opening(s, now, zone)
    return {
        "open": False,
        "opens_at": opens_at.isoformat() if opens_at else None,
        "message": closed_message(opens_at, now, zone),
    }


def _utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """A local wall-clock time on `day` in UTC. A time that a DST change skips or repeats is
    taken as before the change (fold 0), as zoneinfo does."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Reading and setting the opening hours


@dataclass(frozen=True)
class Block:
    """One opening block as an admin enters it."""

    weekday: int
    opens: time
    closes: time

    @property
    def text(self) -> str:
        return f"{self.opens:%H:%M}–{self.closes:%H:%M}"


def opening_hours(s: Session) -> list[Block]:
    """Every opening block, by weekday and time."""
    return [
        Block(row.weekday, row.opens, row.closes)
        for row in s.scalars(
            select(OpeningHours).order_by(OpeningHours.weekday, OpeningHours.opens)
        )
    ]


def set_opening_hours(s: Session, blocks: Iterable[Block]) -> None:
    """Replace the whole week's opening hours. Refuses a block that does not end after it starts,
    or that overlaps another on the same day (Invalid; `fields` names the day, e.g. "day0")."""
    by_day: dict[int, list[Block]] = {}
    for block in blocks:
        if block.weekday not in WEEKDAYS:
            raise Invalid(_("That weekday does not exist."), fields={"weekday": "unknown"})
        if block.closes <= block.opens:
            raise Invalid(
                _(
                    "%(day)s: %(block)s must end after it starts.",
                    day=weekday_name(block.weekday),
                    block=block.text,
                ),
                fields={f"day{block.weekday}": "ends_before_start"},
            )
        by_day.setdefault(block.weekday, []).append(block)
    for weekday, day_blocks in by_day.items():
        day_blocks.sort(key=lambda b: b.opens)
        for earlier, later in pairwise(day_blocks):
            if later.opens < earlier.closes:
                raise Invalid(
                    _(
                        "%(day)s: %(first)s and %(second)s overlap.",
                        day=weekday_name(weekday),
                        first=earlier.text,
                        second=later.text,
                    ),
                    fields={f"day{weekday}": "overlap"},
                )
    _changed(s)
    s.execute(delete(OpeningHours))
    s.add_all(
        OpeningHours(weekday=b.weekday, opens=b.opens, closes=b.closes)
        for day_blocks in by_day.values()
        for b in day_blocks
    )


# "15:00-18:00" or "15.00–18.00"; blocks of one day separated by commas.
_BLOCK = re.compile(r"^(\d{1,2})[:.](\d{2})\s*[-–]\s*(\d{1,2})[:.](\d{2})$")


def parse_day(weekday: int, text: str) -> list[Block]:
    """One day's opening hours as written in the admin form, e.g. "15:00-18:00, 19:00-21:00";
    blank is closed that weekday."""
    blocks = []
    for part in (p.strip() for p in re.split(r"[,;]", text)):
        if not part:
            continue
        found = _BLOCK.match(part)
        try:
            if found is None:
                raise ValueError(part)
            h1, m1, h2, m2 = (int(x) for x in found.groups())
            blocks.append(Block(weekday, time(h1, m1), time(h2, m2)))
        except ValueError:
            raise Invalid(
                _(
                    "%(day)s: write each block as from–to in 24-hour time, "
                    "e.g. 15:00–18:00, 19:00–21:00.",
                    day=weekday_name(weekday),
                ),
                fields={f"day{weekday}": "unreadable"},
            ) from None
    return blocks


def weekday_name(weekday: int) -> str:
    """ "Monday" for 0, in the caller's language, capitalised (it starts a sentence)."""
    name = format_date(date(2024, 1, 1) + timedelta(days=weekday), "EEEE", locale=_locale())
    return name[:1].upper() + name[1:]


def closed_days_from(s: Session, first: date) -> Sequence[ClosedDay]:
    """The closed days on or after `first`, in order."""
    return s.scalars(select(ClosedDay).where(ClosedDay.day >= first).order_by(ClosedDay.day)).all()


def add_closed_day(s: Session, day: date, reason: str) -> None:
    """Close the café on `day` (again: the reason is replaced)."""
    _changed(s)
    closed = s.get(ClosedDay, day)
    if closed is None:
        s.add(ClosedDay(day=day, reason=reason))
    else:
        closed.reason = reason


def remove_closed_day(s: Session, day: date) -> None:
    _changed(s)
    s.execute(delete(ClosedDay).where(ClosedDay.day == day))


def _locale() -> str:
    return str(get_locale() or "da")


# The opening hours and closed days, read once per transaction (Session.info) in one query: a
# help:request asks whether the café is open, and with nobody on duty when the next shift starts,
# which read them four times. Not cached across transactions: other processes (another hub, a
# test, an admin's command) change them without telling this one, and checking a version would
# cost the same round trip as reading these few rows. The setters below drop the copy, so a
# transaction sees its own changes.
_SNAPSHOT = "hub.schedule.snapshot"


@dataclass(frozen=True)
class _Snapshot:
    blocks: dict[int, list[tuple[time, time]]]  # by weekday, in order
    closed: frozenset[date]


def _snapshot(s: Session) -> _Snapshot:
    snapshot: _Snapshot | None = s.info.get(_SNAPSHOT)
    if snapshot is None:
        rows = s.execute(
            union_all(
                select(
                    OpeningHours.weekday,
                    OpeningHours.opens,
                    OpeningHours.closes,
                    cast(null(), Date).label("day"),
                ),
                select(
                    cast(null(), Integer), cast(null(), Time), cast(null(), Time), ClosedDay.day
                ),
            )
        ).all()
        blocks: dict[int, list[tuple[time, time]]] = {}
        for weekday, opens, closes, _day in sorted(
            (r for r in rows if r.day is None), key=lambda r: (r.weekday, r.opens)
        ):
            blocks.setdefault(weekday, []).append((opens, closes))
        closed = frozenset(r.day for r in rows if r.day is not None)
        snapshot = _Snapshot(blocks, closed)
        s.info[_SNAPSHOT] = snapshot
    return snapshot


def _changed(s: Session) -> None:
    s.info.pop(_SNAPSHOT, None)


def _has_opening_hours(s: Session) -> bool:
    return bool(_snapshot(s).blocks)


def _blocks_by_weekday(s: Session) -> dict[int, list[tuple[time, time]]]:
    return _snapshot(s).blocks


def _closed_days(s: Session, first: date, last: date) -> set[date]:
    return {day for day in _snapshot(s).closed if first <= day <= last}


def _is_closed_day(s: Session, day: date) -> bool:
    return day in _snapshot(s).closed
