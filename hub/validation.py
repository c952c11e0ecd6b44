"""The one way payloads are checked: a pydantic model per event or route, parsed with `parse`."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from flask_babel import gettext as _
from pydantic import BaseModel, ConfigDict, ValidationError

from hub.errors import Invalid

M = TypeVar("M", bound=BaseModel)


class Payload(BaseModel):
    """Base for incoming payloads: unknown fields are ignored, strings are stripped."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


def parse(payload: Any, model: type[M]) -> M:
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise Invalid(_("The request must be a JSON object."))
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = {
            ".".join(str(p) for p in err["loc"]) or "payload": err["type"] for err in exc.errors()
        }
        raise Invalid(_("Some fields are missing or not valid."), fields=fields) from exc


def parsed_json(model: type[M]) -> M:
    """The HTTP request's JSON body as `model`. No body asks with the model's defaults; a body
    that is not JSON is refused like any other malformed payload."""
    payload = request.get_json(silent=True)
    if payload is None and request.get_data(cache=True):
        raise Invalid(_("The request must be a JSON object."))
    return parse(payload, model)
