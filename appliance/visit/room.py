"""The room: joining it when a helper accepts (and again after every reconnect), the call with the
helper (MediaEngine, its signals through the hub in order), the helper's presence, and its end
from either side."""

from __future__ import annotations

from typing import Any

from appliance.doc import DocReplica
from appliance.media import REASONS, MediaEngine
from appliance.quality import LEVELS
from appliance.visit.chat import Chat
from appliance.visit.connection import HubLink
from appliance.visit.context import Context, VisitData
from appliance.visit.document import Document


class Room:
    def __init__(
        self, ctx: Context, link: HubLink, media: MediaEngine, chat: Chat, document: Document
    ) -> None:
        self.ctx = ctx
        self.link = link
        self.media = media
        self.chat = chat
        self.document = document
        link.on("rtc:signal", self._rtc_signal)
        link.on("match", self._matched)
        link.on("room:rejoined", self._matched)
        link.on("peer:left", lambda _data: self._peer_present(False), room_only=True)
        link.on("peer:back", lambda _data: self._peer_present(True), room_only=True)
        link.on("room:ended", self._ended_by_hub, room_only=True)
        link.on("rtc:quality", self._peer_quality, room_only=True)

    def join(self, room_id: str) -> None:
        v = self.ctx.v
        answer = self.link.visit_call("room:join", {"room_id": room_id})
        with self.ctx.lock:
            if v.room_id != room_id or v.doc is None:
                self.document.close_link(v)
                v.doc, v.chat = DocReplica(), []
            v.room_id, v.phase, v.request_id = room_id, "in_room", None
            v.queue_position = v.eta_s = None
            v.breakroom = []
            v.peer_name = str(answer["peer"]["display_name"])
            v.peer_present = bool(answer["peer_present"])
            v.doc.load(answer.get("doc_state"))
            v.doc_version += 1
        for message in answer.get("chat_history", []):
            self.chat.got_line(v.chat, message)
        if answer.get("ended"):
            self.ended("ended", None)
            return
        self.media.start_call(
            answer.get("ice_servers") or [],
            str(answer.get("ice_transport_policy", "all")),
            self._send_signal,
            self._send_quality,
        )
        if self.media.video_level != "full":  # after a reconnect: the helper may have reloaded
            self._send_quality(self.media.video_level, self.media.video_reason())
        if v.peer_present:
            self.media.expect_offer()
        self.document.link_doc(v, str(answer["doc_url"]))
        self.chat.flush("chat")

    def leave(self, v: VisitData) -> None:
        """Hang up and close the document's socket (the document stays readable)."""
        self.media.end_call()
        self.document.close_link(v)

    def ended(self, reason: Any, by: Any) -> None:
        v = self.ctx.v
        self.leave(v)
        with self.ctx.lock:
            v.phase = "ended"
            v.room_ended_reason = str(reason) if reason else "ended"
            v.room_ended_by = str(by) if by else None
            v.peer_present = False

    def end_session(self) -> None:
        v = self.ctx.v
        if v.phase != "in_room" or v.room_id is None:
            return
        self.link.visit_call("room:end", {"room_id": v.room_id})
        self.ended("ended", "student")

    def _send_signal(self, kind: str, data: dict[str, Any] | None) -> None:
        """From the media thread: an rtc:signal for the helper, sent in order by the worker."""
        room_id = self.ctx.v.room_id
        if room_id is None:
            return
        payload = {"room_id": room_id, "kind": kind, "data": data}
        self.ctx.submit(self.link.visit_call, "rtc:signal", payload)

    def set_audio_only(self, on: bool) -> None:
        """The student's choice: the call without the kiosk's video, or back."""
        self.media.set_audio_only(on)

    def _send_quality(self, video: str, reason: str) -> None:
        """From the media thread: the kiosk's video changed level; the helper's page says so."""
        room_id = self.ctx.v.room_id
        if room_id is None:
            return
        payload = {"room_id": room_id, "video": video, "reason": reason}
        self.ctx.submit(self.link.visit_call, "rtc:quality", payload)

    # ---- the hub's events --------------------------------------------------------------------

    def _rtc_signal(self, data: dict[str, Any]) -> None:
        v = self.ctx.v
        if data.get("room_id") == v.room_id and v.phase == "in_room":
            self.media.signal(str(data.get("kind")), data.get("data"))

    def _peer_quality(self, data: dict[str, Any]) -> None:
        """rtc:quality from the helper: how its video adapted (shown in plain words)."""
        video, reason = data.get("video"), data.get("reason")
        if data.get("from") != "helper" or video not in LEVELS or reason not in REASONS:
            return
        with self.ctx.lock:
            self.ctx.v.peer_video, self.ctx.v.peer_video_reason = str(video), str(reason)

    def _matched(self, data: dict[str, Any]) -> None:
        """A helper accepted (match), or the hub put a returning student back (room:rejoined)."""
        v = self.ctx.v
        if v.phase in ("waiting", "in_room"):
            v.restored = True
            if data.get("room_id") != v.room_id or v.phase != "in_room":
                self.join(str(data["room_id"]))

    def _peer_present(self, present: bool) -> None:
        """peer:left or peer:back: the helper's connection dropped or came back."""
        v = self.ctx.v
        with self.ctx.lock:
            v.peer_present = present
        if v.peer_present and v.phase == "in_room":
            self.media.expect_offer()

    def _ended_by_hub(self, data: dict[str, Any]) -> None:
        self.ended(data.get("reason"), data.get("by"))
