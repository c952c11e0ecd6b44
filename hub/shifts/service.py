"""Who works which shift: helpers sign up, drop and swap (until `shift_change_cutoff_h` before the
shift; a swap only when the other helper says yes), coordinators assign helpers of their own
organisation (admins any), and everyone staffing the café reads the coverage of each shift per
subject, grade and language. Shifts come from hub.schedule; the functions here take `now` and
the cut-off from the caller, so they are plain functions of the database and time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.accounts.access import Identity
from hub.accounts.models import Role, User
from hub.catalog.models import GRADES, Language, Subject
from hub.errors import Conflict, Forbidden, Invalid, NotFound
from hub.matching.models import HelpRequest
from hub.realtime.notices import Notice
from hub.schedule.service import Shift, shift_at, shifts_between
from hub.shifts.models import ShiftFeed, ShiftSignup, SwapProposal, SwapStatus

# How far ahead the plans show shifts, and next_covered_shift looks.
PLAN_DAYS = 28


# ---------------------------------------------------------------------------------------------
# Checks shared by the changes below


def hours_text(hours: float) -> str:
    return str(int(hours)) if float(hours).is_integer() else f"{hours:g}"


def _changeable(shift_start: datetime, now: datetime, cutoff_h: float, action: str) -> None:
    """Refuse a drop or swap of a shift that starts within the cut-off (Conflict)."""
    if shift_start - now >= timedelta(hours=cutoff_h):
        return
    hours = hours_text(cutoff_h)
    if action == "drop":
        message = _(
            "You can no longer drop this shift — it starts in less than %(hours)s hours.",
            hours=hours,
        )
    else:
        message = _(
            "You can no longer swap this shift — it starts in less than %(hours)s hours.",
            hours=hours,
        )
    raise Conflict(message, reason="cutoff")


def _future_shift(s: Session, key: str, now: datetime) -> Shift:
    shift = shift_at(s, key)
    if shift is None:
        raise NotFound(_("There is no such shift."))
    if shift.starts_at <= now:
        raise Conflict(_("This shift has already started."), reason="started")
    return shift


def _approved_helper(s: Session, helper_id: int) -> User:
    """The calling helper, if approved to work shifts."""
    helper = s.get(User, helper_id)
    if helper is None or helper.role != Role.HELPER or not helper.active:
        raise NotFound(_("There is no such helper."))
    if not helper.approved:
        raise Forbidden(
            _("Only approved helpers can work shifts. A coordinator must approve you first.")
        )
    return helper


def _signup(s: Session, helper_id: int, key: str) -> ShiftSignup | None:
    return s.get(ShiftSignup, (helper_id, key))


def _add_signup(
    s: Session, helper: User, shift: Shift, now: datetime, by: int | None = None
) -> ShiftSignup:
    if _signup(s, helper.id, shift.key) is not None:
        raise Conflict(
            _("%(name)s already works this shift.", name=helper.display_name), reason="signed_up"
        )
    signup = ShiftSignup(
        helper_id=helper.id,
        shift_key=shift.key,
        starts_at=shift.starts_at,
        created_at=now,
        assigned_by_id=by,
    )
    s.add(signup)
    return signup


def _withdraw_swaps_of(s: Session, helper_id: int, key: str) -> None:
    """Pending swaps that would move `helper_id`'s sign-up for `key`, which is gone now."""
    s.execute(
        update(SwapProposal)
        .where(
            SwapProposal.status == SwapStatus.PENDING,
            or_(
                (SwapProposal.from_helper_id == helper_id) & (SwapProposal.offered_key == key),
                (SwapProposal.to_helper_id == helper_id) & (SwapProposal.wanted_key == key),
            ),
        )
        .values(status=SwapStatus.WITHDRAWN)
    )


# ---------------------------------------------------------------------------------------------
# Helpers' own changes


def sign_up(s: Session, helper_id: int, key: str, now: datetime) -> ShiftSignup:
    """The helper works the shift `key`. Only approved helpers; not once it has started."""
    helper = _approved_helper(s, helper_id)
    return _add_signup(s, helper, _future_shift(s, key, now), now)


def drop(s: Session, helper_id: int, key: str, now: datetime, cutoff_h: float) -> None:
    """The helper no longer works the shift; refused within the cut-off before it."""
    signup = _signup(s, helper_id, key)
    if signup is None:
        raise NotFound(_("You are not signed up for this shift."))
    _changeable(signup.starts_at, now, cutoff_h, "drop")
    s.delete(signup)
    _withdraw_swaps_of(s, helper_id, key)


