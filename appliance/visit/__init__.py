"""The one object the kiosk UI talks to: a student's visit at the kiosk, from nickname to thank-you.

The UI thread calls the methods and reads `snapshot()` once per frame. Nothing here blocks the UI
thread: every method returns at once, either with nothing (the result shows up in the next
snapshot) or with a `concurrent.futures.Future` the UI may poll with `done()`. A failed Future
holds a `HubCallError` (code + a message in the visit's language, ready to show); the same error
also lands in `VisitView.error`.

Life of the object (one per kiosk process, reused visit after visit):

    visit = Visit(Options(data_dir=..., hub_url=..., fake_camera=True))
    visit.open()                       # camera preview, hub connection (when paired), health agent
    if not visit.snapshot().paired:    # first start: show the pairing code until staff confirm
        visit.pair("Library kiosk")    # -> snapshot().pairing
    visit.start("Ali", 9, "da")        # attract screen -> nickname, grade, language
    visit.catalog()                    # Future[Catalog]: subjects (da + en names), languages
    visit.local_frame(); visit.snapshot_jpeg()   # preview; photograph the assignment
    visit.ask(subject_id, None, "fractions", jpeg)   # -> phase "waiting"
    ... phase "in_room": remote_frame(), send_chat(), set_text(), add_stroke() ...
    visit.feedback(5, "good"); visit.finish()        # -> phase "idle", everything wiped
    visit.close()                      # at exit

Phases: "idle" (no visit) → start() → "asking" (choose subject, photo) → ask() → "waiting" (queue,
break room) → a helper accepts → "in_room" → the room ends (either side) → "ended" (feedback,
report) → finish() → "idle". cancel() goes from "waiting" back to "asking". finish() works from any
phase and is what the idle timeout calls.

Inside, the facade hands each call to the part that owns it (one module each): `pairing`,
`connection` (the hub connection and the routing of its events), `asking` (start, request, queue),
`room` (the call and the room's life), `chat` (chat and break-room lines), `document` (the shared
document), `outbox` (what must reach the hub even after a restart), `helpdesk` (a problem
with the kiosk, sent through the outbox); `context` is what they share,
`values` what crosses to the UI. The facade itself keeps what spans the parts: opening and closing
the device, finishing a visit, and resuming it after a reconnect."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Literal

import av
import numpy as np

from appliance.hub import HubCallError, HubUnreachable
from appliance.media import MediaEngine
from appliance.state import SITE_CODE_ENV, KioskState, mark_in_use
from appliance.visit.asking import Asking
from appliance.visit.chat import Chat
from appliance.visit.connection import HubLink
from appliance.visit.context import Context, VisitData
from appliance.visit.document import Document
from appliance.visit.helpdesk import Helpdesk, Problem
from appliance.visit.outbox import Outbox
from appliance.visit.pairing import KioskPairing
from appliance.visit.room import Room
from appliance.visit.values import (
    Catalog,
    ChatLine,
    Connection,
    ErrorView,
    Lang,
    Language,
    Options,
    PairingView,
    Phase,
    Stroke,
    Subject,
    VisitView,
)

__all__ = [
    "Catalog",
    "ChatLine",
    "Connection",
    "ErrorView",
    "Lang",
    "Language",
    "Options",
    "PairingView",
    "Phase",
    "Problem",
    "Stroke",
    "Subject",
    "Visit",
    "VisitView",
]

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0  # close() gives the worker this long to tell the hub the visit ended
# A resume, chat line or outbox entry that got no answer on a connection that stays up (a
# timeout, not a drop) is tried again on it after this long.
RETRY_S = 5.0


def _picture(path: Path) -> np.ndarray:
    """The picture in an image file (PNG, JPEG) as RGB, through the video library."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class Visit:
    """The facade; see the module docstring. Thread-safe.

    One worker thread (the context's) does everything that talks to the hub over Socket.IO, one
    thing at a time and in order. The UI thread only takes the lock briefly to read or to note a
    local change (a chat line shown as pending, an edit of the shared text)."""

    def __init__(self, options: Options, on_restart: Callable[[], None] | None = None) -> None:
        """`on_restart` is called (from a background thread) when site staff ask for a restart
        of the kiosk program and no visit is under way; by default the process sends itself
        SIGTERM so systemd starts it again."""
        self.options = options
        self._ctx = ctx = Context(options)
        self._in_use = False  # someone is at the screen (the UI says so), maybe before a visit
        self._media = MediaEngine(
            fake=options.fake_camera,
            camera=options.camera,
            microphone=options.microphone,
            size=options.video_size,
            fps=options.fps,
            still=_picture(options.fake_picture) if options.fake_picture else None,
        )
        self._link = HubLink(
            ctx,
            camera_ok=lambda: self._media.camera_ok,
            visit_active=lambda: self._in_use or ctx.v.phase != "idle",
            restart=on_restart or _terminate_self,
            unpaired=lambda: self._pairing.forget(),
        )
        self._pairing = KioskPairing(ctx, connect=self._link.connect)
        self._outbox = Outbox(ctx, self._link)
        self._helpdesk = Helpdesk(ctx, self._outbox)
        self._chat = Chat(ctx, self._link, self._outbox)
        self._document = Document(ctx, self._link)
        self._room = Room(ctx, self._link, self._media, self._chat, self._document)
        self._asking = Asking(ctx, self._link, self._chat, self._outbox)
        self._link.on_connected(self._connected)

    # ---- the device ----------------------------------------------------------------------

    def open(self) -> None:
        """Start the camera preview, the hub connection (if paired) and the health agent. Takes
        a moment (the camera opens); call it before the UI's main loop."""
        ctx = self._ctx
        state = ctx.state = KioskState(self.options.data_dir)
        mark_in_use(self.options.data_dir, False)  # left by a run that crashed
        if self.options.hub_url:
            state.hub_url = self.options.hub_url
        # `provision install --site` puts it in the unit's environment; --site wins over that
        site_code = self.options.site_code or os.environ.get(SITE_CODE_ENV)
        if site_code:
            state.site_code = site_code
        ctx.settings = state.hub_settings
        with ctx.lock:
            ctx.lang = ctx.home_lang()
            ctx.v = VisitData(lang=ctx.lang)
        self._media.start()
        identity = state.identity
        self._pairing.paired = identity is not None
        if identity is not None and state.hub_url:
            self._link.connect(state.hub_url, identity.device_token)

    def close(self) -> None:
        """Stop everything: the visit is finished, the call, camera and connection closed."""
        if self._ctx.v.phase != "idle":
            self.finish()
        self._pairing.stop()
        try:
            self._ctx.drain(CLOSE_WAIT_S)
        except Exception:
            log.info("closing before the hub heard everything; the outbox keeps it")
        self._link.disconnect()
        self.set_in_use(False)
        self._ctx.shutdown()
        self._media.close()
        if self._ctx.state is not None:
            self._ctx.state.close()

    def pair(self, name: str = "Kiosk") -> Future[None]:
        """Ask the hub for a pairing code and wait for site staff to confirm it; progress in
        `snapshot().pairing`. Resolves when paired (the connection then starts by itself). A
        code that runs out is replaced by a new one without asking."""
        return self._pairing.pair(name)

    def set_in_use(self, in_use: bool) -> None:
        """Whether someone is at the screen, from the nickname on: restarts staff ask for wait,
        and so does `provision update` (VISIT_MARKER)."""
        if in_use != self._in_use:
            self._in_use = in_use
            mark_in_use(self.options.data_dir, in_use)

    def set_language(self, lang: Lang) -> None:
        """The language of the hub's messages from now on (the UI's own texts are its own)."""
        with self._ctx.lock:
            self._ctx.lang = lang
            self._ctx.v.lang = lang
        self._link.set_language(lang)

    # ---- a visit -------------------------------------------------------------------------

    def start(self, nickname: str, grade: int, lang: Lang | None = None) -> Future[None]:
        """Start a visit (phase "idle" → "asking"). Fails with code "invalid" for a nickname the
        hub refuses, "offline" when the hub cannot be reached."""
        if lang is not None:
            self.set_language(lang)
        return self._ctx.run(self._asking.start, nickname.strip(), grade)

    def catalog(self) -> Future[Catalog]:
        """What can be asked about, with names in Danish and English (cached after the first)."""
        return self._ctx.run(self._asking.catalog, quiet=True)

    def ask(
        self,
        subject_id: int,
        language: str | None,
        note: str,
        photo_jpeg: bytes | None,
        scan: bool = True,
    ) -> Future[None]:
        """Upload the photo (if any) and ask for help (→ phase "waiting"). `scan`: the hub
        stores a photo of a page as its scan; False keeps the photo as it is."""
        return self._ctx.run(self._asking.ask, subject_id, language, note, photo_jpeg, scan)

    def cancel(self) -> Future[None]:
        """Withdraw the waiting request (→ phase "asking")."""
        return self._ctx.run(self._asking.cancel)

    def send_breakroom(self, text: str) -> None:
        """Post in the break room while waiting; shows at once as pending in `breakroom`."""
        self._chat.post("breakroom", text)

    def send_chat(self, text: str) -> None:
        """Chat in the room; shows at once as pending in `chat`, resent after a reconnect."""
        self._chat.post("chat", text)

    def set_text(self, text: str) -> None:
        """The shared text as the student now sees it; the replica stores the minimal edit."""
        self._document.edit(lambda doc: doc.set_text(text))

    def add_stroke(
        self,
        points: list[float],
        color: str = "#1b1d21",
        width: float = 6,
        mode: Literal["pen", "erase"] = "pen",
    ) -> int:
        """A new whiteboard stroke (flattened board-unit points, 1600 × 1200); returns a handle
        for `extend_stroke` so the helper sees it grow while the finger moves (0: no room)."""
        handle = self._document.edit(lambda doc: doc.add_stroke(points, color, width, mode))
        return handle or 0

    def extend_stroke(self, handle: int, points: list[float]) -> None:
        """More points of a stroke begun with `add_stroke`."""
        self._document.edit(lambda doc: doc.extend_stroke(handle, points))

    def clear_board(self) -> None:
        """Delete every stroke (both sides)."""
        self._document.edit(lambda doc: doc.clear_board())

    def set_audio_only(self, on: bool) -> None:
        """The student's choice in the room: only sound (the kiosk sends no video, and the
        helper is told), or video again as the network allows."""
        self._room.set_audio_only(on)

    def end_session(self) -> Future[None]:
        """The student ends the session (→ phase "ended")."""
        return self._ctx.run(self._room.end_session)

    def report(self, text: str) -> Future[None]:
        """Report a problem with the room; kept in the outbox until the hub has it. Resolves
        once delivered or safely queued for later."""
        return self._ctx.run(self._outbox.send, "room:report", {"text": text})

    def ask_helpdesk(self, problem: Problem, text: str = "") -> Future[None]:
        """Tell the hub's helpdesk about a problem with the kiosk (camera, sound, other), in or
        out of a visit; kept in the outbox until the hub has it. Resolves once delivered or
        safely queued for later."""
        return self._ctx.run(self._helpdesk.send, problem, text, quiet=True)

    def feedback(self, rating: int, comment: str = "") -> Future[None]:
        """Rating 1–5 and an optional comment after the room; kept in the outbox until sent."""
        return self._ctx.run(
            self._outbox.send, "feedback:submit", {"rating": rating, "comment": comment}
        )

    def finish(self) -> None:
        """End the visit whatever its phase (visit:end; the request or room is closed on the
        hub) and wipe it from memory: nickname, chat, document, frames. → phase "idle" at once;
        the hub hears it as soon as it can be reached."""
        ctx = self._ctx
        with ctx.lock:
            ctx.lang = ctx.home_lang()
            wiped, ctx.v = ctx.v, VisitData(lang=ctx.lang)
            ctx.error = None
            self._document.forget()
        self._room.leave(wiped)
        if wiped.visit_id is not None:
            self._outbox.end_visit(wiped.visit_id)
        self._link.set_language(ctx.lang)

    # ---- reading ---------------------------------------------------------------------------

    def snapshot(self) -> VisitView:
        """The state to draw now."""
        ctx, conn, paired = self._ctx, self._link.conn, self._pairing.paired
        if conn is not None:
            connection: Connection = conn.status
        else:
            connection = "offline" if paired else "unpaired"
        with ctx.lock:
            v = ctx.v
            doc_text, strokes = self._document.view()
            return VisitView(
                phase=v.phase,
                connection=connection,
                paired=paired and connection != "unpaired",
                pairing=self._pairing.view(),
                lang=ctx.lang,
                nickname=v.nickname,
                queue_position=v.queue_position,
                eta_s=v.eta_s,
                no_helper=v.phase == "waiting" and v.eta_s is None,
                next_shift=v.next_shift,
                breakroom=tuple(v.breakroom),
                peer_name=v.peer_name,
                peer_present=v.peer_present,
                chat=tuple(v.chat),
                doc_text=doc_text,
                strokes=strokes,
                doc_unsaved=v.doc_link.unsaved if v.doc_link is not None else 0,
                rtc_state=self._media.rtc_state if v.phase == "in_room" else "idle",
                remote_frames=self._media.remote.received if v.phase == "in_room" else 0,
                video=self._media.video_level if v.phase == "in_room" else "full",
                video_reason=self._media.video_reason(),
                audio_only=self._media.audio_only if v.phase == "in_room" else False,
                peer_video=v.peer_video,
                peer_video_reason=v.peer_video_reason,
                room_ended_reason=v.room_ended_reason,
                room_ended_by=v.room_ended_by,
                settings=ctx.settings,
                camera_ok=self._media.camera_ok,
                error=ctx.error,
                busy=ctx.busy > 0,
            )

    def remote_frame(self) -> np.ndarray | None:
        """The latest decoded frame of the helper's video (H × W × 3 uint8 RGB), or None."""
        return self._media.remote.rgb()

    def local_frame(self) -> np.ndarray | None:
        """The latest frame of the kiosk's own camera (RGB), for the preview."""
        return self._media.local.rgb()

    def snapshot_jpeg(self) -> bytes | None:
        """The current camera picture as JPEG (to photograph the assignment), or None."""
        return self._media.snapshot_jpeg()

    # ---- back on the hub (on the worker) -----------------------------------------------------

    def _connected(self) -> None:
        """After every (re)connect: resume, and keep at it while the connection stays up."""
        try:
            self._resume()
        except HubUnreachable as exc:
            log.info("resuming after a reconnect: %s", exc.code)
        self._retry_later()

    def _retry_later(self) -> None:
        """A call that timed out leaves the connection up (the hub or the network was slow for
        a moment), so no reconnect will resume the visit or flush the outbox: after RETRY_S, on
        the same connection, whatever is left is tried again. A new connection starts over."""
        conn, v = self._link.conn, self._ctx.v
        resumed = v.visit_id is None or self._link.acting_for() == v.visit_id
        chat_left = v.phase == "in_room" and any(line.pending for line in v.chat)
        if conn is None or (resumed and not chat_left and not self._outbox.waiting()):
            return
        timer = threading.Timer(RETRY_S, self._ctx.submit, (self._retry, conn.epoch))
        timer.daemon = True
        timer.start()

    def _retry(self, epoch: int) -> None:
        conn, v = self._link.conn, self._ctx.v
        if conn is None or conn.epoch != epoch or not conn.connected:
            return
        if v.visit_id is not None and self._link.acting_for() != v.visit_id:
            self._connected()
            return
        try:
            if v.phase == "in_room":
                self._chat.flush("chat")
            self._outbox.flush()
        finally:
            self._retry_later()

    def _resume(self) -> None:
        """Back on the hub after a (re)connect: act for the visit again and pick up where it
        was."""
        ctx = self._ctx
        v = ctx.v
        if v.visit_id is None:
            self._outbox.flush()
            if not self._outbox.waiting() and ctx.v.visit_id is None:
                # A visit the kiosk lost track of (it restarted mid-visit) must not keep a
                # place in the queue or a room: end whatever the hub still has open.
                self._link.hub().call("visit:end")
            return
        conn = self._link.hub()
        epoch = conn.epoch
        try:
            answer = conn.call("visit:resume", {"visit_id": v.visit_id})
        except HubCallError as exc:
            if exc.code in ("conflict", "not_found"):
                self._visit_lost(exc.message)
                return
            raise
        with ctx.lock:
            v.visit_token = str(answer["visit_token"])
            self._link.act_for(epoch, v.visit_id)
            v.restored = False
        if v.phase == "in_room" and v.room_id:
            self._room.join(v.room_id)
        elif v.phase == "waiting":
            self._asking.expect_restore(v)
            self._chat.flush("breakroom")
        self._outbox.flush()

    def _visit_lost(self, message: str) -> None:
        """The hub ended the visit while the kiosk was away (e.g. the kiosk was gone too long)."""
        ctx = self._ctx
        v = ctx.v
        if v.visit_id is not None and ctx.state is not None:
            ctx.state.remove_visit(v.visit_id)
        self._room.leave(v)
        with ctx.lock:
            v.phase, v.visit_id, v.room_ended_reason = "ended", None, v.room_ended_reason or "ended"
            ctx.error = ErrorView("visit_lost", message)
