"""The visit's lines: chat in the room and the break room while waiting. A line the student
writes shows at once as pending and stays pending until the hub acknowledges it, so a line
written offline goes after the next reconnect (the hub stores a resend only once, by its
`client_msg_id`), and one the hub could not store for now ("unavailable": its database restarts)
goes again a moment later. A chat line is also kept in the outbox on disk until the hub has
answered it, so one written offline still arrives if the kiosk restarts before it is back."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from typing import Any, Literal

from appliance.hub import HubCallError, HubUnreachable
from appliance.visit.connection import HubLink
from appliance.visit.context import Context
from appliance.visit.outbox import Outbox
from appliance.visit.values import ChatLine

MAX_LINES = 100  # chat and break-room lines kept for the screen
# Refusals that mean "not now" rather than "no": the line stays pending and goes again after this.
TRY_AGAIN_CODES = frozenset({"unavailable"})
TRY_AGAIN_S = 3.0

Where = Literal["chat", "breakroom"]


def _replace_line(lines: list[ChatLine], key: str, **changes: Any) -> bool:
    for i, line in enumerate(lines):
        if line.key == key:
            lines[i] = replace(line, **changes)
            return True
    return False


class Chat:
    def __init__(self, ctx: Context, link: HubLink, outbox: Outbox) -> None:
        self.ctx = ctx
        self.link = link
        self.outbox = outbox
        link.on("breakroom:message", self._breakroom_message)
        link.on("breakroom:removed", self._breakroom_removed)
        link.on("chat:message", self._chat_message, room_only=True)
        link.on("chat:blocked", self._chat_blocked, room_only=True)
        self._again: dict[Where, threading.Timer] = {}

    def post(self, where: Where, text: str) -> None:
        """A line the student wrote (on the UI thread): pending at once, sent by the worker."""
        text = text.strip()
        if not text:
            return
        with self.ctx.lock:
            v = self.ctx.v
            if (where == "chat" and v.phase != "in_room") or (
                where == "breakroom" and v.phase != "waiting"
            ):
                return
            line = ChatLine(uuid.uuid4().hex, v.nickname, text, mine=True, pending=True)
            (v.chat if where == "chat" else v.breakroom).append(line)
            if where == "chat":
                payload = {"room_id": v.room_id, "text": text, "client_msg_id": line.key}
                self.outbox.keep(line.key, "chat:send", payload)
        self.ctx.submit(self.flush, where)

    def flush(self, where: Where) -> None:
        """Send the lines still pending, oldest first; the hub stores a resend only once."""
        v = self.ctx.v
        lines = v.chat if where == "chat" else v.breakroom
        event = "chat:send" if where == "chat" else "breakroom:send"
        for line in [x for x in lines if x.pending]:
            payload: dict[str, Any] = {"text": line.text, "client_msg_id": line.key}
            if where == "chat":
                payload["room_id"] = v.room_id
            try:
                answer = self.link.visit_call(event, payload)
            except HubUnreachable:
                return  # sent again after the next reconnect
            except HubCallError as exc:
                if exc.code in TRY_AGAIN_CODES:
                    self._flush_later(where)
                    return
                reason = str(exc.details.get("reason", exc.code))
                with self.ctx.lock:
                    _replace_line(
                        lines,
                        line.key,
                        pending=False,
                        blocked_reason=reason,
                        blocked_message=exc.message,
                    )
                self.outbox.done(line.key)
                continue
            with self.ctx.lock:
                _replace_line(lines, line.key, pending=False, ts=answer.get("ts"))
            self.outbox.done(line.key)

    def _flush_later(self, where: Where) -> None:
        """One timer per kind of line: flush sends every pending line, oldest first."""
        if (timer := self._again.get(where)) is not None and timer.is_alive():
            return
        timer = threading.Timer(TRY_AGAIN_S, self.ctx.submit, (self.flush, where))
        timer.daemon = True
        self._again[where] = timer
        timer.start()

    def got_line(self, lines: list[ChatLine], message: dict[str, Any]) -> None:
        """A message from the hub: ours (acknowledged now) or someone else's (new)."""
        client_id = str(message.get("client_msg_id") or "")
        with self.ctx.lock:
            if client_id and any(x.key == client_id and x.mine for x in lines):
                _replace_line(lines, client_id, pending=False, ts=message.get("ts"))
                self.outbox.done(client_id)
                return
            key = f"hub:{message.get('msg_id')}"
            if any(x.key == key for x in lines):
                return
            lines.append(
                ChatLine(
                    key,
                    str(message.get("from", "")),
                    str(message.get("text", "")),
                    mine=False,
                    ts=message.get("ts"),
                )
            )
            del lines[:-MAX_LINES]

    # ---- the hub's events --------------------------------------------------------------------

    def _breakroom_message(self, data: dict[str, Any]) -> None:
        v = self.ctx.v
        if v.phase == "waiting":
            self.got_line(v.breakroom, data)

    def _breakroom_removed(self, data: dict[str, Any]) -> None:
        v = self.ctx.v
        with self.ctx.lock:
            v.breakroom[:] = [x for x in v.breakroom if x.key != f"hub:{data.get('msg_id')}"]

    def _chat_message(self, data: dict[str, Any]) -> None:
        self.got_line(self.ctx.v.chat, data)

    def _chat_blocked(self, data: dict[str, Any]) -> None:
        v, key = self.ctx.v, str(data.get("client_msg_id"))
        self.outbox.done(key)
        with self.ctx.lock:
            _replace_line(
                v.chat,
                key,
                pending=False,
                blocked_reason=str(data.get("reason")),
                blocked_message=str(data.get("message")),
            )
