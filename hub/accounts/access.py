"""Who is calling, and may they? One check for HTTP routes and socket events alike.

Browsers are identified by the Flask session cookie set at login, which carries the login's key;
tools and tests by a bearer token from `POST /api/auth/token` (HTTP header or the Socket.IO `auth`
payload); a kiosk's visit by its visit token, for the visit's photo only. Keys and tokens are
random secrets of which the database keeps only a hash (`Credential`); deleting the row (logout,
`DELETE /api/auth/token`, a deactivated account, a visit's end) revokes them at once."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, ParamSpec, TypeVar

from blinker import Namespace
from flask import g, request, session
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub import clock
from hub.accounts.models import Credential, Role, User
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


# Which credentials a kind of caller holds, and what a kiosk visit's token may be used for: the
# visit's photo, nothing else (the kiosk does the rest over its own socket).
SESSION, API, VISIT = "session", "api", "visit"
VISIT_ENDPOINTS = frozenset({"attachments.upload", "attachments.download", "accounts.api_me"})

# Sent with the ids of credentials just revoked one by one (a logout, `DELETE /api/auth/token`),
# so the sockets opened with them close too (hub.realtime), not only the next request.
credentials_revoked = Namespace().signal("credentials-revoked")


class Holder(NamedTuple):
    """Who a live secret stands for, its kind, and which credential it is."""

    identity: Identity
    kind: str
    credential_id: int


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _could_be_ours(secret: str) -> bool:
    """Whether `secret` is worth a lookup: the hub's are 43 characters."""
    return bool(secret) and len(secret) <= 200


def issue(s: Session, user_id: int, kind: str, now: datetime, sweep: bool = True) -> str:
    """A new secret for `user_id`, valid for `token_max_age_s`; only its hash is stored. With
    `sweep`, the expired ones of everybody go first (the index on expires_at makes it cheap)."""
    if sweep:
        s.execute(delete(Credential).where(Credential.expires_at < now))
    secret = secrets.token_urlsafe(32)
    lifetime = timedelta(seconds=hub_state().config.token_max_age_s)
    s.add(
        Credential(
            user_id=user_id,
            kind=kind,
            token_hash=_digest(secret),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return secret


def make_token(user_id: int, kind: str = API) -> str:
    """An API token (or a kiosk visit's token) for `user_id`."""
    with hub_state().db.transaction() as s:
        return issue(s, user_id, kind, clock.now())


def make_tokens(user_ids: Iterable[int], kind: str = API) -> list[str]:
    """API tokens for many users in one transaction (benchmarks mint thousands)."""
    with hub_state().db.transaction() as s:
        now = clock.now()
        return [issue(s, user_id, kind, now, sweep=i == 0) for i, user_id in enumerate(user_ids)]


def revoke(secret: str) -> bool:
    """Revoke a session key or token at once, closing the sockets it opened; whether there was
    one."""
    if not _could_be_ours(secret):
        return False
    with hub_state().db.transaction() as s:
        gone = list(
            s.scalars(
                delete(Credential)
                .where(Credential.token_hash == _digest(secret))
                .returning(Credential.id)
            )
        )
    if gone:
        credentials_revoked.send(gone)
    return bool(gone)


def revoke_all(s: Session, user_id: int) -> None:
    """Every login and token of a user (a deactivated account, a visit that ended)."""
    s.execute(delete(Credential).where(Credential.user_id == user_id))


def _holder(secret: str, kinds: Iterable[str]) -> Holder | None:
    """The active user a live secret of one of `kinds` stands for, and which credential it is."""
    if not _could_be_ours(secret):
        return None
    with hub_state().db.transaction() as s:
        found = s.execute(
            select(User, Credential.kind, Credential.id)
            .join(Credential, Credential.user_id == User.id)
            .where(
                Credential.token_hash == _digest(secret),
                Credential.kind.in_(list(kinds)),
                Credential.expires_at > clock.now(),
            )
        ).first()
        if found is None or not found[0].active:
            return None
        return Holder(Identity.of(found[0]), found[1], found[2])


def token_holder(token: str) -> Holder | None:
    """Who a live API token stands for (not a visit's token: those never open a socket)."""
    return _holder(token, [API])


def load_identity(user_id: int) -> Identity | None:
    with hub_state().db.transaction() as s:
        user = s.get(User, user_id)
        return Identity.of(user) if user is not None and user.active else None


def login_session(identity: Identity) -> None:
    """Log the browser in: a new session (nothing of the one before the login carries over but
    what the caller puts back) with a new key, which logout or deactivation revokes."""
    with hub_state().db.transaction() as s:
        key = issue(s, identity.user_id, SESSION, clock.now())
    session.clear()
    session["identity"] = identity.as_session()
    session["key"] = key
    session.permanent = True


def logout_session() -> None:
    """Revoke this browser's login, so a copy of its cookie no longer works either."""
    key = session.get("key")
    if isinstance(key, str):
        revoke(key)
    session.clear()


def session_holder() -> Holder | None:
    """The browser's login from its session cookie, if its key is still live."""
    key = session.get("key")
    if "identity" not in session or not isinstance(key, str):
        return None
    held = _holder(key, [SESSION])
    if held is None or held.identity.user_id != session["identity"]["uid"]:
        return None
    return held


def current_identity() -> Identity | None:
    """The caller of this HTTP request or socket event, or None."""
    if "identity" in g:
        cached: Identity | None = g.identity
        return cached
    identity: Identity | None = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        held = _holder(header[7:].strip(), [API, VISIT])
        if held is not None and held.kind == VISIT and request.endpoint not in VISIT_ENDPOINTS:
            raise Forbidden(_("A kiosk visit's token is only for the visit's photo."))
        identity = held.identity if held is not None else None
    elif getattr(request, "sid", None):
        # A socket: checked when it connected (hub.realtime.events), then kept for its lifetime.
        if "identity" in session:
            identity = Identity.from_session(session["identity"])
    elif "identity" in session:
        # Re-read on HTTP so a logout, a revoked login or a deactivated account stops it at once.
        login = session_holder()
        identity = login.identity if login is not None else None
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
