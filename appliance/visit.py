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
phase and is what the idle timeout calls."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Phase = Literal["idle", "asking", "waiting", "in_room", "ended"]
Connection = Literal["connected", "reconnecting", "offline", "unpaired"]
Lang = Literal["da", "en"]


@dataclass(frozen=True)
class Options:
    """How the kiosk runs; from the command line (`lektiecafe kiosk --hub ... --fake-camera`)."""

    data_dir: Path = Path("/var/lib/lektiecafe-kiosk")
    hub_url: str | None = None  # overrides (and is stored over) the hub address in the state
    fake_camera: bool = False  # the synthetic camera and tone even when a webcam exists
    camera: str = "/dev/video0"
    microphone: str = "default"  # ALSA device
    video_size: tuple[int, int] = (640, 480)
    fps: int = 15
    lang: Lang = "da"  # the kiosk's default language between visits


@dataclass(frozen=True)
class Subject:
    id: int
    names: dict[str, str]  # {"da": "Matematik", "en": "Maths"}


@dataclass(frozen=True)
class Language:
    code: str
    names: dict[str, str]


@dataclass(frozen=True)
class Catalog:
    subjects: tuple[Subject, ...]
    languages: tuple[Language, ...]
    grades: tuple[int, ...]


@dataclass(frozen=True)
class ChatLine:
    """One chat or break-room message. `pending`: sent, not yet acknowledged (show it greyed);
    `blocked_reason`: the hub refused it (phone, email, link, handle), with `blocked_message` in
    the visit's language to show under it."""

    key: str  # stable id for the UI (the client_msg_id, or the hub's msg_id for others' lines)
    sender: str  # display name
    text: str
    mine: bool
    pending: bool = False
    blocked_reason: str | None = None
    blocked_message: str | None = None
    ts: str | None = None


@dataclass(frozen=True)
class Stroke:
    """A whiteboard stroke as the browser's whiteboard.js stores it. Points in board units
    (1600 × 1200), flattened x0, y0, x1, y1, …; mode "erase" removes ink under it."""

    mode: Literal["pen", "erase"]
    color: str
    width: float
    points: tuple[float, ...]


@dataclass(frozen=True)
class ErrorView:
    code: str  # "invalid", "conflict", "blocked", "rate_limited", "offline", "timeout", …
    message: str  # a sentence for the student, in the visit's language where the hub wrote it


@dataclass(frozen=True)
class PairingView:
    """While pairing: what to show large, and where it stands."""

    status: Literal["requesting", "waiting", "paired", "expired", "denied", "failed"]
    user_code: str = ""  # "ABCD-EFGH"
    verification_uri: str = ""
    verification_uri_complete: str = ""  # the QR code's content
    qr: tuple[tuple[bool, ...], ...] = ()  # QR modules, True = dark, with the quiet zone
    expires_in_s: float = 0.0  # seconds left when the snapshot was taken
    message: str = ""


@dataclass(frozen=True)
class VisitView:
    """Everything the UI draws, as of one moment. Cheap to take every frame."""

    phase: Phase = "idle"
    connection: Connection = "offline"
    paired: bool = False
    pairing: PairingView | None = None
    lang: Lang = "da"
    nickname: str = ""
    # waiting
    queue_position: int | None = None
    eta_s: int | None = None
    no_helper: bool = False  # nobody on duty can help with this subject now
    next_shift: str | None = None  # ISO time when the next shift that can help starts
    breakroom: tuple[ChatLine, ...] = ()
    # in the room
    peer_name: str = ""
    peer_present: bool = False
    chat: tuple[ChatLine, ...] = ()
    doc_text: str = ""
    strokes: tuple[Stroke, ...] = ()
    rtc_state: str = "idle"  # "idle" | "connecting" | "connected" | "reconnecting" | "closed"
    room_ended_reason: str | None = None  # "ended" | "peer_gone"
    room_ended_by: str | None = None  # "student" | "helper" | None
    # the device
    camera_ok: bool = False
    error: ErrorView | None = None
    busy: bool = False  # a call to the hub is under way (show a spinner on the pressed button)


