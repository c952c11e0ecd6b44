"""The student's ask page and the helper station. The live parts run in the page over Socket.IO."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from pydantic import Field

from hub import clock
from hub.accounts import service as accounts
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role, User
from hub.catalog.models import GRADES
from hub.catalog.service import catalog
from hub.errors import Invalid
from hub.matching.service import duty_of
from hub.shifts import service as shifts
from hub.state import hub_state
from hub.validation import Payload, parse

student_bp = Blueprint("student", __name__)
helper_bp = Blueprint("helper", __name__)


@student_bp.route("/student")
@roles_required(Role.STUDENT)
def ask() -> ResponseReturnValue:
    identity = caller()
    with hub_state().db.transaction() as s:
        user = s.get(User, identity.user_id)
        return render_template(
            "student.html",
            catalog=catalog(s, str(get_locale())),
            grade=user.grade if user else None,
        )


class ProfileIn(Payload):
    grade_min: int = Field(ge=min(GRADES), le=max(GRADES))
    grade_max: int = Field(ge=min(GRADES), le=max(GRADES))
    subjects: list[int] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)


@helper_bp.route("/helper")
@roles_required(Role.HELPER)
def station() -> ResponseReturnValue:
    identity = caller()
    config, now = hub_state().config, clock.now()
    window = timedelta(minutes=config.shift_reminder_minutes)
    with hub_state().db.transaction() as s:
        user = s.get(User, identity.user_id)
        assert user is not None
        soon = shifts.next_shift_within(s, user.id, now, window, config.zone)
        return render_template(
            "helper.html",
            me=user,
            duty=duty_of(s, user.id).value,
            refusal=accounts.duty_refusal_reason(s, user.id, now),
            cafe_timezone=config.timezone,
            reminder=(
                {
                    "time": shifts.clock_text(soon.starts_at, config.zone),
                    "starts_in_s": int((soon.starts_at - now).total_seconds()),
                    "text": shifts.starts_soon_text(soon, now, config.zone),
                }
                if soon
                else None
            ),
            catalog=catalog(s, str(get_locale())),
            my_subjects={x.id for x in user.subjects},
            my_languages={x.code for x in user.languages},
            saved=request.args.get("saved") == "1",
        )


@helper_bp.route("/helper/profile", methods=["POST"])
@roles_required(Role.HELPER)
def save_profile() -> ResponseReturnValue:
    identity = caller()
    form = {
        "grade_min": request.form.get("grade_min"),
        "grade_max": request.form.get("grade_max"),
        "subjects": request.form.getlist("subjects"),
        "languages": request.form.getlist("languages"),
    }
    data = parse(form, ProfileIn)
    if data.grade_min > data.grade_max:
        raise Invalid(_("The lowest grade cannot be above the highest."))
    with hub_state().db.transaction() as s:
        accounts.set_helper_skills(
            s, identity.user_id, data.grade_min, data.grade_max, data.subjects, data.languages
        )
    return redirect(url_for("helper.station", saved=1))
