"""The helpdesk's pages: opening a ticket from any page (also without an account), following it,
"my tickets", and the desk where admins, site staff and coordinators work the tickets."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import Field

from hub import clock
from hub.accounts.access import Identity, caller, current_identity, roles_required
from hub.accounts.models import Role
from hub.audit import service as audit
from hub.audit.service import Action
from hub.errors import Forbidden, HubError
from hub.forms import parsed_form
from hub.helpdesk import service
from hub.state import hub_state
from hub.validation import Payload

bp = Blueprint("helpdesk", __name__, url_prefix="/help")
PEOPLE = (Role.ADMIN, Role.COORDINATOR, Role.SITE_STAFF, Role.HELPER, Role.STUDENT)
WORKERS = (Role.ADMIN, Role.SITE_STAFF, Role.COORDINATOR)


class TicketIn(Payload):
    category: str = Field(max_length=12)
    text: str = Field(default="", max_length=2000)
    page: str = Field(default="", max_length=500)


class ReplyIn(Payload):
    text: str = Field(min_length=1, max_length=2000)


class StatusIn(Payload):
    status: str = Field(max_length=12)


class AssignIn(Payload):
    assignee_id: str = Field(default="", max_length=12, pattern=r"^\d*$")  # "": nobody


class FollowIn(Payload):
    code: str = Field(min_length=1, max_length=40)


def _person_or_nobody() -> Identity | None:
    """Anyone may open a ticket, logged in or not (e.g. "I could not log in"); a kiosk's own
    account never uses pages."""
    identity = current_identity()
    if identity is not None and identity.role not in PEOPLE:
        raise Forbidden(_("Your role may not do this."))
    return identity


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    me = _person_or_nobody()
    page = service.page_path(request.values.get("from", request.form.get("page", "")))
    if request.method == "GET":
        return render_template("helpdesk/new.html", me=me, page=page, error=None, form={})
    try:
        data = parsed_form(TicketIn, {"category": _("What went wrong"), "text": _("Describe it")})
        with hub_state().db.transaction() as s:
            ticket, code = service.open_ticket(
                s,
                me,
                data.category,
                data.text,
                data.page,
                request.headers.get("User-Agent", ""),
                clock.now(),
            )
            ticket_id = ticket.id
    except HubError as exc:
        return render_template(
            "helpdesk/new.html", me=me, page=page, error=exc.message, form=request.form
        ), exc.status
    if code is not None:
        return render_template("helpdesk/opened.html", code=service.format_follow_code(code))
    flash(_("Thank you. We have your message and will answer here."), "notice")
    return redirect(url_for("helpdesk.ticket", ticket_id=ticket_id))


@bp.route("/follow", methods=["GET", "POST"])
def follow() -> ResponseReturnValue:
    """A ticket opened without an account, found by its code (posted, so it stays out of logs
    and the browser's history)."""
    _person_or_nobody()
    if request.method == "GET":
        return render_template("helpdesk/follow.html", error=None, view=None)
    try:
        data = parsed_form(FollowIn, {"code": _("Code")})
        with hub_state().db.transaction() as s:
            view = service.followed_ticket(s, data.code)
    except HubError as exc:
        return render_template("helpdesk/follow.html", error=exc.message, view=None), exc.status
    return render_template("helpdesk/follow.html", error=None, view=view)


@bp.route("/mine")
@roles_required(*PEOPLE)
def mine() -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        return render_template("helpdesk/mine.html", me=me, tickets=service.my_tickets(s, me))


@bp.route("/desk")
@roles_required(*WORKERS)
def desk() -> ResponseReturnValue:
    me = caller()
    with hub_state().db.transaction() as s:
        return render_template("helpdesk/desk.html", me=me, tickets=service.desk_for(s, me))


@bp.route("/tickets/<int:ticket_id>")
@roles_required(*PEOPLE)
def ticket(ticket_id: int) -> ResponseReturnValue:
    return _ticket_page(ticket_id, error=None)


def _ticket_page(ticket_id: int, error: str | None) -> str:
    """One ticket; for a room report's ticket the audit log notes who read the report."""
    me = caller()
    with hub_state().db.transaction() as s:
        view = service.ticket_for(s, me, ticket_id)
        if view.ticket.report_id is not None:
            ref = f"report:{view.ticket.report_id}"
            audit.record(s, me, Action.REPORT_VIEWED, ref, clock.now())
        return render_template("helpdesk/ticket.html", me=me, view=view, error=error)


def _work(ticket_id: int, change: str) -> ResponseReturnValue:
    """Apply one change to the ticket from the posted form; the ticket page again, with the
    refusal if there was one."""
    me = caller()
    try:
        with hub_state().db.transaction() as s:
            if change == "reply":
                text = parsed_form(ReplyIn, {"text": _("Reply")}).text
                service.reply(s, me, ticket_id, text, clock.now())
            elif change == "status":
                status = parsed_form(StatusIn, {"status": _("Status")}).status
                service.set_status(s, me, ticket_id, status, clock.now())
            else:
                typed = parsed_form(AssignIn, {"assignee_id": _("Assigned to")}).assignee_id
                service.assign(s, me, ticket_id, int(typed) if typed else None)
    except HubError as exc:
        if exc.status in (403, 404):
            raise
        return _ticket_page(ticket_id, exc.message), exc.status
    flash(_("Saved."), "notice")
    return redirect(url_for("helpdesk.ticket", ticket_id=ticket_id))


@bp.route("/tickets/<int:ticket_id>/reply", methods=["POST"])
@roles_required(*PEOPLE)
def reply(ticket_id: int) -> ResponseReturnValue:
    return _work(ticket_id, "reply")


@bp.route("/tickets/<int:ticket_id>/status", methods=["POST"])
@roles_required(*WORKERS)
def status(ticket_id: int) -> ResponseReturnValue:
    return _work(ticket_id, "status")


@bp.route("/tickets/<int:ticket_id>/assign", methods=["POST"])
@roles_required(*WORKERS)
def assign(ticket_id: int) -> ResponseReturnValue:
    return _work(ticket_id, "assign")
