"""What the staff pages share about forms: reading a submitted form, showing it again when it was
refused, and the alphabet of the codes people read aloud and type (site invite codes, kiosk
pairing codes). Used by the admin pages (hub.admin) and the kiosks page (hub.devices)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from flask import request
from flask_babel import gettext as _
from pydantic import BaseModel

from hub.errors import HubError, Invalid
from hub.validation import parse

M = TypeVar("M", bound=BaseModel)

# No 0/O, 1/I/L: the code is read out loud and typed in by students and site staff.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# Never shown again in a refused form.
_NOT_ECHOED = ("password", "csrf_token")


def parsed_form(model: type[M], labels: dict[str, str]) -> M:
    """The submitted form as `model`, or Invalid naming the fields to fix in plain words
    (`labels`: the field names as the page shows them)."""
    try:
        return parse(request.form.to_dict(), model)
    except Invalid as exc:
        fields: dict[str, str] = exc.details.get("fields", {})
        names = ", ".join(labels.get(f, f) for f in fields)
        message = _("Please fill in or correct: %(fields)s.", fields=names)
        raise Invalid(message, fields=fields) from exc


@dataclass(frozen=True)
class Failure:
    """A form that was refused: which one, why, and what the user had typed (never passwords)."""

    form: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def failure_of(form: str, exc: HubError) -> Failure:
    """The submitted `form` refused with `exc`, to show again with what was typed."""
    values = {k: v for k, v in request.form.items() if k not in _NOT_ECHOED}
    return Failure(form, exc.message, exc.details.get("fields", {}), values)
