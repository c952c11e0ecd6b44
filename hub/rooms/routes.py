"""Pages where coordinators and admins read and close reports made from rooms."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import Field

from hub import clock
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role
from hub.audit import service as audit
from hub.audit.service import Action
from hub.errors import Conflict, Invalid
from hub.rooms import service
from hub.state import hub_state
from hub.validation import Payload, parse

bp = Blueprint("reports", __name__, url_prefix="/admin/reports")
READERS = (Role.ADMIN, Role.COORDINATOR)


class CloseIn(Payload):
    resolution: str = Field(min_length=1, max_length=2000)


@bp.route("")
@roles_required(*READERS)
def reports() -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        return render_template("admin/reports.html", me=me, reports=service.reports_for(s, me))


@bp.route("/<int:report_id>")
@roles_required(*READERS)
def report(report_id: int) -> ResponseReturnValue:
    return _report_page(report_id, error=None)


def _report_page(report_id: int, error: str | None) -> str:
    """The report with the room's chat and notes; the audit log notes who read them."""
    me = caller()
    with hub_state().db.transaction() as s:
        item = service.report_for(s, me, report_id)
        now = clock.now()
        audit.record(s, me, Action.REPORT_VIEWED, f"report:{report_id}", now)
        if item["room"].chat_deleted_at is None:
            audit.record(s, me, Action.TRANSCRIPT_VIEWED, f"room:{item['room'].id}", now)
        return render_template(
            "admin/report.html",
            me=me,
            item=item,
            error=error,
            resolution=request.form.get("resolution", ""),
        )


@bp.route("/<int:report_id>/close", methods=["POST"])
@roles_required(*READERS)
def close(report_id: int) -> ResponseReturnValue:
    me = caller()
    try:
        data = parse(request.form.to_dict(), CloseIn)
    except Invalid:
        return _report_page(report_id, _("Write what was done before closing the report.")), 400
    try:
        with hub_state().db.transaction() as s:
            service.close_report(s, me, report_id, data.resolution, clock.now())
    except Conflict as exc:
        return _report_page(report_id, exc.message), exc.status
    flash(_("The report is closed."), "notice")
    return redirect(url_for("reports.reports"))