def propose_swap(
    s: Session,
    helper_id: int,
    offered_key: str,
    to_helper_id: int,
    wanted_key: str | None,
    now: datetime,
    cutoff_h: float,
) -> SwapProposal:
    """Offer the helper's shift `offered_key` to a helper of the same organisation, optionally for
    their shift `wanted_key` in return. Nothing moves until they accept."""
    me = _approved_helper(s, helper_id)
    mine = _signup(s, helper_id, offered_key)
    if mine is None:
        raise NotFound(_("You are not signed up for this shift."))
    _changeable(mine.starts_at, now, cutoff_h, "swap")
    other = next((h for h in swap_partners(s, me) if h.id == to_helper_id), None)
    if other is None:
        raise Invalid(
            _("Choose an approved helper of your own organisation."),
            fields={"to_helper_id": "unknown"},
        )
    if _signup(s, other.id, offered_key) is not None:
        raise Conflict(
            _("%(name)s already works this shift.", name=other.display_name), reason="signed_up"
        )
    if wanted_key:
        theirs = _signup(s, other.id, wanted_key)
        if theirs is None:
            raise Invalid(
                _("%(name)s does not work the shift you asked for.", name=other.display_name),
                fields={"wanted_key": "not_theirs"},
            )
        if _signup(s, me.id, wanted_key) is not None:
            raise Conflict(_("You already work the shift you asked for."), reason="signed_up")
        _changeable(theirs.starts_at, now, cutoff_h, "swap")
    duplicate = s.scalar(
        select(SwapProposal.id).where(
            SwapProposal.from_helper_id == me.id,
            SwapProposal.to_helper_id == other.id,
            SwapProposal.offered_key == offered_key,
            SwapProposal.status == SwapStatus.PENDING,
        )
    )
    if duplicate is not None:
        raise Conflict(_("You have already offered this shift to that helper."), reason="pending")
    swap = SwapProposal(
        from_helper_id=me.id,
        to_helper_id=other.id,
        offered_key=offered_key,
        wanted_key=wanted_key or None,
        created_at=now,
    )
    s.add(swap)
    s.flush()
    return swap


def answer_swap(
    s: Session, helper_id: int, swap_id: int, accept: bool, now: datetime, cutoff_h: float
) -> SwapProposal:
    """The helper a swap was offered to says yes (the sign-ups move) or no."""
    swap = s.get(SwapProposal, swap_id)
    if swap is None or swap.to_helper_id != helper_id:
        raise NotFound(_("There is no such swap."))
    if swap.status != SwapStatus.PENDING:
        raise Conflict(_("This swap has already been answered or withdrawn."), reason="answered")
    if not accept:
        swap.status, swap.answered_at = SwapStatus.DECLINED, now
        return swap
    me = _approved_helper(s, helper_id)
    offered = _signup(s, swap.from_helper_id, swap.offered_key)
    wanted = _signup(s, helper_id, swap.wanted_key) if swap.wanted_key else None
    if offered is None or (swap.wanted_key and wanted is None):
        raise Conflict(_("This swap has already been answered or withdrawn."), reason="answered")
    for signup in (offered, wanted):
        if signup is not None:
            _changeable(signup.starts_at, now, cutoff_h, "swap")
    if _signup(s, helper_id, swap.offered_key) is not None:
        raise Conflict(_("You already work this shift."), reason="signed_up")
    giver = s.get(User, swap.from_helper_id)
    assert giver is not None  # the sign-up above belongs to them
    if wanted is not None and _signup(s, giver.id, wanted.shift_key) is not None:
        raise Conflict(
            _("%(name)s already works this shift.", name=giver.display_name), reason="signed_up"
        )
    _move(s, offered, me, now)
    if wanted is not None:
        _move(s, wanted, giver, now)
    swap.status, swap.answered_at = SwapStatus.ACCEPTED, now
    return swap


def _move(s: Session, signup: ShiftSignup, to: User, now: datetime) -> None:
    s.delete(signup)
    _withdraw_swaps_of(s, signup.helper_id, signup.shift_key)
    s.flush()
    s.add(
        ShiftSignup(
            helper_id=to.id, shift_key=signup.shift_key, starts_at=signup.starts_at, created_at=now
        )
    )


