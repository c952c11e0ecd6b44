"""The hub's one error type. Every refusal a client sees is a HubError with a code and a message
in the caller's language; socket acks and JSON routes turn it into {"ok": false, "error": {...}}."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc

# What the database raises while it is down or restarting (refused, ended by its shutdown, no
# pooled connection in time), and on SQLite a lock held too long: all pass if tried again later.
DATABASE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


class HubError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return error


class Invalid(HubError):
    code = "invalid"
    status = 400


class Unauthenticated(HubError):
    code = "unauthenticated"
    status = 401


class Forbidden(HubError):
    code = "forbidden"
    status = 403


class NotFound(HubError):
    code = "not_found"
    status = 404


class Conflict(HubError):
    code = "conflict"
    status = 409


class TooLarge(HubError):
    code = "too_large"
    status = 413


class RateLimited(HubError):
    code = "rate_limited"
    status = 429


class Unavailable(HubError):
    """Something the hub depends on (its database) is down for now; the same call works again
    once it is back."""

    code = "unavailable"
    status = 503


class StorageFull(HubError):
    """The hub's disk has no room for a file; nothing of it was kept."""

    code = "storage_full"
    status = 507


def database_unavailable() -> Unavailable:
    """What a caller is told while the database is down, in their language."""
    from flask_babel import gettext as _

    return Unavailable(_("Lektiecafé is not available right now. Please try again in a moment."))
