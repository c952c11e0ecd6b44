"""Socket events of the break room. Every student and moderator connection joins the
`breakroom` Socket.IO room; only students with a waiting request may post."""

from __future__ import annotations

from typing import Any

from flask_socketio import join_room
from pydantic import Field

from hub import clock
from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.breakroom import service
from hub.extensions import socketio
from hub.realtime.events import SocketEvents, user_connected
from hub.state import hub_state
from hub.validation import Payload

events = SocketEvents()  # bound by the app factory (hub.create_app)

ROOM = "breakroom"
MODERATORS = (Role.HELPER, Role.ADMIN, Role.COORDINATOR)


class SendIn(Payload):
    text: str = Field(min_length=1, max_length=300)
    client_msg_id: str = Field(min_length=1, max_length=64)


class MessageRef(Payload):
    msg_id: int


class Empty(Payload):
    pass


@events.handler("breakroom:send", roles=[Role.STUDENT], payload=SendIn)
def breakroom_send(student: Identity, data: SendIn) -> dict[str, Any]:
    state = hub_state()
    with state.db.transaction() as s:
        message, new = service.post(
            s, student, data.text, data.client_msg_id, clock.now(), state.config
        )
    if new:
        socketio.emit("breakroom:message", message, to=ROOM)
    return {"msg_id": message["msg_id"], "ts": message["ts"]}


@events.handler("breakroom:history", roles=[Role.STUDENT, *MODERATORS], payload=Empty)
def breakroom_history(_caller: Identity, _data: Empty) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        return {"messages": service.history(s, clock.now())}


@events.handler("breakroom:remove", roles=MODERATORS, payload=MessageRef)
def breakroom_remove(moderator: Identity, data: MessageRef) -> None:
    with hub_state().db.transaction() as s:
        service.remove(s, moderator, data.msg_id, clock.now())
    socketio.emit("breakroom:removed", {"msg_id": data.msg_id}, to=ROOM)


@events.receives(user_connected)
def _join_breakroom(identity: Identity) -> None:
    if identity.role in (Role.STUDENT, *MODERATORS):
        join_room(ROOM)