def withdraw_swap(s: Session, helper_id: int, swap_id: int) -> None:
    """The helper takes back a swap they offered and nobody has answered yet."""
    swap = s.get(SwapProposal, swap_id)
    if swap is None or swap.from_helper_id != helper_id:
        raise NotFound(_("There is no such swap."))
    if swap.status != SwapStatus.PENDING:
        raise Conflict(_("This swap has already been answered or withdrawn."), reason="answered")
    swap.status = SwapStatus.WITHDRAWN


# ---------------------------------------------------------------------------------------------
# Coordinators and admins


def assign(s: Session, by: Identity, helper_id: int, key: str, now: datetime) -> ShiftSignup:
    """A coordinator puts a helper of their own organisation on a shift (an admin: any helper);
    also within the cut-off, since it adds cover, but not once the shift has started."""
    if by.role not in (Role.ADMIN, Role.COORDINATOR):
        raise Forbidden(_("Your role may not do this."))
    helper = s.get(User, helper_id)
    if helper is None or helper.role != Role.HELPER or not helper.active:
        raise NotFound(_("There is no such helper."))
    if by.role == Role.COORDINATOR and helper.organisation_id != by.organisation_id:
        raise Forbidden(_("You can assign helpers of your own organisation only."))
    if not helper.approved:
        raise Forbidden(_("That helper is not approved yet."))
    return _add_signup(s, helper, _future_shift(s, key, now), now, by=by.user_id)


def unassign(s: Session, by: Identity, helper_id: int, key: str, now: datetime) -> None:
    """A coordinator takes a helper of their own organisation off a shift (an admin: any
    helper), whether assigned or signed up themselves; also within the cut-off (the coordinator
    is the one a helper who cannot come asks), but not once the shift has started."""
    if by.role not in (Role.ADMIN, Role.COORDINATOR):
        raise Forbidden(_("Your role may not do this."))
    helper = s.get(User, helper_id)
    if helper is None or helper.role != Role.HELPER:
        raise NotFound(_("There is no such helper."))
    if by.role == Role.COORDINATOR and helper.organisation_id != by.organisation_id:
        raise Forbidden(_("You can take helpers of your own organisation off a shift only."))
    signup = _signup(s, helper.id, key)
    if signup is None:
        raise NotFound(_("%(name)s does not work this shift.", name=helper.display_name))
    if signup.starts_at <= now:
        raise Conflict(_("This shift has already started."), reason="started")
    s.delete(signup)
    _withdraw_swaps_of(s, helper.id, key)


def assignable_helpers(s: Session, by: Identity) -> Sequence[User]:
    """The approved helpers `by` may assign: their organisation's, or for an admin everyone."""
    query = select(User).where(User.role == Role.HELPER, User.active, User.approved)
    if by.role != Role.ADMIN:
        query = query.where(User.organisation_id == by.organisation_id)
    return s.scalars(query.order_by(User.display_name)).all()


def swap_partners(s: Session, helper: User) -> Sequence[User]:
    """The helpers `helper` may offer a swap: approved helpers of the same organisation."""
    return s.scalars(
        select(User)
        .where(
            User.role == Role.HELPER,
            User.active,
            User.approved,
            User.organisation_id == helper.organisation_id,
            User.id != helper.id,
        )
        .order_by(User.display_name)
    ).all()


# ---------------------------------------------------------------------------------------------
# Reading the plan


def helpers_on(s: Session, keys: Iterable[str]) -> dict[str, list[User]]:
    """The active, approved helpers signed up for each shift key, by name."""
    keys = list(keys)
    on: dict[str, list[User]] = {key: [] for key in keys}
    if not keys:
        return on
    rows = s.execute(
        select(ShiftSignup.shift_key, User)
        .join(User, User.id == ShiftSignup.helper_id)
        .where(ShiftSignup.shift_key.in_(keys), User.active, User.approved)
        .order_by(User.display_name)
    )
    for key, user in rows:
        on[key].append(user)
    return on


@dataclass(frozen=True)
class Cover:
    """How many helpers on a shift can help with one subject, grade or language; none is a gap."""

    label: str
    helpers: int

    @property
    def gap(self) -> bool:
        return self.helpers == 0


@dataclass(frozen=True)
class ShiftCoverage:
    shift: Shift
    helpers: list[User]
    subjects: list[Cover]
    grades: list[Cover]
    languages: list[Cover]

    @property
    def gaps(self) -> int:
        return sum(c.gap for c in (*self.subjects, *self.grades, *self.languages))


