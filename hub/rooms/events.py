"""Socket events of a room (see docs/protocol.md, "In a room"): thin edges over rooms.service.

Connections that `room:join` enter the Socket.IO room `room:<id>`; signalling and document updates
go to the other connections there, chat to all of them, and everything about the room as a whole
(ended, peer left or back) to both members' user rooms, so no tab misses it."""

from __future__ import annotations

from typing import Any, Literal

from flask import request
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_socketio import join_room
from pydantic import BaseModel, Field, ValidationError

from hub import clock
from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.errors import Invalid
from hub.extensions import socketio
from hub.moderation import Blocked
from hub.realtime.events import SocketEvents, user_gone
from hub.realtime.notices import deliver
from hub.rooms import docsync, service
from hub.rooms.ice import ice_servers, ice_transport_policy
from hub.state import hub_state
from hub.validation import Payload

events = SocketEvents()  # bound by the app factory (hub.create_app)

MEMBERS = (Role.STUDENT, Role.HELPER)


class RoomRef(Payload):
    room_id: str = Field(min_length=1, max_length=32)


class SessionDescription(BaseModel):
    type: Literal["offer", "answer"]
    sdp: str = Field(min_length=1, max_length=100_000)


class IceCandidate(BaseModel):
    """An RTCIceCandidateInit, with the browser's field names."""

    candidate: str = Field(max_length=2_000)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)
    usernameFragment: str | None = Field(default=None, max_length=256)


class SignalIn(RoomRef):
    kind: Literal["offer", "answer", "candidate", "restart"]
    data: dict[str, Any] | None = None


class ChatIn(RoomRef):
    text: str = Field(min_length=1, max_length=1000)
    client_msg_id: str = Field(min_length=1, max_length=64)


class QualityIn(RoomRef):
    """What the sender's video does now: `full`, `low` (lower resolution and frame rate) or `off`
    (audio only), and why: the measured `network` or the student's `choice`."""

    video: Literal["full", "low", "off"]
    reason: Literal["network", "choice"]


class EndIn(RoomRef):
    reason: str = Field(default="", max_length=200)


class ReportIn(RoomRef):
    text: str = Field(min_length=1, max_length=2000)


class FeedbackIn(RoomRef):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


def _sid() -> str:
    return str(request.sid)  # type: ignore[attr-defined]


def _checked_signal(data: SignalIn) -> dict[str, Any] | None:
    """The signal's data in the shape its kind needs; anything else is refused."""
    try:
        if data.kind in ("offer", "answer"):
            description = SessionDescription.model_validate(data.data)
            if description.type != data.kind:
                raise ValueError("type does not match kind")
            return description.model_dump()
        if data.kind == "candidate":
            # null (or an empty candidate) ends the candidates
            if data.data is None:
                return None
            return IceCandidate.model_validate(data.data).model_dump(exclude_none=True)
        return {}
    except (ValidationError, ValueError) as exc:
        raise Invalid(
            _("The connection data could not be read."), fields={"data": data.kind}
        ) from exc


@events.handler("room:join", roles=MEMBERS, payload=RoomRef)
def room_join(member: Identity, data: RoomRef) -> dict[str, Any]:
    state = hub_state()
    with state.db.transaction() as s:
        room, answer, notices = service.join(s, member, data.room_id, str(get_locale()))
    join_room(service.room_channel(room.id))
    deliver(notices)
    return {
        **answer,
        "ice_servers": ice_servers(state.config),
        "ice_transport_policy": ice_transport_policy(state.config),
        "doc_url": docsync.doc_path(
            room.id, docsync.make_ticket(state.config, member.user_id, room.id)
        ),
    }


@events.handler("rtc:signal", roles=MEMBERS, payload=SignalIn)
def rtc_signal(member: Identity, data: SignalIn) -> None:
    signal = _checked_signal(data)
    with hub_state().db.transaction() as s:
        room = service.open_member_room(s, member, data.room_id)
        sender = service.role_in(room, member.user_id)
    socketio.emit(
        "rtc:signal",
        {"room_id": room.id, "kind": data.kind, "data": signal, "from": sender},
        to=service.room_channel(room.id),
        skip_sid=_sid(),
    )


@events.handler("rtc:quality", roles=MEMBERS, payload=QualityIn)
def rtc_quality(member: Identity, data: QualityIn) -> None:
    """Tells the other member's tabs how the sender's video adapted, so both sides can say so."""
    with hub_state().db.transaction() as s:
        room = service.open_member_room(s, member, data.room_id)
        sender = service.role_in(room, member.user_id)
    socketio.emit(
        "rtc:quality",
        {"room_id": room.id, "video": data.video, "reason": data.reason, "from": sender},
        to=service.room_channel(room.id),
        skip_sid=_sid(),
    )


@events.handler("chat:send", roles=MEMBERS, payload=ChatIn)
def chat_send(member: Identity, data: ChatIn) -> dict[str, Any]:
    state = hub_state()
    try:
        with state.db.transaction() as s:
            room = service.open_member_room(s, member, data.room_id)
            message, new = service.post_chat(
                s, member, room, data.text, data.client_msg_id, clock.now(), state.config
            )
    except Blocked as exc:
        socketio.emit(
            "chat:blocked",
            {
                "room_id": data.room_id,
                "client_msg_id": data.client_msg_id,
                "reason": exc.details["reason"],
                "message": exc.message,
            },
            to=_sid(),
        )
        raise
    if new:
        socketio.emit("chat:message", message, to=service.room_channel(room.id))
    return {"msg_id": message["msg_id"], "ts": message["ts"]}


@events.handler("room:end", roles=MEMBERS, payload=EndIn)
def room_end(member: Identity, data: EndIn) -> None:
    state = hub_state()
    with state.db.matching_transaction() as s:
        room = service.open_member_room(s, member, data.room_id)
        notices = service.end_room(
            s, room, by=service.role_in(room, member.user_id), reason="ended", now=clock.now()
        )
    deliver(notices)
    state.kick_matching()


@events.handler("room:report", roles=MEMBERS, payload=ReportIn)
def room_report(member: Identity, data: ReportIn) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        room = service.member_room(s, member, data.room_id)
        report_id, notices = service.report(s, member, room, data.text, clock.now())
    deliver(notices)
    return {"report_id": report_id}


@events.handler("feedback:submit", roles=MEMBERS, payload=FeedbackIn)
def feedback_submit(member: Identity, data: FeedbackIn) -> None:
    with hub_state().db.transaction() as s:
        room = service.member_room(s, member, data.room_id)
        service.give_feedback(s, member, room, data.rating, data.comment, clock.now())


@events.receives(user_gone)
def _on_gone(identity: Identity) -> None:
    if identity.role not in MEMBERS:
        return
    with hub_state().db.transaction() as s:
        notices = service.member_gone(s, identity.user_id, clock.now())
    deliver(notices)
