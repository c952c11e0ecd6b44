"""Who is calling, and may they? One check for HTTP routes and socket events alike.

Browsers are identified by the Flask session cookie set at login; tools and tests by a signed
bearer token from `POST /api/auth/token` (HTTP header or the Socket.IO `auth` payload)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from flask import g, request, session
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.accounts.models import Role, User
from hub.errors import Forbidden, Unauthenticated
from hub.state import hub_state

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Identity:
    user_id: int
    role: Role
    display_name: str
    site_id: int | None
    organisation_id: int | None
    # The paired kiosk a connection comes through, also while it acts for a visiting student.
    device_id: int | None = None

    @property
    def roles(self) -> frozenset[Role]:
        """What the caller may act as: its role, and on a kiosk's connection also the kiosk."""
        return frozenset({self.role} | ({Role.KIOSK} if self.device_id is not None else set()))

    @classmethod
    def of(cls, user: User) -> Identity:
        return cls(user.id, Role(user.role), user.display_name, user.site_id, user.organisation_id)

    def as_session(self) -> dict[str, Any]:
        return {
            "uid": self.user_id,
            "role": self.role.value,
            "name": self.display_name,
            "site": self.site_id,
            "org": self.organisation_id,
            "dev": self.device_id,
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Identity:
        uid, role, dev = data["uid"], Role(data["role"]), data.get("dev")
        return cls(uid, role, data["name"], data["site"], data["org"], dev)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(hub_state().config.secret_key, salt="api-token")


def make_token(user_id: int) -> str:
    return _serializer().dumps({"uid": user_id})


def user_id_from_token(token: str) -> int | None:
    try:
        data = _serializer().loads(token, max_age=hub_state().config.token_max_age_s)
    except BadSignature:
        return None
    return int(data["uid"]) if isinstance(data, dict) and "uid" in data else None


def load_identity(user_id: int) -> Identity | None:
    with hub_state().db.transaction() as s:
        user = s.get(User, user_id)
        return Identity.of(user) if user is not None and user.active else None


def login_session(identity: Identity) -> None:
    session.clear()
    session["identity"] = identity.as_session()
    session.permanent = True


def current_identity() -> Identity | None:
    """The caller of this HTTP request or socket event, or None."""
    if "identity" in g:
        cached: Identity | None = g.identity
        return cached
    identity: Identity | None = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        uid = user_id_from_token(header[7:])
        identity = load_identity(uid) if uid is not None else None
    elif "identity" in session:
        # Re-read on HTTP so a deactivated account stops working at once; sockets are checked
        # when they connect.
        cached = Identity.from_session(session["identity"])
        identity = cached if getattr(request, "sid", None) else load_identity(cached.user_id)
    g.identity = identity
    return identity


def require(roles: Iterable[Role]) -> Identity:
    identity = current_identity()
    if identity is None:
        raise Unauthenticated(_("Please log in first."))
    if identity.roles.isdisjoint(roles):
        raise Forbidden(_("Your role may not do this."))
    return identity


def roles_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator for routes: refuse callers whose role is not among `roles`."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            require(roles)
            return view(*args, **kwargs)

        wrapper.allowed_roles = frozenset(roles)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def caller() -> Identity:
    """The identity of a caller already admitted by `roles_required` or `handler`."""
    identity = current_identity()
    if identity is None:
        raise Unauthenticated(_("Please log in first."))
    return identity