def coverage(s: Session, start: datetime, end: datetime, locale: str) -> list[ShiftCoverage]:
    """Each shift between `start` and `end`, with how many of its helpers cover each active
    subject, each grade and each active language."""
    subjects = s.scalars(select(Subject).where(Subject.active).order_by(Subject.id)).all()
    languages = s.scalars(select(Language).where(Language.active).order_by(Language.code)).all()
    shifts = shifts_between(s, start, end)
    on = helpers_on(s, (shift.key for shift in shifts))
    plan = []
    for shift in shifts:
        helpers = on[shift.key]
        by_subject = Counter(sub.id for h in helpers for sub in h.subjects)
        by_language = Counter(lang.code for h in helpers for lang in h.languages)
        plan.append(
            ShiftCoverage(
                shift,
                helpers,
                [Cover(sub.name(locale), by_subject[sub.id]) for sub in subjects],
                [
                    Cover(_("Grade %(n)d", n=grade), sum(_teaches(h, grade) for h in helpers))
                    for grade in GRADES
                ],
                [Cover(lang.name(locale), by_language[lang.code]) for lang in languages],
            )
        )
    return plan


def _teaches(helper: User, grade: int) -> bool:
    return helper.grade_min <= grade <= helper.grade_max


def _can_help(helper: User, subject_id: int, grade: int, language_code: str | None) -> bool:
    return (
        _teaches(helper, grade)
        and any(sub.id == subject_id for sub in helper.subjects)
        and (language_code is None or any(lang.code == language_code for lang in helper.languages))
    )


def next_covered_shift(
    s: Session,
    subject_id: int,
    grade: int,
    language_code: str | None,
    now: datetime,
    zone: ZoneInfo | None = None,
) -> Shift | None:
    """The first shift starting after `now` (within PLAN_DAYS) with a helper signed up who can
    help with this subject, grade and (if given) language; for the wait estimate's "next at".
    `zone`: the café's, as in hub.schedule (default: the running hub's)."""
    shifts = [
        shift
        for shift in shifts_between(s, now, now + timedelta(days=PLAN_DAYS), zone)
        if shift.starts_at > now
    ]
    on = helpers_on(s, (shift.key for shift in shifts))
    for shift in shifts:
        if any(_can_help(h, subject_id, grade, language_code) for h in on[shift.key]):
            return shift
    return None


def signed_up_keys(s: Session, helper_id: int, since: datetime) -> set[str]:
    return set(
        s.scalars(
            select(ShiftSignup.shift_key).where(
                ShiftSignup.helper_id == helper_id, ShiftSignup.starts_at >= since
            )
        )
    )


def pending_swaps(s: Session, helper_id: int) -> tuple[list[SwapProposal], list[SwapProposal]]:
    """The pending swaps offered to the helper, and those the helper offered."""
    swaps = s.scalars(
        select(SwapProposal)
        .where(
            SwapProposal.status == SwapStatus.PENDING,
            or_(SwapProposal.to_helper_id == helper_id, SwapProposal.from_helper_id == helper_id),
        )
        .order_by(SwapProposal.offered_key)
    ).all()
    return (
        [w for w in swaps if w.to_helper_id == helper_id],
        [w for w in swaps if w.from_helper_id == helper_id],
    )


# ---------------------------------------------------------------------------------------------
# Telling helpers: a swap offered to them, and reminders before their shifts


def _times(shift: Shift | None) -> dict[str, str] | None:
    if shift is None:
        return None
    return {"starts_at": shift.starts_at.isoformat(), "ends_at": shift.ends_at.isoformat()}


def swap_offer_notice(s: Session, swap: SwapProposal) -> Notice:
    """`shift:swap` to the helper a swap was just offered to (their station shows it live)."""
    giver = s.get(User, swap.from_helper_id)
    return Notice(
        swap.to_helper_id,
        "shift:swap",
        {
            "swap_id": swap.id,
            "from": giver.display_name if giver else "",
            "offered": _times(shift_at(s, swap.offered_key)),
            "wanted": _times(shift_at(s, swap.wanted_key)) if swap.wanted_key else None,
        },
    )


@dataclass(frozen=True)
class Reminder:
    """A helper to remind of a shift: where and in which language (None: Danish)."""

    helper_id: int
    name: str
    email: str | None
    language: str | None
    shift: Shift


