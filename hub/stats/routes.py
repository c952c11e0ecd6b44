"""The statistics dashboard and its CSV export. Admins see every site's figures; site staff only
their own site's. Filters are query parameters, so a view can be bookmarked and exported."""

from __future__ import annotations

import csv
import io
from datetime import date

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.accounts.access import Identity, caller, roles_required
from hub.accounts.models import Role, Site
from hub.audit import service as audit
from hub.audit.service import Action
from hub.errors import Forbidden, Invalid, NotFound
from hub.state import hub_state
from hub.stats import service

bp = Blueprint("stats", __name__, url_prefix="/admin/stats")

# A period longer than this is shown per week unless the reader asks for days.
DAYS_SHOWN_PER_DAY = 62


@bp.route("")
@roles_required(Role.ADMIN, Role.SITE_STAFF)
def dashboard() -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        board = _dashboard(s, me)
        sites = list(s.scalars(select(Site).order_by(Site.name)))
    return render_template(
        "stats/dashboard.html",
        me=me,
        board=board,
        sites=sites,
        site_name=next((x.name for x in sites if x.id == board.site_id), None),
        min_students=service.MIN_STUDENTS,
        query=request.args.to_dict(),
    )


@bp.route("/export.csv")
@roles_required(Role.ADMIN, Role.SITE_STAFF)
def export() -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        board = _dashboard(s, me)
        audit.record(s, me, Action.STATS_EXPORTED, _export_ref(board), clock.now())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["table", "key", "label", "value"])
    writer.writerows([_inert(cell) for cell in row] for row in board.csv_rows())
    site = f"-site{board.site_id}" if board.site_id is not None else ""
    name = f"statistics-{board.period.first}-{board.period.last}{site}.csv"
    return Response(
        "\ufeff" + out.getvalue(),  # the byte-order mark makes Excel read it as UTF-8 (æ, ø, å)
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _export_ref(board: service.Dashboard) -> str:
    """Which figures were exported, for the audit log: "stats:<first>..<last>[:site:<id>]"."""
    site = f":site:{board.site_id}" if board.site_id is not None else ""
    return f"stats:{board.period.first}..{board.period.last}{site}"


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (names are typed by people)."""
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


def _dashboard(s: Session, me: Identity) -> service.Dashboard:
    period = _period()
    by = request.args.get("by") or ("day" if period.days <= DAYS_SHOWN_PER_DAY else "week")
    if by not in ("day", "week"):
        raise Invalid(_("Show the sessions per day or per week."), fields={"by": "unknown"})
    site_id = _site_in_scope(s, me)
    return service.compute(s, period, site_id, by, str(get_locale() or "da"))


def _period() -> service.Period:
    today = service.local_day(clock.now())
    try:
        last = date.fromisoformat(request.args.get("to") or today.isoformat())
        first_given = request.args.get("from")
        period = (
            service.Period(date.fromisoformat(first_given), last)
            if first_given
            else service.Period.ending(last)
        )
    except ValueError as exc:
        raise Invalid(_("Dates are written as YYYY-MM-DD."), fields={"from": "date"}) from exc
    if period.first > period.last:
        raise Invalid(_("The period must start before it ends."), fields={"from": "after_to"})
    if period.end - period.start > service.LONGEST_PERIOD:
        raise Invalid(_("Choose a period of at most two years."), fields={"from": "too_long"})
    return period


def _site_in_scope(s: Session, me: Identity) -> int | None:
    """The site whose figures the caller asked for: site staff only ever their own."""
    asked = request.args.get("site") or None
    try:
        site_id = int(asked) if asked is not None else None
    except ValueError as exc:
        raise Invalid(_("That site was not found."), fields={"site": "unknown"}) from exc
    if me.role == Role.SITE_STAFF:
        if site_id is not None and site_id != me.site_id:
            raise Forbidden(_("You can see the figures of your own site only."))
        return me.site_id
    if site_id is not None and s.get(Site, site_id) is None:
        raise NotFound(_("That site was not found."))
    return site_id
