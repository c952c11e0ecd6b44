"""`GET /api/openapi.json`: the description of the hub's HTTP API (hub.api.openapi)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from hub.api.openapi import document

bp = Blueprint("api", __name__)


@bp.route("/api/openapi.json")
def openapi() -> ResponseReturnValue:
    return document()
