"""The frozen values that cross between the kiosk UI and the visit: the options the kiosk runs
with, what can be asked about, and `VisitView`, everything the UI draws as of one moment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from appliance.state import HubSettings

Phase = Literal["idle", "asking", "waiting", "in_room", "ended"]
Connection = Literal["connected", "reconnecting", "offline", "unpaired"]
Lang = Literal["da", "en"]


@dataclass(frozen=True)
class Options:
    """How the kiosk runs; from the command line (`lektiecafe kiosk --hub ... --fake-camera`)."""

    data_dir: Path = Path("/var/lib/lektiecafe-kiosk")
    hub_url: str | None = None  # overrides (and is stored over) the hub address in the state
    site_code: str | None = None  # the same for the site's code offered when pairing
    fake_camera: bool = False  # the synthetic camera and tone even when a webcam exists
    fake_picture: Path | None = None  # a picture file the synthetic camera shows (a worksheet)
    camera: str = "/dev/video0"
    microphone: str = "default"  # ALSA device
    video_size: tuple[int, int] = (640, 480)
    fps: int = 15
    lang: Lang = "da"  # the kiosk's default language between visits (the hub's setting wins)


@dataclass(frozen=True)
class Subject:
    id: int
    key: str  # stable name for an icon, e.g. "math"
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
    doc_unsaved: int = 0  # changes to the shared document the hub has not confirmed stored yet
    rtc_state: str = "idle"  # "idle" | "connecting" | "connected" | "reconnecting" | "closed"
    remote_frames: int = 0  # frames of the helper's video decoded since the kiosk started
    # how the video adapts (appliance/quality.py): "full" | "low" | "off", and why:
    # "network" | "choice" (the student's audio only; the helper's, for peer_video)
    video: str = "full"
    video_reason: str = "network"
    audio_only: bool = False
    peer_video: str = "full"
    peer_video_reason: str = "network"
    room_ended_reason: str | None = None  # "ended" | "peer_gone"
    room_ended_by: str | None = None  # "student" | "helper" | None
    # the device
    # pushed from the hub; stored, so they outlive a restart
    settings: HubSettings = field(default_factory=HubSettings)
    camera_ok: bool = False
    error: ErrorView | None = None
    busy: bool = False  # a call to the hub is under way (show a spinner on the pressed button)
