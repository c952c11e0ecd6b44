"""The opening hours page for admins (`/admin/schedule`: the week's hours and the closed days),
and `GET /api/schedule/status` for the student page and the kiosk: is the café open now, and if
not when it opens, in the caller's language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import Field

from hub import clock
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role
from hub.errors import Invalid
from hub.forms import Failure, failure_of, parsed_form
from hub.schedule import service
from hub.schedule.models import WEEKDAYS
from hub.state import hub_state
from hub.validation import Payload

bp = Blueprint("schedule", __name__)


class ClosedDayIn(Payload):
    day: date
    reason: str = Field(default="", max_length=200)


@bp.route("/api/schedule/status")
def status() -> ResponseReturnValue:
    state = hub_state()
    with state.db.transaction() as s:
        return {"ok": True, **service.opening_status(s, clock.now(), state.config.zone)}


@bp.route("/admin/schedule")
@roles_required(Role.ADMIN)
def page() -> ResponseReturnValue:
    return _page(None)


def _page(failure: Failure | None) -> str:
    state = hub_state()
    now = clock.now()
    with state.db.transaction() as s:
        hours = service.opening_hours(s)
        closed = service.closed_days_from(s, now.astimezone(state.config.zone).date())
        return render_template(
            "schedule/hours.html",
            me=caller(),
            days=[
                (
                    weekday,
                    service.weekday_name(weekday),
                    ", ".join(b.text for b in hours if b.weekday == weekday),
                )
                for weekday in WEEKDAYS
            ],
            closed_days=closed,
            status=service.opening_status(s, now, state.config.zone),
            timezone=state.config.timezone,
            failure=failure,
        )


def _attempt(form: str, change: Callable[[], None]) -> ResponseReturnValue:
    """Run `change`; back to the page with "Saved", or the page again with the error."""
    try:
        change()
    except Invalid as exc:
        return _page(failure_of(form, exc)), exc.status
    flash(_("Saved."), "notice")
    return redirect(url_for("schedule.page"))


@bp.route("/admin/schedule/hours", methods=["POST"])
@roles_required(Role.ADMIN)
def set_hours() -> ResponseReturnValue:
    def change() -> None:
        blocks = [
            block
            for weekday in WEEKDAYS
            for block in service.parse_day(weekday, request.form.get(f"day{weekday}", "")[:200])
        ]
        with hub_state().db.transaction() as s:
            service.set_opening_hours(s, blocks)

    return _attempt("hours", change)


@bp.route("/admin/schedule/closed-days", methods=["POST"])
@roles_required(Role.ADMIN)
def add_closed_day() -> ResponseReturnValue:
    def change() -> None:
        data = parsed_form(ClosedDayIn, {"day": _("Date"), "reason": _("Reason")})
        with hub_state().db.transaction() as s:
            service.add_closed_day(s, data.day, data.reason)

    return _attempt("closed-day", change)


@bp.route("/admin/schedule/closed-days/<day>/remove", methods=["POST"])
@roles_required(Role.ADMIN)
def remove_closed_day(day: str) -> ResponseReturnValue:
    def change() -> None:
        try:
            which = date.fromisoformat(day)
        except ValueError:
            raise Invalid(_("That is not a date."), fields={"day": "date"}) from None
        with hub_state().db.transaction() as s:
            service.remove_closed_day(s, which)

    return _attempt("closed-day", change)