def next_shift_within(
    s: Session, helper_id: int, now: datetime, window: timedelta, zone: ZoneInfo | None = None
) -> Shift | None:
    """The helper's next shift if it starts within `window` from `now` (the station's banner)."""
    keys = s.scalars(
        select(ShiftSignup.shift_key)
        .where(
            ShiftSignup.helper_id == helper_id,
            ShiftSignup.starts_at > now,
            ShiftSignup.starts_at <= now + window,
        )
        .order_by(ShiftSignup.starts_at)
    )
    return next((shift for key in keys if (shift := shift_at(s, key, zone)) is not None), None)


def claim_due_reminders(
    s: Session, now: datetime, window: timedelta, zone: ZoneInfo | None = None
) -> list[Reminder]:
    """The sign-ups of active, approved helpers whose shift starts within `window` and who have
    not been reminded of it, each marked reminded here: once per sign-up, and with several hub
    processes only the one whose mark lands reminds. A sign-up for a shift the opening hours no
    longer make is left alone."""
    rows = s.execute(
        select(ShiftSignup.helper_id, ShiftSignup.shift_key, User)
        .join(User, User.id == ShiftSignup.helper_id)
        .where(
            ShiftSignup.reminded_at.is_(None),
            ShiftSignup.starts_at > now,
            ShiftSignup.starts_at <= now + window,
            User.role == Role.HELPER.value,
            User.active,
            User.approved,
        )
        .order_by(ShiftSignup.starts_at, ShiftSignup.helper_id)
    ).all()
    reminders = []
    for helper_id, key, helper in rows:
        shift = shift_at(s, key, zone)
        if shift is None:
            continue
        marked = s.execute(
            update(ShiftSignup)
            .where(
                ShiftSignup.helper_id == helper_id,
                ShiftSignup.shift_key == key,
                ShiftSignup.reminded_at.is_(None),
            )
            .values(reminded_at=now)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            continue
        reminders.append(
            Reminder(
                helper_id,
                helper.display_name,
                helper.reminder_email,
                helper.reminder_language,
                shift,
            )
        )
    return reminders


def clock_text(at: datetime, zone: ZoneInfo) -> str:
    """A 24-hour time in the café's time zone, e.g. "15:00"."""
    return at.astimezone(zone).strftime("%H:%M")


def reminder_notice(reminder: Reminder, now: datetime, zone: ZoneInfo) -> Notice:
    """`shift:reminder` to the helper: the station shows "Your shift starts at 15:00 (in 45
    minutes)"."""
    shift = reminder.shift
    return Notice(
        reminder.helper_id,
        "shift:reminder",
        {
            "shift_key": shift.key,
            **(_times(shift) or {}),
            "time": clock_text(shift.starts_at, zone),
            "ends": clock_text(shift.ends_at, zone),
            "starts_in_s": max(0, int((shift.starts_at - now).total_seconds())),
        },
    )


def minutes_until(at: datetime, now: datetime) -> int:
    """Whole minutes until `at`, rounded up: "in 1 minute" until it starts."""
    return max(1, -int(-(at - now).total_seconds() // 60))


def starts_soon_text(shift: Shift, now: datetime, zone: ZoneInfo) -> str:
    """ "Your shift starts at 15:00 (in 45 minutes).", in the current language."""
    time, minutes = clock_text(shift.starts_at, zone), minutes_until(shift.starts_at, now)
    if minutes == 1:
        return _("Your shift starts at %(time)s (in 1 minute).", time=time)
    return _("Your shift starts at %(time)s (in %(n)s minutes).", time=time, n=minutes)


def reminder_email_text(reminder: Reminder, zone: ZoneInfo, locale: str) -> tuple[str, str]:
    """The reminder e-mail's subject and text in the current language (the caller picks the
    helper's); times are 24-hour in the café's time zone."""
    shift = reminder.shift
    time, end = clock_text(shift.starts_at, zone), clock_text(shift.ends_at, zone)
    day = format_date(shift.starts_at.astimezone(zone).date(), format="full", locale=locale)
    subject = _("Reminder: your shift at Lektiecafé Online starts at %(time)s", time=time)
    body = "\n\n".join(
        [
            _("Hello %(name)s,", name=reminder.name),
            _(
                "Your shift at Lektiecafé Online starts at %(time)s on %(day)s and ends at "
                "%(end)s.",
                time=time,
                day=day,
                end=end,
            ),
            _(
                "Open the helper station and go on duty when the shift starts. If you cannot "
                "come, tell your coordinator at once."
            ),
            _(
                "You get this e-mail because you gave your e-mail address for shift reminders. "
                "You can remove it under “My shifts” in the helper station."
            ),
        ]
    )
    return subject, body + "\n"


# ---------------------------------------------------------------------------------------------
# A helper's calendar feed


def feed_token(s: Session, helper_id: int, key: str, renew: bool = False) -> str:
    """The secret of the helper's calendar address; `renew` replaces it (the old one stops).

    The database keeps only a random nonce; the secret is derived from it with the hub's secret
    `key`, so a copy of the database alone opens nobody's calendar."""
    feed = s.get(ShiftFeed, helper_id)
    if feed is None:
        feed = ShiftFeed(helper_id=helper_id, nonce=secrets.token_urlsafe(24))
        s.add(feed)
    elif renew:
        feed.nonce = secrets.token_urlsafe(24)
    return f"{helper_id}-{_feed_mac(key, helper_id, feed.nonce)}"


def _feed_mac(key: str, helper_id: int, nonce: str) -> str:
    mac = hmac.new(key.encode(), f"shift-feed:{helper_id}:{nonce}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def feed_shifts(s: Session, token: str, key: str, since: datetime) -> list[Shift]:
    """The shifts of the helper whose feed secret is `token`, from `since` on (NotFound)."""
    helper, _dash, mac = token.partition("-")
    feed = s.get(ShiftFeed, int(helper)) if helper.isdigit() and len(helper) < 12 else None
    if feed is None or not hmac.compare_digest(mac, _feed_mac(key, feed.helper_id, feed.nonce)):
        raise NotFound(_("This page does not exist."))
    helper_id = feed.helper_id
    keys = sorted(signed_up_keys(s, helper_id, since))
    return [shift for key in keys if (shift := shift_at(s, key)) is not None]


def icalendar(shifts: Iterable[Shift], title: str, now: datetime, host: str) -> str:
    """An RFC 5545 calendar with one event per shift (UTC times, CRLF lines)."""

    def stamp(at: datetime) -> str:
        return at.strftime("%Y%m%dT%H%M%SZ")

    def text(value: str) -> str:
        return (
            value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
        )

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Lektiecafe Online//Shifts//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ]
    for shift in shifts:
        lines += [
            "BEGIN:VEVENT",
            f"UID:shift-{stamp(shift.starts_at)}@{host}",
            f"DTSTAMP:{stamp(now)}",
            f"DTSTART:{stamp(shift.starts_at)}",
            f"DTEND:{stamp(shift.ends_at)}",
            f"SUMMARY:{text(title)}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(line + "\r\n" for line in lines)


# ---------------------------------------------------------------------------------------------
# Demand beside coverage, per weekday and hour


@dataclass(frozen=True)
class WeekHours:
    """Per local weekday (0 Monday) and hour: help requests per week in the weeks before, and
    helpers signed up per week in the weeks ahead (both averaged over `weeks`)."""

    weeks: int
    requests: dict[tuple[int, int], float]
    helpers: dict[tuple[int, int], float]

    def hours(self) -> list[int]:
        """The hours with anything in them, and those between, in order."""
        used = {hour for _day, hour in (*self.requests, *self.helpers)}
        return list(range(min(used), max(used) + 1)) if used else []


def week_hours(s: Session, now: datetime, weeks: int, zone: ZoneInfo) -> WeekHours:
    asked = s.scalars(
        select(HelpRequest.created_at).where(
            HelpRequest.created_at >= now - timedelta(weeks=weeks), HelpRequest.created_at < now
        )
    )
    requests: Counter[tuple[int, int]] = Counter()
    for at in asked:
        local = at.astimezone(zone)
        requests[local.weekday(), local.hour] += 1
    helpers: Counter[tuple[int, int]] = Counter()
    shifts = shifts_between(s, now, now + timedelta(weeks=weeks))
    on = helpers_on(s, (shift.key for shift in shifts))
    for shift in shifts:
        hour = shift.starts_at
        while hour < shift.ends_at:
            local = hour.astimezone(zone)
            helpers[local.weekday(), local.hour] += len(on[shift.key])
            hour += timedelta(hours=1)
    return WeekHours(
        weeks,
        {k: n / weeks for k, n in requests.items()},
        {k: n / weeks for k, n in helpers.items()},
    )
