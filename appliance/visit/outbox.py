"""What must reach the hub even if the kiosk is offline or restarts: reports, feedback, chat lines
and the end of a visit, kept in the kiosk state's outbox on disk and sent oldest first."""

from __future__ import annotations

import logging
from typing import Any

from appliance.hub import HubCallError, HubUnreachable
from appliance.state import OutboxItem
from appliance.visit.connection import HubLink
from appliance.visit.context import Context

log = logging.getLogger(__name__)

# Refusals that mean "not now" rather than "no": the entry stays and goes with the next flush.
TRY_AGAIN_CODES = frozenset({"unavailable"})


class Outbox:
    def __init__(self, ctx: Context, link: HubLink) -> None:
        self.ctx = ctx
        self.link = link
        # Entries a part of the visit under way sends itself (chat lines, which it shows as
        # pending), by that part's own key: the outbox only keeps them for after a restart or
        # the end of that visit.
        self._kept: dict[str, str] = {}  # the caller's key -> the entry's id

    def waiting(self) -> bool:
        """Something the outbox sends has not reached the hub yet."""
        state = self.ctx.state
        return state is not None and any(not self._theirs(item) for item in state.outbox())

    def _theirs(self, item: OutboxItem) -> bool:
        """Kept for a part of the visit under way, which sends it itself."""
        return item.id in self._kept.values() and item.visit_id == self.ctx.v.visit_id

    def send(self, event: str, payload: dict[str, Any]) -> None:
        """About the room of the visit under way (on the worker): queued, then sent if possible."""
        v, state = self.ctx.v, self.ctx.state
        if v.room_id is None or v.visit_id is None or state is None:
            raise HubCallError("conflict", "There is no session to send this about.")
        state.enqueue(event, {"room_id": v.room_id, **payload}, v.visit_id)
        self.flush()

    def keep(self, key: str, event: str, payload: dict[str, Any]) -> None:
        """A call the caller makes itself while the visit under way lasts, kept on disk so that
        it still reaches the hub if the kiosk restarts first (or the visit ends first), until
        `done(key)`. Nothing is kept without a visit."""
        v, state = self.ctx.v, self.ctx.state
        if v.visit_id is not None and state is not None:
            self._kept[key] = state.enqueue(event, payload, v.visit_id).id

    def done(self, key: str) -> None:
        """The hub has answered the kept call `key`: nothing more to keep."""
        if (item_id := self._kept.pop(key, None)) is not None:
            self._remove(item_id)

    def _remove(self, item_id: str) -> None:
        if self.ctx.state is not None:
            self.ctx.state.remove(item_id)

    def end_visit(self, visit_id: int) -> None:
        """The visit is over: the hub hears visit:end as soon as it can be reached."""
        if self.ctx.state is not None:
            self.ctx.state.enqueue("visit:end", {}, visit_id)
            self.ctx.submit(self.flush)

    def flush(self) -> None:
        """Send what waits, oldest first, acting for each entry's visit (resuming a finished
        visit the hub has not yet heard the end of). Stops at the first unanswered call."""
        state, conn = self.ctx.state, self.link.conn
        if state is None or conn is None or not conn.connected:
            return
        for item in state.outbox():
            if self._theirs(item):
                continue
            if item.visit_id is not None and item.visit_id != self.link.acting_for():
                if self.ctx.v.visit_id is not None and self.ctx.v.visit_id != item.visit_id:
                    return  # never step out of the visit under way
                epoch = conn.epoch
                try:
                    conn.call("visit:resume", {"visit_id": item.visit_id})
                except HubUnreachable:
                    return
                except HubCallError:
                    state.remove_visit(item.visit_id)  # the hub ended it already
                    continue
                self.link.act_for(epoch, item.visit_id)
            try:
                conn.call(item.event, item.payload)
            except HubUnreachable:
                return
            except HubCallError as exc:
                if exc.code in TRY_AGAIN_CODES:
                    return
                log.warning("the hub refused %s for good: %s", item.event, exc.code)
                self._remove(item.id)
                if item.visit_id == self.ctx.v.visit_id:
                    raise
                continue
            self._remove(item.id)
            if item.event == "visit:end":
                self.link.stop_acting()
