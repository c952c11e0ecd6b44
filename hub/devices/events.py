"""Socket events of kiosks (docs/protocol.md, "Devices"): health reports (answered with the kiosk's
settings), answers to commands, ICE servers for `provision check`, and visits. During a visit the
kiosk's connection acts as the visiting student, so matching, the break room and rooms serve it
exactly as a student at home; it stays in its kiosk's Socket.IO room for commands and settings and
may still send the kiosk's own events."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_socketio import join_room, leave_room, rooms
from pydantic import Field

from hub import clock
from hub.accounts.access import VISIT, Identity, make_token
from hub.accounts.models import Role
from hub.devices import service
from hub.realtime.events import SocketEvents, act_as, user_connected
from hub.realtime.notices import deliver
from hub.realtime.presence import disconnect_user
from hub.rooms.ice import ice_servers, ice_transport_policy
from hub.state import hub_state
from hub.validation import Payload

events = SocketEvents()  # bound by the app factory (hub.create_app)


class HeartbeatIn(Payload):
    version: str = Field(max_length=40)
    uptime_s: int = Field(ge=0)
    camera_ok: bool
    cpu_temp_c: float | None = Field(default=None, ge=-60, le=150)
    disk_free_mb: int = Field(ge=0)
    load: float = Field(ge=0)
    started: bool = False  # the kiosk program's first heartbeat
    offline_s: float | None = Field(default=None, ge=0, le=366 * 86400)  # the hub was out of reach


class CommandDoneIn(Payload):
    command_id: int
    ok: bool
    detail: str = Field(default="", max_length=500)


class VisitIn(Payload):
    nickname: str = Field(min_length=1, max_length=30)
    grade: int


class VisitRef(Payload):
    visit_id: int


class Empty(Payload):
    pass


@events.handler("device:heartbeat", roles=[Role.KIOSK], payload=HeartbeatIn)
def device_heartbeat(kiosk: Identity, data: HeartbeatIn) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        settings = service.record_heartbeat(s, kiosk, **data.model_dump(), now=clock.now())
    return {"settings": settings.payload()}


@events.handler("device:command_done", roles=[Role.KIOSK], payload=CommandDoneIn)
def device_command_done(kiosk: Identity, data: CommandDoneIn) -> None:
    with hub_state().db.transaction() as s:
        service.command_done(s, kiosk, data.command_id, data.ok, data.detail, clock.now())


@events.handler("device:ice", roles=[Role.KIOSK], payload=Empty)
def device_ice(_kiosk: Identity, _data: Empty) -> dict[str, Any]:
    """Fresh ICE servers outside a room: what `provision check` probes TURN with."""
    config = hub_state().config
    return {
        "ice_servers": ice_servers(config),
        "ice_transport_policy": ice_transport_policy(config),
    }


@events.handler("visit:start", roles=[Role.KIOSK], payload=VisitIn)
def visit_start(kiosk: Identity, data: VisitIn) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        visit, student = service.start_visit(s, kiosk, data.nickname, data.grade, clock.now())
    _act_on_this_connection(student)
    return {"visit_id": visit.id, "visit_token": make_token(student.user_id, VISIT)}


@events.handler("visit:resume", roles=[Role.KIOSK], payload=VisitRef)
def visit_resume(kiosk: Identity, data: VisitRef) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        visit, student = service.resume_visit(s, kiosk, data.visit_id)
    if student.user_id != kiosk.user_id:
        _act_on_this_connection(student)
    return {"visit_id": visit.id, "visit_token": make_token(student.user_id, VISIT)}


@events.handler("visit:end", roles=[Role.KIOSK], payload=Empty)
def visit_end(kiosk: Identity, _data: Empty) -> dict[str, Any]:
    state = hub_state()
    with state.db.matching_transaction() as s:
        itself, visit_user, notices = service.finish_visit(s, kiosk, clock.now(), state.config)
    if itself.user_id != kiosk.user_id:
        _act_on_this_connection(itself)
    deliver(notices)
    if visit_user is not None:
        disconnect_user(state.db, visit_user)  # any other connection still acting for the visit
    state.kick_matching()
    return {"ended": visit_user is not None}


def _act_on_this_connection(identity: Identity) -> None:
    """Leave what this connection joined for whoever it acted as (their user room, the break
    room, a room's channel), then act as `identity`."""
    assert identity.device_id is not None
    keep = {str(request.sid), service.device_room(identity.device_id)}  # type: ignore[attr-defined]
    for name in rooms():
        if name not in keep:
            leave_room(name)
    act_as(identity)


@events.receives(user_connected)
def _join_device_room(identity: Identity) -> None:
    if identity.device_id is not None:
        join_room(service.device_room(identity.device_id))
