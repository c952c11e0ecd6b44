"""Connection handling, and `SocketEvents`: each feature's socket events, every one of which goes
through the same role check, payload parsing and answer shape."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from blinker import NamedSignal, Namespace
from flask import current_app, g, request, session
from flask_babel import gettext as _
from flask_socketio import ConnectionRefusedError as ConnectionRefused
from flask_socketio import SocketIO, join_room
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hub import clock, metrics
from hub.accounts.access import (
    Identity,
    credentials_revoked,
    current_identity,
    require,
    session_holder,
    token_holder,
)
from hub.accounts.models import Role
from hub.accounts.mydata import account_deleted
from hub.errors import DATABASE_DOWN, HubError, database_unavailable
from hub.extensions import socketio as hub_socketio
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
Handler = Callable[..., Any]
# How a kiosk connecting with its device token is known (hub.devices.service.identify; the factory
# passes it in, since devices builds on realtime and realtime does not import devices).
KioskIdentifier = Callable[[Session, str, datetime], Identity | None]


class SocketEvents:
    """One feature's socket events, like a blueprint: `handler` and `receives` only record them
    where they are defined; `register`, which the app factory calls, binds them to Socket.IO and
    connects the receivers. Binding again (a second app in one process) replaces, never adds."""

    def __init__(self) -> None:
        self.roles: dict[str, frozenset[Role]] = {}  # every client event and the roles it admits
        self._handlers: list[tuple[str, Handler]] = []
        self._receivers: list[tuple[NamedSignal, Handler]] = []
        _every_feature.append(self)

    def handler(
        self, event: str, roles: Iterable[Role], payload: type[M]
    ) -> Callable[[Callable[[Identity, M], dict[str, Any] | None]], Handler]:
        """A client event: check the role, parse the payload, answer in one shape."""
        allowed = frozenset(roles)

        def decorate(fn: Callable[[Identity, M], dict[str, Any] | None]) -> Handler:
            @functools.wraps(fn)
            def run(data: Any = None, *_extra: Any) -> dict[str, Any]:
                started = time.perf_counter()
                answer = answer_of(data)
                error = answer.get("error")
                metrics.socket_event_answered(
                    event, time.perf_counter() - started, error["code"] if error else None
                )
                return answer

            def answer_of(data: Any) -> dict[str, Any]:
                try:
                    identity = require(allowed)
                    result = fn(identity, parse(data, payload))
                except HubError as exc:
                    return {"ok": False, "error": exc.as_dict()}
                except DATABASE_DOWN as exc:
                    # Expected while the database restarts: one line, not a traceback per event.
                    log.warning(
                        "socket event %s: database unavailable (%s)",
                        event,
                        type(exc.__cause__ or exc).__name__,
                        extra={"event": event},
                    )
                    return {"ok": False, "error": database_unavailable().as_dict()}
                except Exception:
                    log.exception("socket event %s failed", event, extra={"event": event})
                    return {
                        "ok": False,
                        "error": {
                            "code": "internal",
                            "message": _("Something went wrong on our side. Please try again."),
                        },
                    }
                return {"ok": True, **(result or {})}

            self.roles[event] = allowed
            self._handlers.append((event, run))
            return run

        return decorate

    def receives(self, signal: NamedSignal) -> Callable[[Handler], Handler]:
        """A receiver of `signal` (e.g. `user_connected`), connected by `register`."""

        def decorate(fn: Handler) -> Handler:
            self._receivers.append((signal, fn))
            return fn

        return decorate

    def register(self, socketio: SocketIO) -> None:
        for event, run in self._handlers:
            socketio.on_event(event, run)
        for signal, fn in self._receivers:
            signal.connect(fn)


_every_feature: list[SocketEvents] = []


def registered_events() -> dict[str, frozenset[Role]]:
    """Every client event of the features imported so far and the roles it admits (the refusal
    tests walk this)."""
    return {event: roles for feature in _every_feature for event, roles in feature.roles.items()}


def register(socketio: SocketIO, identify_kiosk: KioskIdentifier) -> None:
    """Bind connecting and disconnecting: every connection is someone's, or refused."""

    def on_connect(auth: Any = None) -> bool:
        try:
            found = _identify(auth if isinstance(auth, dict) else {}, identify_kiosk)
            if found is None:
                return False  # the client sees a connect_error
            if isinstance(auth, dict) and auth.get("lang") in ("da", "en"):
                session["lang"] = auth["lang"]
            act_as(*found)
        except DATABASE_DOWN as exc:
            # Refused with a reason, so the client tries again later (socket.js, the kiosk)
            # instead of waiting on a connection that never opens or taking it as "unpaired".
            log.warning("connect: database unavailable (%s)", type(exc.__cause__ or exc).__name__)
            error = database_unavailable()
            raise ConnectionRefused(error.message, {"code": error.code}) from exc
        return True

    socketio.on_event("connect", on_connect)
    socketio.on_event("disconnect", _on_disconnect)
    account_deleted.connect(_close_connections)
    credentials_revoked.connect(_close_opened_with)


