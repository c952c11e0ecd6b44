"""The kiosk's socket event of the helpdesk (docs/protocol.md, "Helpdesk"): a problem reported
from the kiosk's help overlay, the kiosk and its site attached from the connection's identity."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub import clock
from hub.accounts.access import Identity
from hub.accounts.models import Role
from hub.helpdesk import service
from hub.realtime.events import SocketEvents
from hub.state import hub_state
from hub.validation import Payload

events = SocketEvents()  # bound by the app factory (hub.create_app)


class KioskTicketIn(Payload):
    problem: Literal["camera", "sound", "other"]
    text: str = Field(default="", max_length=500)
    # The kiosk's own id for the ticket, so a resend from its outbox is not a second ticket.
    ref: str = Field(min_length=8, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")


@events.handler("helpdesk:ticket", roles=[Role.KIOSK], payload=KioskTicketIn)
def kiosk_ticket(kiosk: Identity, data: KioskTicketIn) -> dict[str, Any]:
    with hub_state().db.transaction() as s:
        ticket = service.open_kiosk_ticket(s, kiosk, data.problem, data.text, data.ref, clock.now())
        return {"ticket_id": ticket.id}
