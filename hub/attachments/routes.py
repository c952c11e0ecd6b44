"""`POST /api/attachments` and reading them back."""

from __future__ import annotations

from flask import Blueprint, request, send_file
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from hub import clock
from hub.accounts.access import caller, roles_required
from hub.accounts.models import Role
from hub.attachments import service
from hub.errors import Invalid
from hub.state import hub_state

bp = Blueprint("attachments", __name__)


@bp.route("/api/attachments", methods=["POST"])
@roles_required(Role.STUDENT)
def upload() -> ResponseReturnValue:
    """Form fields: `file` (the photo or PDF) and, optionally, `scan`: "1" (the default) stores a
    photo of a page as its scan (flattened, evened out), "0" stores the photo as it is (the
    kiosk's "Use the original"). Anything else is refused."""
    state = hub_state()
    identity = caller()
    upload = request.files.get("file")
    if upload is None:
        raise Invalid(_("Choose a file to attach."), fields={"file": "missing"})
    scan = request.form.get("scan", "1")
    if scan not in ("0", "1"):
        raise Invalid(
            _("scan must be 0 (keep the photo as it is) or 1 (scan the page)."),
            fields={"scan": "invalid"},
        )
    data, mime = service.clean_upload(
        upload.read(state.config.attachment_max_bytes + 1),
        state.config.attachment_max_bytes,
        scan=scan == "1",
    )
    with state.db.transaction() as s:
        attachment = service.store(
            s, identity, data, mime, hub_state().config.attachments_dir, clock.now()
        )
    return {
        "ok": True,
        "attachment_id": attachment.id,
        "mime": attachment.mime,
        "size": attachment.size,
    }, 201


@bp.route("/api/attachments/<attachment_id>")
@roles_required(Role.STUDENT, Role.HELPER, Role.ADMIN)
def download(attachment_id: str) -> ResponseReturnValue:
    identity = caller()
    with hub_state().db.transaction() as s:
        attachment = service.readable(s, identity, attachment_id)
    response = send_file(
        hub_state().config.attachments_dir / attachment.id, mimetype=attachment.mime, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = "inline"
    return response
