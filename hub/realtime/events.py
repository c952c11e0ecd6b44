"""Connection handling and the `handler` decorator every socket event goes through."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from blinker import Namespace
from flask import g, request, session
from flask_babel import gettext as _
from flask_socketio import join_room
from pydantic import BaseModel

from hub import clock
from hub.accounts.access import (
    Identity,
    current_identity,
    load_identity,
    require,
    user_id_from_token,
)
from hub.accounts.models import Role
from hub.devices import service as devices
from hub.errors import HubError
from hub.extensions import socketio
from hub.realtime import presence
from hub.realtime.notices import user_room
from hub.state import hub_state
from hub.validation import parse

log = logging.getLogger(__name__)
signals = Namespace()
# Sent with the Identity after a user's connection is registered, and when a user's last
# connection (across all hub processes) has closed.
user_connected = signals.signal("user-connected")
user_gone = signals.signal("user-gone")

M = TypeVar("M", bound=BaseModel)
_registered: dict[str, frozenset[Role]] = {}


def registered_events() -> dict[str, frozenset[Role]]:
    """Every client event and the roles it admits (the refusal tests walk this)."""
    return dict(_registered)


def handler(
    event: str, roles: Iterable[Role], payload: type[M]
) -> Callable[[Callable[[Identity, M], dict[str, Any] | None]], Callable[..., dict[str, Any]]]:
    """Register a socket event: check the role, parse the payload, answer in one shape."""
    allowed = frozenset(roles)

    def decorate(
        fn: Callable[[Identity, M], dict[str, Any] | None],
    ) -> Callable[..., dict[str, Any]]:
        @functools.wraps(fn)
        def run(data: Any = None, *_extra: Any) -> dict[str, Any]:
            try:
                identity = require(allowed)
                result = fn(identity, parse(data, payload))
            except HubError as exc:
                return {"ok": False, "error": exc.as_dict()}
            except Exception:
                log.exception("socket event %s failed", event)
                return {
                    "ok": False,
                    "error": {
                        "code": "internal",
                        "message": _("Something went wrong on our side. Please try again."),
                    },
                }
            return {"ok": True, **(result or {})}

        _registered[event] = allowed
        socketio.on_event(event, run)
        return run

    return decorate


@socketio.on("connect")
def on_connect(auth: Any = None) -> bool:
    identity = _identify(auth if isinstance(auth, dict) else {})
    if identity is None:
        return False  # the client sees a connect_error
    if isinstance(auth, dict) and auth.get("lang") in ("da", "en"):
        session["lang"] = auth["lang"]
    act_as(identity)
    return True


def act_as(identity: Identity) -> None:
    """Register this connection as `identity`'s: when it connects, and when a kiosk's connection
    starts or ends a student's visit (hub.devices)."""
    session["identity"] = identity.as_session()
    g.identity = identity
    join_room(user_room(identity.user_id))
    presence.connected(
        hub_state().db, _sid(), identity.user_id, hub_state().instance_id, clock.now()
    )
    user_connected.send(identity)


@socketio.on("disconnect")
def on_disconnect(*_args: Any) -> None:
    identity = current_identity()
    last = presence.disconnected(hub_state().db, _sid())
    if identity is not None and last:
        user_gone.send(identity)


def _sid() -> str:
    """The Socket.IO session id Flask-SocketIO puts on the request of a socket event."""
    return str(request.sid)  # type: ignore[attr-defined]


def _identify(auth: dict[str, Any]) -> Identity | None:
    token = auth.get("token")
    if isinstance(token, str):
        uid = user_id_from_token(token)
        return load_identity(uid) if uid is not None else None
    device_token = auth.get("device_token")
    if isinstance(device_token, str):
        with hub_state().db.transaction() as s:
            return devices.identify(s, device_token, clock.now())
    if "identity" in session:
        return load_identity(Identity.from_session(session["identity"]).user_id)
    return None
