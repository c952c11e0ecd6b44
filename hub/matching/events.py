"""Socket events for asking for help and for helpers on duty (see docs/protocol.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub import clock
from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.matching import service
from hub.matching.models import DutyStatus
from hub.realtime.events import SocketEvents, user_connected, user_gone
from hub.realtime.notices import deliver
from hub.rooms.ice import ice_servers
from hub.state import hub_state
from hub.validation import Payload

events = SocketEvents()  # bound by the app factory (hub.create_app)


class HelpRequestIn(Payload):
    subject: int
    grade: int
    language: str | None = Field(default=None, max_length=12)
    note: str = Field(default="", max_length=500)
    attachment_ids: list[str] = Field(default_factory=list, max_length=5)


class RequestRef(Payload):
    request_id: int


class DutyIn(Payload):
    status: Literal["available", "paused", "off"]


class OfferRef(Payload):
    offer_id: int


@events.handler("help:request", roles=[Role.STUDENT], payload=HelpRequestIn)
def help_request(student: Identity, data: HelpRequestIn) -> dict[str, Any]:
    state = hub_state()
    with state.db.matching_transaction() as s:
        answer = service.create_request(
            s,
            student,
            subject_id=data.subject,
            grade=data.grade,
            language_code=data.language or None,
            note=data.note,
            attachment_ids=data.attachment_ids,
            now=clock.now(),
            config=state.config,
        )
    state.kick_matching()
    return answer


@events.handler("help:cancel", roles=[Role.STUDENT], payload=RequestRef)
def help_cancel(student: Identity, data: RequestRef) -> None:
    state = hub_state()
    with state.db.matching_transaction() as s:
        notices = service.cancel_request(s, student, data.request_id, clock.now())
    deliver(notices)
    state.kick_matching()


@events.handler("duty:set", roles=[Role.HELPER], payload=DutyIn)
def duty_set(helper: Identity, data: DutyIn) -> dict[str, Any]:
    """Offers are made here rather than in the dispatcher, so a helper going on duty has their
    offer without waiting for the dispatcher's turn (and one withdrawn from a helper going off
    duty moves on at once)."""
    state = hub_state()
    now = clock.now()
    with state.db.matching_transaction() as s:
        notices = service.set_duty(s, helper, DutyStatus(data.status), now)
        notices += service.offer_free_helpers(s, now, state.config)
    deliver(notices)
    state.kick_matching()  # for the rest of the pass, the next deadline and the queue places
    return {"status": data.status}


@events.handler("offer:accept", roles=[Role.HELPER], payload=OfferRef)
def offer_accept(helper: Identity, data: OfferRef) -> dict[str, Any]:
    state = hub_state()
    ice = ice_servers(state.config)
    with state.db.matching_transaction() as s:
        room, peer, notices = service.accept_offer(s, helper, data.offer_id, clock.now(), ice)
    deliver(notices)
    state.kick_matching()
    return {"room_id": room.id, "peer": peer, "ice_servers": ice}


@events.handler("offer:decline", roles=[Role.HELPER], payload=OfferRef)
def offer_decline(helper: Identity, data: OfferRef) -> None:
    state = hub_state()
    with state.db.matching_transaction() as s:
        service.decline_offer(s, helper, data.offer_id, clock.now())
    state.kick_matching()


@events.receives(user_connected)
def _on_connected(identity: Identity) -> None:
    state = hub_state()
    with state.db.matching_transaction() as s:
        if identity.role == Role.STUDENT:
            notices = service.student_back(s, identity.user_id, state.config, clock.now())
        elif identity.role == Role.HELPER:
            notices = service.helper_back(s, identity.user_id, clock.now())
        else:
            return
    deliver(notices)


@events.receives(user_gone)
def _on_gone(identity: Identity) -> None:
    state = hub_state()
    with state.db.matching_transaction() as s:
        if identity.role == Role.STUDENT:
            service.student_gone(s, identity.user_id, clock.now())
        elif identity.role == Role.HELPER:
            service.helper_gone(s, identity.user_id, clock.now())
        else:
            return
    state.kick_matching()