def act_as(identity: Identity, credential_id: int | None = None) -> None:
    """Register this connection as `identity`'s, opened with `credential_id` (a login or API
    token; None for a kiosk's device token): when it connects, and when a kiosk's connection
    starts or ends a student's visit (hub.devices)."""
    session["identity"] = identity.as_session()
    g.identity = identity
    join_room(user_room(identity.user_id))
    presence.connected(
        hub_state().db,
        _sid(),
        identity.user_id,
        hub_state().instance_id,
        clock.now(),
        credential_id,
    )
    user_connected.send(identity)


def _on_disconnect(*_args: Any) -> None:
    identity, sid = current_identity(), _sid()
    try:
        _forget(identity, sid)
    except DATABASE_DOWN:
        # Left in `connections`, the user would count as connected until this process ends
        # (a helper kept on duty, a student who never leaves the queue): forget them later.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        hub_socketio.start_background_task(_forget_when_back, app, identity, sid)


def _forget(identity: Identity | None, sid: str) -> None:
    last = presence.disconnected(hub_state().db, sid)
    if identity is not None and last:
        user_gone.send(identity)


def _forget_when_back(app: Any, identity: Identity | None, sid: str) -> None:
    """Retry a disconnect the database missed, until it answers again."""
    delay = 1.0
    while True:
        hub_socketio.sleep(delay)
        try:
            with app.app_context():
                _forget(identity, sid)
            return
        except DATABASE_DOWN:
            delay = min(delay * 2, 10.0)


def _sid() -> str:
    """The Socket.IO session id Flask-SocketIO puts on the request of a socket event."""
    return str(request.sid)  # type: ignore[attr-defined]


def _close_connections(user_id: int) -> None:
    """A student deleted their account: close their connections, on any hub process."""
    presence.disconnect_user(hub_state().db, user_id)


def _close_opened_with(credential_ids: list[int]) -> None:
    """A login or token was revoked: close the sockets it opened, on any hub process."""
    presence.disconnect_credentials(hub_state().db, credential_ids)


def _identify(
    auth: dict[str, Any], identify_kiosk: KioskIdentifier
) -> tuple[Identity, int | None] | None:
    """Who is connecting, and with which credential (None for a kiosk's device token)."""
    token = auth.get("token")
    device_token = auth.get("device_token")
    if isinstance(token, str):
        held = token_holder(token)
    elif isinstance(device_token, str):
        with hub_state().db.transaction() as s:
            kiosk = identify_kiosk(s, device_token, clock.now())
        return (kiosk, None) if kiosk is not None else None
    else:
        held = session_holder()  # a browser's login cookie, if its key is still live
    return (held.identity, held.credential_id) if held is not None else None
