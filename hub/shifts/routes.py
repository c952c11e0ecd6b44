"""Shift pages: a helper's "My shifts" (sign up, drop, swap), the coordinators' and admins'
coverage plan (assign helpers, the gaps, demand beside coverage), and a helper's calendar feed
at a secret address. Every change is a small POST form that redirects back with a notice, or
shows the page again with the refusal and its status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from babel.dates import format_datetime, format_time
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from pydantic import Field
from sqlalchemy.orm import Session

from hub import clock
from hub.accounts import service as accounts
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role, User
from hub.errors import HubError, NotFound
from hub.forms import parsed_form
from hub.realtime.notices import Notice, deliver
from hub.schedule.service import Shift, shift_at, shifts_between
from hub.shifts import service
from hub.shifts.models import SHIFT_KEY_LENGTH, SwapProposal
from hub.state import hub_state
from hub.validation import Payload

bp = Blueprint("shifts", __name__, url_prefix="/shifts")

# The heatmap averages this many weeks of requests before today and of shifts after it.
HEATMAP_WEEKS = 4


class ShiftIn(Payload):
    key: str = Field(min_length=1, max_length=SHIFT_KEY_LENGTH)


class SwapIn(ShiftIn):
    to_helper_id: int
    wanted_key: str = Field(default="", max_length=SHIFT_KEY_LENGTH)


class AnswerIn(Payload):
    accept: bool


class AssignIn(ShiftIn):
    helper_id: int


class ReminderEmailIn(Payload):
    reminder_email: str = Field(default="", max_length=254)
    language: Literal["da", "en"] = "da"


def _labels() -> dict[str, str]:
    return {
        "key": _("Shift"),
        "to_helper_id": _("Helper"),
        "wanted_key": _("Their shift"),
        "helper_id": _("Helper"),
        "accept": _("Answer"),
        "reminder_email": _("E-mail for shift reminders"),
        "language": _("Language of the e-mails"),
    }


def _locale() -> str:
    return str(get_locale() or "da")


def shift_label(shift: Shift) -> str:
    """E.g. "Mon 7 Dec 15:00–18:00" in the café's time zone and the reader's language."""
    zone, locale = hub_state().config.zone, _locale()
    day = format_datetime(shift.starts_at, "EEE d MMM HH:mm", tzinfo=zone, locale=locale)
    return f"{day}–{format_time(shift.ends_at, 'HH:mm', tzinfo=zone, locale=locale)}"


def _key_label(s: Session, key: str | None) -> str:
    shift = shift_at(s, key) if key else None
    return shift_label(shift) if shift else (key or "")


def _change(
    change: Callable[[Session, datetime, float], Any],
    page: Callable[[str], str],
    done: str,
    back: str,
) -> ResponseReturnValue:
    """Run `change(s, now, cutoff_h)`; redirect to `back` with `done`, or show `page` again with
    the refusal."""
    try:
        with hub_state().db.transaction() as s:
            change(s, clock.now(), hub_state().config.shift_change_cutoff_h)
    except HubError as exc:
        return page(exc.message), exc.status
    flash(done, "notice")
    return redirect(url_for(back))


# ---------------------------------------------------------------------------------------------
# My shifts


@bp.route("")
@roles_required(Role.HELPER)
def mine() -> ResponseReturnValue:
    return _mine_page("")


def _mine_page(error: str) -> str:
    me_id = caller().user_id
    now = clock.now()
    cutoff = timedelta(hours=hub_state().config.shift_change_cutoff_h)
    with hub_state().db.transaction() as s:
        me = s.get(User, me_id)
        assert me is not None  # roles_required admitted an active user
        shifts = shifts_between(s, now, now + timedelta(days=service.PLAN_DAYS))
        shifts = [shift for shift in shifts if shift.starts_at > now]
        mine = service.signed_up_keys(s, me_id, now)
        on = service.helpers_on(s, (shift.key for shift in shifts))
        offered_to_me, offered_by_me = service.pending_swaps(s, me_id)
        colleagues = service.swap_partners(s, me)
        swaps_to_me = [_swap_view(s, w) for w in offered_to_me]
        swaps_by_me = [_swap_view(s, w) for w in offered_by_me]
        feed = service.feed_token(s, me_id, hub_state().config.secret_key)
    return render_template(
        "shifts/mine.html",
        me=me,
        error=error,
        rows=[
            {
                "key": shift.key,
                "label": shift_label(shift),
                "mine": shift.key in mine,
                "helpers": len(on[shift.key]),
                "changeable": shift.starts_at - now >= cutoff,
            }
            for shift in shifts
        ],
        my_keys=[(shift.key, shift_label(shift)) for shift in shifts if shift.key in mine],
        other_keys=[(shift.key, shift_label(shift)) for shift in shifts if shift.key not in mine],
        colleagues=colleagues,
        swaps_to_me=swaps_to_me,
        swaps_by_me=swaps_by_me,
        cutoff_h=service.hours_text(hub_state().config.shift_change_cutoff_h),
        feed_url=url_for("shifts.feed", token=feed, _external=True),
        reminder_minutes=hub_state().config.shift_reminder_minutes,
        email_on=bool(hub_state().config.smtp_host),
        email_language=me.reminder_language or _locale(),
    )


def _swap_view(s: Session, swap: SwapProposal) -> dict[str, Any]:
    def name(user_id: int) -> str:
        user = s.get(User, user_id)
        return user.display_name if user else ""

    return {
        "id": swap.id,
        "from": name(swap.from_helper_id),
        "to": name(swap.to_helper_id),
        "offered": _key_label(s, swap.offered_key),
        "wanted": _key_label(s, swap.wanted_key) if swap.wanted_key else "",
    }


def _mine_change(
    change: Callable[[Session, datetime, float], Any], done: str
) -> ResponseReturnValue:
    return _change(change, _mine_page, done, "shifts.mine")


@bp.route("/signup", methods=["POST"])
@roles_required(Role.HELPER)
def sign_up() -> ResponseReturnValue:
    form, me = parsed_form(ShiftIn, _labels()), caller().user_id
    return _mine_change(
        lambda s, now, _cut: service.sign_up(s, me, form.key, now),
        _("You are signed up for the shift."),
    )


@bp.route("/drop", methods=["POST"])
@roles_required(Role.HELPER)
def drop() -> ResponseReturnValue:
    form, me = parsed_form(ShiftIn, _labels()), caller().user_id
    return _mine_change(
        lambda s, now, cut: service.drop(s, me, form.key, now, cut),
        _("You no longer work the shift."),
    )


@bp.route("/swaps", methods=["POST"])
@roles_required(Role.HELPER)
def propose_swap() -> ResponseReturnValue:
    form, me = parsed_form(SwapIn, _labels()), caller().user_id
    notices: list[Notice] = []

    def change(s: Session, now: datetime, cut: float) -> None:
        swap = service.propose_swap(
            s, me, form.key, form.to_helper_id, form.wanted_key or None, now, cut
        )
        notices.append(service.swap_offer_notice(s, swap))

    answer = _mine_change(
        change, _("Your swap is offered. It happens when the other helper says yes.")
    )
    deliver(notices)  # after the commit; none if it was refused
    return answer


@bp.route("/swaps/<int:swap_id>/answer", methods=["POST"])
@roles_required(Role.HELPER)
def answer_swap(swap_id: int) -> ResponseReturnValue:
    form, me = parsed_form(AnswerIn, _labels()), caller().user_id
    return _mine_change(
        lambda s, now, cut: service.answer_swap(s, me, swap_id, form.accept, now, cut),
        _("The swap is done.") if form.accept else _("You said no to the swap."),
    )


@bp.route("/swaps/<int:swap_id>/withdraw", methods=["POST"])
@roles_required(Role.HELPER)
def withdraw_swap(swap_id: int) -> ResponseReturnValue:
    me = caller().user_id
    return _mine_change(
        lambda s, _now, _cut: service.withdraw_swap(s, me, swap_id), _("The swap is withdrawn.")
    )


@bp.route("/email", methods=["POST"])
@roles_required(Role.HELPER)
def set_reminder_email() -> ResponseReturnValue:
    form, me = parsed_form(ReminderEmailIn, _labels()), caller().user_id
    done = (
        _("Saved. We will remind you by e-mail before your shifts.")
        if form.reminder_email.strip()
        else _("Saved. You get no e-mail reminders.")
    )
    return _mine_change(
        lambda s, _now, _cut: accounts.set_reminder_email(
            s, me, form.reminder_email, form.language
        ),
        done,
    )


@bp.route("/feed/renew", methods=["POST"])
@roles_required(Role.HELPER)
def renew_feed() -> ResponseReturnValue:
    me = caller().user_id
    return _mine_change(
        lambda s, _now, _cut: service.feed_token(s, me, hub_state().config.secret_key, renew=True),
        _("Your calendar has a new address. The old one no longer works."),
    )


@bp.route("/feed/<token>.ics")
def feed(token: str) -> ResponseReturnValue:
    """A helper's own shifts for their calendar app; the secret address is the only key."""
    if len(token) > 64:
        raise NotFound(_("This page does not exist."))
    now, key = clock.now(), hub_state().config.secret_key
    with hub_state().db.transaction() as s:
        shifts = service.feed_shifts(s, token, key, now - timedelta(days=30))
    body = service.icalendar(shifts, _("Shift at Lektiecafé Online"), now, request.host)
    return Response(body, mimetype="text/calendar", headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------
# Coverage and assignment


@bp.route("/coverage")
@roles_required(Role.COORDINATOR, Role.ADMIN)
def coverage() -> ResponseReturnValue:
    return _coverage_page("")


def _coverage_page(error: str) -> str:
    me = caller()
    now = clock.now()
    with hub_state().db.transaction() as s:
        plan = service.coverage(s, now, now + timedelta(days=service.PLAN_DAYS), _locale())
        helpers = service.assignable_helpers(s, me)
        heat = service.week_hours(s, now, HEATMAP_WEEKS, hub_state().config.zone)
    return render_template(
        "shifts/coverage.html",
        me=me,
        error=error,
        plan=[(shift_label(c.shift), c) for c in plan],
        helpers=helpers,
        heat=heat,
        weekdays=[_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")],
    )


@bp.route("/assign", methods=["POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def assign() -> ResponseReturnValue:
    form, me = parsed_form(AssignIn, _labels()), caller()
    return _change(
        lambda s, now, _cut: service.assign(s, me, form.helper_id, form.key, now),
        _coverage_page,
        _("The helper is on the shift."),
        "shifts.coverage",
    )


@bp.route("/unassign", methods=["POST"])
@roles_required(Role.COORDINATOR, Role.ADMIN)
def unassign() -> ResponseReturnValue:
    form, me = parsed_form(AssignIn, _labels()), caller()
    return _change(
        lambda s, now, _cut: service.unassign(s, me, form.helper_id, form.key, now),
        _coverage_page,
        _("The helper is off the shift."),
        "shifts.coverage",
    )
