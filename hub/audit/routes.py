"""`/admin/audit`: the audit log for admins, newest first, a page at a time, filtered by action."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import Field, field_validator

from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role
from hub.audit import service
from hub.audit.service import Action
from hub.state import hub_state
from hub.validation import Payload, parse

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


class LogQuery(Payload):
    action: Action | None = None
    page: int = Field(default=1, ge=1, le=1_000_000)

    @field_validator("action", mode="before")
    @classmethod
    def _blank_is_all(cls, value: object) -> object:
        return None if value == "" else value


def action_labels() -> dict[str, str]:
    return {
        Action.REPORT_VIEWED: _("Read a report"),
        Action.TRANSCRIPT_VIEWED: _("Read a chat transcript"),
        Action.STATS_EXPORTED: _("Exported statistics (CSV)"),
        Action.DATA_DOWNLOADED: _("A student downloaded their data"),
        Action.ACCOUNT_DELETED: _("A student deleted their account"),
    }


def role_labels() -> dict[str, str]:
    return {
        Role.ADMIN: _("Admin"),
        Role.COORDINATOR: _("Coordinator"),
        Role.SITE_STAFF: _("Site staff"),
        Role.HELPER: _("Helper"),
        Role.STUDENT: _("Student"),
    }


@bp.route("")
@roles_required(Role.ADMIN)
def log() -> ResponseReturnValue:
    query = parse(request.args.to_dict(), LogQuery)
    with hub_state().db.transaction() as s:
        page = service.entries(s, query.action, query.page)
    return render_template(
        "audit/log.html",
        me=caller(),
        page=page,
        action=query.action.value if query.action else "",
        actions=action_labels(),
        roles=role_labels(),
        retention_days=hub_state().config.audit_retention_days,
    )
