"""`GET /api/catalog`: what can be asked about, in the caller's language."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from flask_babel import get_locale

from hub.catalog.service import catalog
from hub.state import hub_state

bp = Blueprint("catalog", __name__)


@bp.route("/api/catalog")
def api_catalog() -> ResponseReturnValue:
    with hub_state().db.transaction() as s:
        return {"ok": True, **catalog(s, str(get_locale()))}