class Visit:
    """The facade; see the module docstring. Thread-safe."""

    def __init__(self, options: Options, on_restart: Callable[[], None] | None = None) -> None:
        """`on_restart` is called (from a background thread) when site staff ask for a restart
        of the kiosk program and no visit is under way; by default the process sends itself
        SIGTERM so systemd starts it again."""
        raise NotImplementedError

    # ---- the device ----------------------------------------------------------------------

    def open(self) -> None:
        """Start the camera preview, the hub connection (if paired) and the health agent."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop everything: the visit is finished, the call, camera and connection closed."""
        raise NotImplementedError

    def pair(self, name: str = "Kiosk") -> Future[None]:
        """Ask the hub for a pairing code and wait for site staff to confirm it; progress in
        `snapshot().pairing`. Resolves when paired (the connection then starts by itself)."""
        raise NotImplementedError

    def set_language(self, lang: Lang) -> None:
        """The language of the hub's messages from now on (the UI's own texts are its own)."""
        raise NotImplementedError

    # ---- a visit -------------------------------------------------------------------------

    def start(self, nickname: str, grade: int, lang: Lang | None = None) -> Future[None]:
        """Start a visit (phase "idle" → "asking"). Fails with code "invalid" for a nickname the
        hub refuses, "offline" when the hub cannot be reached."""
        raise NotImplementedError

    def catalog(self) -> Future[Catalog]:
        """What can be asked about, with names in Danish and English (cached after the first)."""
        raise NotImplementedError

    def ask(
        self, subject_id: int, language: str | None, note: str, photo_jpeg: bytes | None
    ) -> Future[None]:
        """Upload the photo (if any) and ask for help (→ phase "waiting")."""
        raise NotImplementedError

    def cancel(self) -> Future[None]:
        """Withdraw the waiting request (→ phase "asking")."""
        raise NotImplementedError

    def send_breakroom(self, text: str) -> None:
        """Post in the break room while waiting; shows at once as pending in `breakroom`."""
        raise NotImplementedError

    def send_chat(self, text: str) -> None:
        """Chat in the room; shows at once as pending in `chat`, resent after a reconnect."""
        raise NotImplementedError

    def set_text(self, text: str) -> None:
        """The shared text as the student now sees it; the replica stores the minimal edit."""
        raise NotImplementedError

    def add_stroke(
        self,
        points: list[float],
        color: str = "#1b1d21",
        width: float = 6,
        mode: Literal["pen", "erase"] = "pen",
    ) -> int:
        """A new whiteboard stroke (flattened board-unit points); returns a handle for
        `extend_stroke` so the helper sees it grow while the finger moves."""
        raise NotImplementedError

    def extend_stroke(self, handle: int, points: list[float]) -> None:
        """More points of a stroke begun with `add_stroke`."""
        raise NotImplementedError

    def clear_board(self) -> None:
        """Delete every stroke (both sides)."""
        raise NotImplementedError

    def end_session(self) -> Future[None]:
        """The student ends the session (→ phase "ended")."""
        raise NotImplementedError

    def report(self, text: str) -> Future[None]:
        """Report a problem with the room; kept in the outbox until the hub has it."""
        raise NotImplementedError

    def feedback(self, rating: int, comment: str = "") -> Future[None]:
        """Rating 1–5 and an optional comment after the room; kept in the outbox until sent."""
        raise NotImplementedError

    def finish(self) -> None:
        """End the visit whatever its phase (visit:end; the request or room is closed on the
        hub) and wipe it from memory: nickname, chat, document, frames. → phase "idle"."""
        raise NotImplementedError

    # ---- reading ---------------------------------------------------------------------------

    def snapshot(self) -> VisitView:
        """The state to draw now."""
        raise NotImplementedError

    def remote_frame(self) -> np.ndarray | None:
        """The latest decoded frame of the helper's video (H × W × 3 uint8 RGB), or None."""
        raise NotImplementedError

    def local_frame(self) -> np.ndarray | None:
        """The latest frame of the kiosk's own camera (RGB), for the preview."""
        raise NotImplementedError

    def snapshot_jpeg(self) -> bytes | None:
        """The current camera picture as JPEG (to photograph the assignment), or None."""
        raise NotImplementedError
