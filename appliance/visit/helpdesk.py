"""A problem with the kiosk itself ("the camera does not work"), sent to the hub's helpdesk. It
goes through the outbox, so it reaches the hub after a restart or once the network is back; its
own `ref` makes a resend the same ticket. Nothing of the student goes with it but the text they
typed: the hub attaches the kiosk and its site."""

from __future__ import annotations

import uuid
from typing import Literal

from appliance.hub import HubCallError
from appliance.visit.context import Context
from appliance.visit.outbox import Outbox

Problem = Literal["camera", "sound", "other"]
TEXT_MAX = 500


class Helpdesk:
    def __init__(self, ctx: Context, outbox: Outbox) -> None:
        self.ctx = ctx
        self.outbox = outbox

    def send(self, problem: Problem, text: str) -> None:
        """Queue the ticket, then send what waits (on the worker)."""
        state = self.ctx.state
        if state is None:
            raise HubCallError("conflict", "The kiosk is not open.")
        payload = {"problem": problem, "text": text.strip()[:TEXT_MAX], "ref": uuid.uuid4().hex}
        state.enqueue("helpdesk:ticket", payload, None)
        self.outbox.flush()
