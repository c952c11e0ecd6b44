"""The kiosk's media engine: camera and microphone, the WebRTC call with the helper, and the frames
the UI draws, on aiortc in an asyncio event loop of its own thread.

Everything it opens it opens in one place (`_open_devices`, `_new_connection`) and closes in one
place (`close`, `_drop_connection`), like aiortc's examples/webcam and examples/server. The camera
goes through a `MediaRelay`, so the preview and the call read the same device.

Signalling follows docs/protocol.md and the browser's rtc.js: the helper makes every offer (the
student is the *polite* peer of perfect negotiation); the kiosk answers, adds the helper's
trickled candidates, and asks for a new offer with kind "restart" when the call fails or no offer
comes. aiortc cannot restart ICE on a connection, so an offer from a new connection of the helper
or with new ICE credentials gets a fresh RTCPeerConnection here; rtc.js sees the new session in
the answer and starts a fresh connection of its own, and the two meet again. aiortc gathers all
its candidates before `setLocalDescription` returns, so the answer carries them and the kiosk
trickles none.

The synthetic camera (`SyntheticVideo`) draws a moving test pattern with the time and a frame
counter, and writes the capture time in milliseconds into the top of the picture as a row of black
and white blocks (`stamp_time` / `read_time`), so a receiver can read back the glass-to-glass
latency from the picture alone.

The call adapts to the network as the browser's rtc.js does (appliance/quality.py has the policy
and all its numbers): every `SAMPLE_S` the engine reads its senders' stats (loss and round trip
from the helper's RTCP receiver reports, the helper's bitrate estimate from REMB), steps the
policy, and sends its video at the level that comes out: `full`; `low`, half the width and height
at 10 frames a second (`AdaptiveVideo` scales and drops frames between the camera and the
sender); `off`, no video at all while the sound goes on. The student's choice of audio only
(`set_audio_only`) turns video off too. aiortc's own encoders send more than a weak link carries,
so the engine gives each call's senders encoders of its own (`LeanOpusEncoder`,
`LeanVp8Encoder`, installed by `_install_encoders`) whose bitrates follow the level. Each change
of the level is reported through `start_call`'s `quality(video, reason)`, so the helper is told."""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.codecs import opus, vpx
from aiortc.contrib.media import MediaBlackhole, MediaPlayer, MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from appliance import quality
from appliance.quality import Level, Policy, Sample

log = logging.getLogger(__name__)

RtcState = Literal["idle", "connecting", "connected", "reconnecting", "closed"]
SendSignal = Callable[[str, dict[str, Any] | None], None]
Reason = Literal["network", "choice"]
REASONS: tuple[Reason, ...] = ("network", "choice")
SendQuality = Callable[[Level, Reason], None]

OFFER_WAIT_S = 2.0  # no offer this long after the call starts: ask for one (rtc.js does too)
CONNECT_WATCHDOG_S = 15.0  # answered but not connected after this long: ask for a fresh round
VIDEO_CLOCK = 90000
AUDIO_RATE, AUDIO_PTIME = 48000, 0.02

# ---- the synthetic camera and microphone ---------------------------------------------------------

STAMP_BITS = 40  # 32 bits of milliseconds, 8 bits of check
_FONT = {  # 3×5 digits, rows top to bottom
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    ":": "000010000010000",
    ".": "000000000000010",
    " ": "000000000000000",
}
_GLYPHS = {c: np.array([b == "1" for b in bits]).reshape(5, 3) for c, bits in _FONT.items()}


def _stamp_layout(width: int, height: int) -> tuple[int, int]:
    """(cell width, band height) of the time stamp, in proportion so scaling keeps it readable."""
    return width // STAMP_BITS, max(4, height // 15)


def _check(ms: int) -> int:
    return (sum(ms.to_bytes(4, "big")) & 0xFF) ^ 0xA5


def stamp_time(rgb: np.ndarray, ms: int) -> None:
    """Write `ms` (wrapped to 32 bits) into the top band of `rgb` as black/white blocks."""
    height, width = rgb.shape[:2]
    cell, band = _stamp_layout(width, height)
    ms &= 0xFFFFFFFF
    value = (ms << 8) | _check(ms)
    rgb[:band] = 0
    for i in range(STAMP_BITS):
        if (value >> (STAMP_BITS - 1 - i)) & 1:
            rgb[:band, i * cell : (i + 1) * cell] = 255


def read_time(rgb: np.ndarray) -> int | None:
    """The milliseconds `stamp_time` wrote (32-bit), or None if the band does not check out."""
    height, width = rgb.shape[:2]
    cell, band = _stamp_layout(width, height)
    rows = rgb[band // 4 : band - band // 4]
    value = 0
    for i in range(STAMP_BITS):
        block = rows[:, i * cell + cell // 4 : (i + 1) * cell - cell // 4]
        value = (value << 1) | int(block.mean() > 127)
    ms, check = value >> 8, value & 0xFF
    return ms if check == _check(ms) else None


def latency_ms(rgb: np.ndarray, now_ms: int | None = None) -> int | None:
    """How long ago (ms, same clock) the frame's picture was made, from its time stamp."""
    sent = read_time(rgb)
    if sent is None:
        return None
    now = (int(time.time() * 1000) if now_ms is None else now_ms) & 0xFFFFFFFF
    return (now - sent) & 0xFFFFFFFF


def _draw_text(rgb: np.ndarray, text: str, x: int, y: int, scale: int) -> None:
    for c in text:
        glyph = _GLYPHS.get(c, _GLYPHS[" "])
        big = np.repeat(np.repeat(glyph, scale, axis=0), scale, axis=1)
        h, w = big.shape
        region = rgb[y : y + h, x : x + w]
        region[big[: region.shape[0], : region.shape[1]]] = 255
        x += 4 * scale


class SyntheticVideo(MediaStreamTrack):
    """A camera that needs no camera: colour bars sliding by, a bouncing square, the wall-clock
    time and the frame number in big digits, and the machine-readable time stamp on top. Or,
    given a `still` (RGB), that picture in every frame: a worksheet held up to the camera, for
    the photo screen's tests and demos."""

    kind = "video"

    def __init__(
        self, width: int = 640, height: int = 480, fps: int = 15, still: np.ndarray | None = None
    ) -> None:
        super().__init__()
        self.still = still
        if still is not None:
            height, width = still.shape[:2]
        self.width, self.height, self.fps = width, height, fps
        colours = np.array(
            [
                [192, 192, 192],
                [192, 192, 0],
                [0, 192, 192],
                [0, 192, 0],
                [192, 0, 192],
                [192, 0, 0],
                [0, 0, 192],
                [40, 40, 40],
            ],
            dtype=np.uint8,
        )
        bar = max(1, width // 8)
        columns = np.repeat(colours, bar, axis=0)[:width]
        row = np.concatenate([columns, columns])  # twice as wide, to slide a window over
        self._bars = np.broadcast_to(row, (height, *row.shape)).copy()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._count += 1
            wait = self._start + self._count / self.fps - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = av.VideoFrame.from_ndarray(self.picture(self._count, time.time()), format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame

    def picture(self, count: int, now: float) -> np.ndarray:
        if self.still is not None:
            return self.still
        w, h = self.width, self.height
        shift = (count * max(1, w // 80)) % w
        rgb = self._bars[:, shift : shift + w].copy()
        side = h // 6
        x = int((w - side) * (0.5 + 0.5 * math.sin(count / 10)))
        y = int((h - side) * (0.5 + 0.5 * math.cos(count / 13)))
        rgb[y : y + side, x : x + side] = 255
        scale = max(1, h // 60)
        clock = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
        band = _stamp_layout(w, h)[1]
        _draw_text(rgb, clock, scale * 2, band + scale * 2, scale)
        _draw_text(rgb, f"{count:06d}", scale * 2, band + scale * 9, scale)
        stamp_time(rgb, int(now * 1000))
        return rgb


class SyntheticAudio(MediaStreamTrack):
    """A quiet 440 Hz tone in 20 ms frames, so the other side hears that sound works."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._samples = 0
        t = np.arange(AUDIO_RATE) / AUDIO_RATE
        # One second of a whole number of periods, so consecutive frames join without a click.
        self._tone = (np.sin(2 * math.pi * 440 * t) * 1500).astype(np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        per_frame = int(AUDIO_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.time()
        else:
            self._samples += per_frame
            wait = self._start + self._samples / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        offset = self._samples % AUDIO_RATE  # a second holds a whole number of frames
        chunk = self._tone[offset : offset + per_frame]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


# ---- frames handed to the UI -----------------------------------------------------------------


class LatestFrame:
    """The newest frame of a track, converted to RGB only when someone asks (the UI draws fewer
    frames than arrive, and converting costs more than keeping)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self._rgb: np.ndarray | None = None
        self.received = 0

    def put(self, frame: av.VideoFrame) -> None:
        with self._lock:
            self._frame, self._rgb = frame, None
            self.received += 1

    def frame(self) -> av.VideoFrame | None:
        with self._lock:
            return self._frame

    def rgb(self) -> np.ndarray | None:
        with self._lock:
            if self._rgb is None and self._frame is not None:
                self._rgb = self._frame.to_ndarray(format="rgb24")
            return self._rgb

    def clear(self) -> None:
        with self._lock:
            self._frame, self._rgb = None, None


def jpeg_of(frame: av.VideoFrame) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = frame.width, frame.height
    codec.pix_fmt = "yuvj420p"
    codec.time_base = fractions.Fraction(1, 1)
    packets = codec.encode(frame.reformat(format="yuvj420p"))
    packets += codec.encode(None)
    return b"".join(bytes(packet) for packet in packets)


# ---- what the call sends, level by level -------------------------------------------------------


class AdaptiveVideo(MediaStreamTrack):
    """The camera (a relay's copy) as the call sends it at `level`: `full` as it comes; `low` at
    1/`LOW_SCALE` of the width and height and at most `LOW_FPS` frames a second (one frame per
    1/`LOW_FPS` s of the camera's own clock is kept, so 15 fps become 10 and 30 become 10);
    `off` none at all: `recv` reads and drops the camera's frames until the level changes, so the
    sender waits and sends no video packets (its RTCP goes on), while the audio sender, which
    has a track of its own, is not touched. Swapping the sender's track (`replaceTrack(None)`)
    would do too; keeping one track keeps the encoder, so video comes back without a new
    negotiation."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, level: Level = "full") -> None:
        super().__init__()
        self.source = source
        self.level: Level = level
        self._slot: int | None = None

    async def recv(self) -> Any:
        while True:
            frame = await self.source.recv()
            level = self.level
            if level == "full" or not isinstance(frame, av.VideoFrame):
                return frame
            if level == "off":
                continue
            at = frame.time if frame.time is not None else time.monotonic()
            slot = int(at * quality.LOW_FPS)
            if slot == self._slot:
                continue
            self._slot = slot
            small = frame.reformat(
                width=max(2, frame.width // quality.LOW_SCALE),
                height=max(2, frame.height // quality.LOW_SCALE),
            )
            small.pts, small.time_base = frame.pts, frame.time_base
            return small

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class LeanOpusEncoder(opus.OpusEncoder):
    """aiortc's Opus encoder (aiortc/codecs/opus.py) at the bitrate `bitrate_bps` says, which may
    change during the call. aiortc fixes Opus at 96 kbit/s (`OpusEncoder.__init__`), more than a
    64 kbit/s link carries with anything else; speech needs far less (browsers send about 32).
    FFmpeg's libopus wrapper reads the bitrate only when it opens, so a new bitrate opens a new
    libopus context at the next frame, and the RTP timestamps carry on where the old one
    stopped (aiortc counts them from each context's first packet)."""

    def __init__(self, kbps: int) -> None:
        super().__init__()
        self.bitrate_bps = kbps * 1000
        self.codec.bit_rate = self.bitrate_bps  # not opened yet: takes effect at the first frame
        self._offset = 0
        self._next: int | None = None  # the timestamp after the last packet

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        if self.codec.bit_rate != self.bitrate_bps:
            self._reopen()
        payloads, timestamp = super().encode(frame, force_keyframe)
        if not payloads:
            return payloads, timestamp
        timestamp += self._offset
        self._next = timestamp + opus.SAMPLES_PER_FRAME * len(payloads)
        return payloads, timestamp

    def _reopen(self) -> None:
        codec = av.CodecContext.create("libopus", "w")
        codec.bit_rate = self.bitrate_bps
        codec.format = "s16"
        codec.layout = "stereo"
        codec.options = {"application": "voip"}
        codec.sample_rate = opus.SAMPLE_RATE
        codec.time_base = opus.TIME_BASE
        self.codec = codec
        self.first_packet_pts = None
        if self._next is not None:
            self._offset = self._next


class LeanVp8Encoder(vpx.Vp8Encoder):
    """aiortc's VP8 encoder (aiortc/codecs/vpx.py) with a ceiling per level and a lower floor.
    aiortc sets the target to the helper's estimate (REMB, through `target_bitrate`) clamped to
    250–1500 kbit/s and starts at 500, so on a weak link it sends more than the link carries.
    Here the estimate is kept as it came (`estimate_bps`, the policy's available bitrate) and the
    target is the estimate, at most `max_bps` (the level's ceiling), at least
    `VIDEO_MIN_KBPS`. The base class rebuilds its libvpx context when the target moves by more
    than 10 % and sizes the rate buffer from its private copy of the target, which is kept equal
    (`_Vp8Encoder__target_bitrate`, the name Python gives the base's `__target_bitrate`)."""

    def __init__(self, max_kbps: int) -> None:
        super().__init__()
        self.estimate_bps: int | None = None
        self.max_bps = max_kbps * 1000
        self._target = vpx.DEFAULT_BITRATE
        self._probe_until = 0.0
        self.trusted = True
        self._retarget()

    def distrust(self) -> None:
        """Video went off: from now on in this call the estimate neither sets the target nor
        counts for the policy (see appliance/quality.py: it falls to Chrome's floor while no
        video arrives and grows back only slowly); loss and round trip decide."""
        self.trusted = False
        self._retarget()

    def probe(self) -> None:
        """Back to full video: for `PROBE_S`, `PROBE_GAIN` times the helper's estimate (see
        appliance/quality.py), so the estimate can grow back."""
        self._probe_until = time.monotonic() + quality.PROBE_S
        self._retarget()

    def probing(self) -> bool:
        return time.monotonic() < self._probe_until

    @property
    def target_bitrate(self) -> int:
        return self._target

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.estimate_bps = bitrate
        self._retarget()

    def set_max(self, kbps: int) -> None:
        self.max_bps = kbps * 1000
        self._retarget()

    def _retarget(self) -> None:
        wanted = vpx.DEFAULT_BITRATE
        if self.estimate_bps is not None and self.trusted:
            wanted = self.estimate_bps
        if self.probing() and self.estimate_bps is not None and self.trusted:
            wanted = int(self.estimate_bps * quality.PROBE_GAIN)
        self._target = max(quality.VIDEO_MIN_KBPS * 1000, min(wanted, self.max_bps))
        self._Vp8Encoder__target_bitrate = self._target


class Counted(MediaStreamTrack):
    """Another track's frames, counted as they are read (the helper's sound, which only goes to
    the speaker, so a test can see it keeps arriving)."""

    def __init__(self, source: MediaStreamTrack, count: Callable[[], None]) -> None:
        super().__init__()
        self.kind = source.kind
        self.source, self._count = source, count

    async def recv(self) -> Any:
        frame = await self.source.recv()
        self._count()
        return frame


@dataclass(frozen=True)
class Counters:
    """What the sample before saw, summed over the call's senders as of their newest receiver
    reports: packets the reports cover, and of those reported lost."""

    covered: int = 0
    lost: int = 0


def sample_of(stats: list[Any], before: Counters) -> tuple[Sample, Counters]:
    """One sample from the stats of the call's senders (aiortc's remote-inbound-rtp) and the
    counters of the sample before.

    The loss: of the packets the helper's receiver reports covered since then, the share they say
    were lost (aiortc's packetsReceived + packetsLost is what had been sent when the report came).
    rtc.js counts lost packets against packets *sent*; here both sides of the fraction come from
    the reports, because Chrome reports on the sound only every few seconds: against packets sent,
    a sample with a report would count a 5 s lump of losses against 2 s of sending, one without
    would see none, and 2 % random loss would look like 0 % and 5 % in turn. No report since the
    sample before: no loss measured. RTCP's per-report fraction lost is left out (over the few
    packets of a small video it is mostly noise). The round trip is the sound's (from RTCP:
    aiortc has no ICE round trip), which keeps being measured while video is off; the video's
    when there is no sound. The available bitrate is the encoder's
    (`LeanVp8Encoder.estimate_bps`), not in these stats."""
    covered = lost = 0
    rtt: dict[str, float] = {}
    for s in stats:
        if s.type == "remote-inbound-rtp":
            lost += max(0, s.packetsLost or 0)
            covered += max(0, (s.packetsReceived or 0) + (s.packetsLost or 0))
            if s.roundTripTime is not None:
                rtt[s.kind] = s.roundTripTime
    d_covered, d_lost = covered - before.covered, lost - before.lost
    loss = min(1.0, max(0, d_lost) / d_covered) if d_covered > 0 else 0.0
    return Sample(loss=loss, rtt_s=rtt.get("audio", rtt.get("video"))), Counters(covered, lost)


# ---- the engine ------------------------------------------------------------------------------


def _session_of(sdp: str) -> str | None:
    """The o= session id: the same for every negotiation of one RTCPeerConnection."""
    for line in sdp.splitlines():
        if line.startswith("o="):
            parts = line.split()
            return parts[1] if len(parts) > 1 else None
    return None


def _ice_ufrag_of(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.split(":", 1)[1].strip()
    return None


def ice_configuration(servers: list[dict[str, Any]], policy: str) -> RTCConfiguration:
    """The hub's ICE servers (STUN, TURN with short-lived credentials) and transport policy;
    "relay" keeps every call on TURN, so neither side learns the other's address."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in servers
        ],
        iceTransportPolicy=(
            RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL
        ),
    )


class MediaEngine:
    """Camera, microphone, speaker and the call; every public method is safe from any thread
    and returns at once (except `close`, which waits for everything to stop)."""

    def __init__(
        self,
        *,
        fake: bool = False,
        camera: str = "/dev/video0",
        microphone: str = "default",
        size: tuple[int, int] = (640, 480),
        fps: int = 15,
        speaker: str | None = "default",
        polite: bool = True,
        still: np.ndarray | None = None,
        measure: bool = True,
    ) -> None:
        """`polite`: the kiosk's role, answering the helper's offers; False takes the helper's
        role (tests and benchmarks call a kiosk engine from another engine). `still`: what the
        synthetic camera shows instead of its test pattern (see `SyntheticVideo`). `measure`:
        False leaves the policy to samples given to `step_policy` (tests)."""
        self.polite, self.still = polite, still
        self.fake, self.camera, self.microphone = fake, camera, microphone
        self.size, self.fps, self.speaker = size, fps, speaker
        self.camera_ok = False
        self.rtc_state: RtcState = "idle"
        self.local = LatestFrame()
        self.remote = LatestFrame()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="media", daemon=True)
        self._relay = MediaRelay()
        self._players: list[MediaPlayer] = []
        self._video: MediaStreamTrack | None = None
        self._audio: MediaStreamTrack | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # the call
        self._pc: RTCPeerConnection | None = None
        self._pc_tracks: list[MediaStreamTrack] = []
        self._sinks: list[MediaRecorder | MediaBlackhole] = []
        self._config: RTCConfiguration | None = None
        self._send: SendSignal | None = None
        self._signals: asyncio.Queue[tuple[str, dict[str, Any] | None]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # adapting to the network (see the module docstring)
        self.measure = measure
        self.policy = Policy()
        self.audio_only = False
        self.video_level: Level = "full"  # what is sent now: the policy's, or off by choice
        self.last_sample: Sample | None = None
        self.remote_audio_frames = 0  # the helper's sound frames played (or dropped, when fake)
        self._quality: SendQuality | None = None
        self._counters = Counters()
        self._sending: AdaptiveVideo | None = None
        self._opus: LeanOpusEncoder | None = None
        self._vp8: LeanVp8Encoder | None = None

    # ---- from other threads ------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and open the camera and microphone (the preview starts)."""
        self._thread.start()
        self._call(self._open_devices()).result(timeout=15)

    def start_call(
        self,
        ice_servers: list[dict[str, Any]],
        policy: str,
        send: SendSignal,
        quality: SendQuality | None = None,
    ) -> None:
        """Be ready for the helper's offer; `send(kind, data)` delivers an rtc:signal, and
        `quality(video, reason)` is called (on the media thread) each time the video sent changes
        level. Calling it again (after a reconnect) refreshes the ICE servers and keeps a working
        call."""
        self._quality = quality
        self._call(self._start_call(ice_configuration(ice_servers, policy), send))

    def set_audio_only(self, on: bool) -> None:
        """The student's choice: no video (reason "choice") whatever the network allows, or back
        to the network's level."""
        self._loop.call_soon_threadsafe(self._choose_audio_only, on)

    def video_reason(self) -> Reason:
        """Why the video is at `video_level`: the student's choice or the network."""
        return "choice" if self.audio_only else "network"

    def step_policy(self, sample: Sample) -> None:
        """One more sample for the policy, and its level applied (the engine's own measurements
        come every `SAMPLE_S` unless it was made with measure=False)."""
        self._loop.call_soon_threadsafe(self._step, sample)

    def signal(self, kind: str, data: dict[str, Any] | None) -> None:
        """An rtc:signal from the helper, in the order the hub sent them."""
        self._loop.call_soon_threadsafe(self._enqueue_signal, kind, data)

    def expect_offer(self) -> None:
        """The helper is (back) in the room: if no offer comes soon, ask for one."""
        self._loop.call_soon_threadsafe(self._arm_timer, OFFER_WAIT_S, self._offer_overdue)

    def end_call(self) -> None:
        """Hang up; the camera stays on for the preview."""
        self._call(self._end_call())

    def snapshot_jpeg(self) -> bytes | None:
        frame = self.local.frame()
        return jpeg_of(frame) if frame is not None else None

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close()).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self.local.clear()
        self.remote.clear()
        self.rtc_state = "closed"

    # ---- on the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_devices(self) -> None:
        video, audio = None, None
        if not self.fake and os.path.exists(self.camera):
            try:
                options = {
                    "framerate": str(self.fps),
                    "video_size": f"{self.size[0]}x{self.size[1]}",
                }
                player = MediaPlayer(self.camera, format="v4l2", options=options)
                self._players.append(player)
                video = player.video
            except Exception as exc:
                log.warning("camera %s could not be opened: %s", self.camera, exc)
        if not self.fake:
            try:
                player = MediaPlayer(self.microphone, format="alsa")
                self._players.append(player)
                audio = player.audio
            except Exception as exc:
                log.warning("microphone %s could not be opened: %s", self.microphone, exc)
        self.camera_ok = video is not None or self.fake
        self._video = video or SyntheticVideo(*self.size, fps=self.fps, still=self.still)
        self._audio = audio or SyntheticAudio()
        self._spawn(
            self._keep_latest(self._relay.subscribe(self._video, buffered=False), self.local)
        )

    async def _keep_latest(self, track: MediaStreamTrack, into: LatestFrame) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame):
                    into.put(frame)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("reading %s frames failed", track.kind)
        finally:
            if into is self.local and not self.fake and self._players:
                self.camera_ok = False  # the webcam went away

    async def _start_call(self, config: RTCConfiguration, send: SendSignal) -> None:
        self._config, self._send = config, send
        if self._signals is None:
            self._signals = asyncio.Queue()
            self._spawn(self._handle_signals())
        if self._pc is None:
            self._set_state("connecting")
            if not self.polite:
                await self._make_offer()

    def _enqueue_signal(self, kind: str, data: dict[str, Any] | None) -> None:
        if self._signals is not None:
            self._signals.put_nowait((kind, data))

    async def _handle_signals(self) -> None:
        """One signal at a time, in order: an answer must be set before the next offer."""
        assert self._signals is not None
        while True:
            kind, data = await self._signals.get()
            try:
                if kind == "offer" and data and self.polite:
                    await self._on_offer(data)
                elif kind == "answer" and data and not self.polite:
                    await self._on_answer(data)
                elif kind == "restart" and not self.polite:
                    await self._make_offer()
                elif kind == "candidate" and data:
                    await self._on_candidate(data)
            except Exception:
                log.exception("handling the other side's %s failed", kind)

    async def _on_offer(self, data: dict[str, Any]) -> None:
        if self._config is None or self._send is None:
            return
        sdp = str(data.get("sdp", ""))
        pc = self._pc
        known = pc.remoteDescription if pc is not None else None
        if (
            pc is None
            or known is None
            or _session_of(known.sdp) != _session_of(sdp)
            or _ice_ufrag_of(known.sdp) != _ice_ufrag_of(sdp)
            or pc.connectionState in ("failed", "closed")
        ):
            pc = await self._new_connection()
        self._cancel_timer()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._attach_tracks(pc)
        self._install_encoders(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        if pc is self._pc:
            self._send("answer", {"type": "answer", "sdp": pc.localDescription.sdp})
            self._arm_timer(CONNECT_WATCHDOG_S, self._connect_overdue)

    async def _make_offer(self) -> None:
        """The offering role (the helper's; the kiosk takes it only in tests and benchmarks):
        always a fresh connection, since aiortc cannot restart ICE on one."""
        if self._config is None or self._send is None:
            return
        pc = await self._new_connection()
        self._attach_tracks(pc)
        await pc.setLocalDescription(await pc.createOffer())
        if pc is self._pc:
            self._send("offer", {"type": "offer", "sdp": pc.localDescription.sdp})
            self._arm_timer(CONNECT_WATCHDOG_S, self._connect_overdue)

    async def _on_answer(self, data: dict[str, Any]) -> None:
        pc = self._pc
        if pc is not None and pc.signalingState == "have-local-offer":
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=str(data["sdp"]), type="answer")
            )
            self._install_encoders(pc)

    def _attach_tracks(self, pc: RTCPeerConnection) -> None:
        """Camera and microphone on the connection, through the relay (the preview reads the
        camera too). Video: only the newest picture, so an encoder that falls behind skips
        frames instead of queueing them; audio: every frame, at the pace it is sent."""
        senders = {s.track.kind for s in pc.getSenders() if s.track is not None}
        for source in (self._video, self._audio):
            if source is not None and source.kind not in senders:
                track = self._relay.subscribe(source, buffered=source.kind == "audio")
                if source.kind == "video":
                    track = self._sending = AdaptiveVideo(track, self.video_level)
                self._pc_tracks.append(track)
                pc.addTrack(track)

    def _install_encoders(self, pc: RTCPeerConnection) -> None:
        """Our own Opus and VP8 encoders on the call's senders, once the codec is agreed (after
        the other side's description). aiortc has no public way to choose a sender's encoder:
        it makes one (`aiortc.codecs.get_encoder`) before the first frame unless it has one, so
        it is set before the first frame, in the sender's private slot (`_RTCRtpSender__encoder`)
        and from the transceiver's agreed codecs (`_codecs`, the first is the one sent). Any
        other codec keeps aiortc's encoder (the level still applies to the frames)."""
        for transceiver in pc.getTransceivers():
            sender, codecs = transceiver.sender, transceiver._codecs
            if not codecs or getattr(sender, "_RTCRtpSender__encoder", None) is not None:
                continue
            mime = codecs[0].mimeType.lower()
            encoder: LeanOpusEncoder | LeanVp8Encoder
            if mime == "audio/opus":
                encoder = self._opus = LeanOpusEncoder(quality.AUDIO_KBPS[self.policy.level])
            elif mime == "video/vp8":
                encoder = self._vp8 = LeanVp8Encoder(quality.VIDEO_MAX_KBPS[self.video_level])
                if self.video_level == "full":
                    encoder.probe()  # the call starts: the helper's estimate starts low too
            else:
                continue
            setattr(sender, "_RTCRtpSender__encoder", encoder)  # noqa: B010 (a private slot)

    async def _on_candidate(self, data: dict[str, Any]) -> None:
        pc = self._pc
        line = str(data.get("candidate", ""))
        if pc is None or pc.remoteDescription is None or not line:
            return  # end of candidates, or for a connection that is gone
        candidate = candidate_from_sdp(line.split(":", 1)[1] if ":" in line else line)
        candidate.sdpMid = data.get("sdpMid")
        candidate.sdpMLineIndex = data.get("sdpMLineIndex")
        await pc.addIceCandidate(candidate)

    async def _new_connection(self) -> RTCPeerConnection:
        await self._drop_connection()
        pc = RTCPeerConnection(self._config)
        self._pc = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if pc is not self._pc:
                return
            if track.kind == "video":
                self._spawn(self._keep_latest(track, self.remote))
            else:
                self._spawn(self._play(Counted(track, self._heard)))

        self._counters = Counters()
        self._spawn(self._measure(pc))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is not self._pc:
                return
            state = pc.connectionState
            log.info("call %s", state)
            if state == "connected":
                self._cancel_timer()
                self._set_state("connected")
            elif state == "failed":
                self._set_state("reconnecting")
                self._ask_for_offer()

        self._set_state("connecting")
        return pc

    async def _play(self, track: MediaStreamTrack) -> None:
        """The helper's voice to the speaker (a blackhole with the synthetic devices)."""
        sink: MediaRecorder | MediaBlackhole = MediaBlackhole()
        if not self.fake and self.speaker:
            try:
                sink = MediaRecorder(self.speaker, format="alsa")
            except Exception as exc:
                log.warning("speaker %s could not be opened: %s", self.speaker, exc)
        self._sinks.append(sink)
        sink.addTrack(track)
        await sink.start()

    def _heard(self) -> None:
        self.remote_audio_frames += 1

    # ---- adapting to the network ---------------------------------------------------------------

    async def _measure(self, pc: RTCPeerConnection) -> None:
        """Every SAMPLE_S while `pc` is the call: a sample from its senders' stats, a step of
        the policy."""
        while True:
            await asyncio.sleep(quality.SAMPLE_S)
            if pc is not self._pc:
                return
            if not self.measure or pc.connectionState != "connected":
                continue
            stats: list[Any] = []
            for sender in pc.getSenders():
                stats += list((await sender.getStats()).values())
            if pc is not self._pc:
                return
            sample, self._counters = sample_of(stats, self._counters)
            # The estimate counts only while full video is sent and not while probing (see
            # appliance/quality.py); with audio only chosen the policy may still be at full.
            vp8 = self._vp8
            trusted = vp8 is not None and vp8.trusted and not vp8.probing()
            estimate = vp8.estimate_bps if vp8 is not None and trusted else None
            if estimate is not None and not self.audio_only:
                sample = Sample(sample.loss, sample.rtt_s, estimate / 1000)
            self._step(sample)

    def _step(self, sample: Sample) -> None:
        self.last_sample = sample
        self.policy = quality.step(self.policy, sample)
        self._apply_level()

    def _choose_audio_only(self, on: bool) -> None:
        self.audio_only = on
        self._apply_level()

    def _apply_level(self) -> None:
        """The video and the encoders at the level of the policy and the student's choice; the
        helper is told of each change."""
        network = self.policy.level
        level: Level = "off" if self.audio_only else network
        if self._sending is not None:
            self._sending.level = level
        if self._vp8 is not None:
            if level == "full" and self.video_level != "full":
                self._vp8.probe()
            if level == "off" and not self.audio_only:
                self._vp8.distrust()
            self._vp8.set_max(quality.VIDEO_MAX_KBPS[level] or quality.VIDEO_MIN_KBPS)
        if self._opus is not None:
            self._opus.bitrate_bps = quality.AUDIO_KBPS[network] * 1000
        if level != self.video_level:
            log.info("video %s -> %s (%s)", self.video_level, level, self._why())
            self.video_level = level
            if self._quality is not None:
                self._quality(level, self.video_reason())

    def _why(self) -> str:
        """The reason of a level change for the log, with the sample behind it (no personal
        data: loss, round trip, estimate)."""
        sample = self.last_sample
        if self.audio_only or sample is None:
            return self.video_reason()
        rtt = "?" if sample.rtt_s is None else f"{sample.rtt_s * 1000:.0f} ms"
        kbps = "?" if sample.kbps is None else f"{sample.kbps:.0f} kbit/s"
        return f"network: loss {sample.loss:.0%}, rtt {rtt}, estimate {kbps}"

    async def _drop_connection(self) -> None:
        self._cancel_timer()
        pc, self._pc = self._pc, None
        for sink in self._sinks:
            await sink.stop()
        self._sinks.clear()
        for track in self._pc_tracks:
            track.stop()  # the relay's copies; camera and microphone stay open
        self._pc_tracks.clear()
        self._sending = self._opus = self._vp8 = None
        if pc is not None:
            await pc.close()
        self.remote.clear()

    async def _end_call(self) -> None:
        await self._drop_connection()
        self._config = self._send = self._quality = None
        self.policy, self.audio_only, self.video_level = Policy(), False, "full"
        self._set_state("idle")

    async def _close(self) -> None:
        await self._end_call()
        for track in (self._video, self._audio):
            if track is not None:
                track.stop()  # a MediaPlayer closes its device when its tracks stop
        self._players.clear()
        # What is left: the preview reader, the signal handler and the relay's readers.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _set_state(self, state: RtcState) -> None:
        self.rtc_state = state

    def _ask_for_offer(self) -> None:
        if self._send is None:
            return
        if not self.polite:
            self._spawn(self._make_offer())
            return
        self._send("restart", {})
        self._arm_timer(CONNECT_WATCHDOG_S, self._connect_overdue)

    def _offer_overdue(self) -> None:
        if self._send is not None and (self._pc is None or self._pc.remoteDescription is None):
            self._ask_for_offer()

    def _connect_overdue(self) -> None:
        if self._send is not None and (self._pc is None or self._pc.connectionState != "connected"):
            self._set_state("reconnecting")
            self._ask_for_offer()

    def _arm_timer(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
