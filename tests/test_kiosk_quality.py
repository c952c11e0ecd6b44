"""The kiosk's side of a call that survives a poor network (issue 11): the media engine sends its
video at the level appliance/quality.py chooses (half the resolution at 10 fps, or none while the
sound goes on), measures its own call to choose it, and sends less sound and video than aiortc
would; the room screen tells the helper (`rtc:quality`), says in plain words what the helper's
side reported, and has a big "Kun lyd" toggle. First two real aiortc engines in this process,
then the real kiosk process against a real hub, then (slow) the kiosk in a network namespace in
a call with a helper in Chromium through a shaped link."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from appliance import quality
from appliance.media import MediaEngine
from appliance.quality import Sample
from tests.kiosks import helper_call
from tests.test_browser import log_in
from tests.test_kiosk import (
    ask_for_help,
    big_enough_to_touch,
    hub_env,  # noqa: F401 (a fixture)
    start_kiosk,  # noqa: F401 (a fixture)
)
from tests.test_kiosk_browser import meet
from tests.test_kiosk_network import (
    WATCH_CALLS,
    helper_browser,  # noqa: F401 (a fixture)
    hub_on_the_link,  # noqa: F401 (a fixture)
    kiosk_in_namespace,  # noqa: F401 (a fixture)
    kiosk_network,  # noqa: F401 (a fixture)
)
from tests.test_matching import on_duty
from tests.test_poor_network import HOLD_S, PROFILES, RECOVER_S, shape
from tests.test_room_browser import (
    DESKTOP,
    MEDIA,
    chromium,  # noqa: F401 (a fixture)
    expect_video_from_the_other_side,
)

pytestmark = pytest.mark.kiosk

SIZE, FPS = (320, 240), 20
WEAK = Sample(loss=0.02, rtt_s=0.05, kbps=256)  # poor: full -> low after two
BAD = Sample(loss=0.12, rtt_s=0.05, kbps=64)  # bad: -> off after two


def wait_until(done: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@dataclass
class Received:
    """What one side received from the other over `seconds`: video frames per second, the size
    of the newest frame, and sound frames per second (20 ms each: 50 a second)."""

    fps: float
    size: tuple[int, int] | None
    audio_per_s: float


def receive(engine: MediaEngine, seconds: float = 3.0) -> Received:
    frames, audio = engine.remote.received, engine.remote_audio_frames
    time.sleep(seconds)
    frame = engine.remote.frame()
    return Received(
        (engine.remote.received - frames) / seconds,
        (frame.width, frame.height) if frame is not None else None,
        (engine.remote_audio_frames - audio) / seconds,
    )


@pytest.fixture
def call() -> Iterator[tuple[MediaEngine, MediaEngine, list[tuple[str, str]]]]:
    """A kiosk engine (synthetic camera, 320×240 at 20 fps) in a call with a helper-side engine,
    the signals passed straight between them; and the levels the kiosk reported."""
    kiosk = MediaEngine(fake=True, size=SIZE, fps=FPS, measure=False)
    helper = MediaEngine(fake=True, size=SIZE, fps=15, polite=False)
    reported: list[tuple[str, str]] = []
    kiosk.start()
    helper.start()
    try:
        kiosk.start_call([], "all", helper.signal, lambda v, r: reported.append((v, r)))
        helper.start_call([], "all", kiosk.signal)
        wait_until(lambda: helper.remote.received >= 10, what="the kiosk's video at the helper")
        yield kiosk, helper, reported
    finally:
        kiosk.close()
        helper.close()


def test_low_halves_the_video_off_stops_it_while_the_sound_goes_on_and_back(call):
    kiosk, helper, reported = call
    full = receive(helper)
    assert full.size == SIZE and full.fps > FPS * 0.8 and full.audio_per_s > 40, full

    for sample in (WEAK, WEAK):
        kiosk.step_policy(sample)
    time.sleep(1)  # the frames under way
    low = receive(helper)
    assert low.size == (SIZE[0] // 2, SIZE[1] // 2), low
    assert 3 < low.fps <= quality.LOW_FPS * 1.1 and low.fps < full.fps * 0.75, (full, low)
    assert low.audio_per_s > 40, low

    for sample in (BAD, BAD):
        kiosk.step_policy(sample)
    time.sleep(1)
    off = receive(helper)
    assert off.fps < 1 and off.audio_per_s > 40, off  # at most a frame under way

    for _ in range(quality.UP_AFTER):  # off -> low after good samples
        kiosk.step_policy(Sample(rtt_s=0.02))
    for _ in range(quality.UP_AFTER):  # low -> full
        kiosk.step_policy(Sample(rtt_s=0.02, kbps=2000))
    time.sleep(1)
    back = receive(helper)
    assert back.size == SIZE and back.fps > FPS * 0.8 and back.audio_per_s > 40, back
    levels = ["low", "off", "low", "full"]
    assert reported == [(level, "network") for level in levels]


def test_audio_only_by_choice_and_the_encoders_bitrates_follow_the_level(call):
    kiosk, helper, reported = call
    # aiortc's own encoders would send Opus at 96 kbit/s and VP8 at 250 kbit/s or more.
    opus, vp8 = kiosk._opus, kiosk._vp8
    assert opus is not None and vp8 is not None
    assert opus.codec.bit_rate == quality.AUDIO_KBPS["full"] * 1000
    kiosk.set_audio_only(True)
    time.sleep(1)
    chosen = receive(helper)
    assert chosen.fps < 1 and chosen.audio_per_s > 40, chosen
    assert reported == [("off", "choice")]
    kiosk.set_audio_only(False)
    time.sleep(1)
    assert receive(helper).fps > FPS * 0.8
    assert reported == [("off", "choice"), ("full", "network")]

    for sample in (WEAK, WEAK, BAD, BAD):
        kiosk.step_policy(sample)
    time.sleep(1)
    assert receive(helper, 2).audio_per_s > 40  # a new Opus context, the sound goes on
    assert opus.codec.bit_rate == quality.AUDIO_KBPS["off"] * 1000 < 96000
    vp8.target_bitrate = 200_000  # the helper's estimate (REMB), as aiortc hands it over
    kiosk.step_policy(Sample())  # still off: one good sample changes nothing
    time.sleep(0.2)
    assert vp8.estimate_bps == 200_000 and vp8.target_bitrate == quality.VIDEO_MIN_KBPS * 1000


def test_the_kiosk_measures_loss_round_trip_and_the_helpers_estimate_of_its_own_call():
    kiosk = MediaEngine(fake=True, size=SIZE, fps=FPS)
    helper = MediaEngine(fake=True, size=SIZE, fps=15, polite=False)
    kiosk.start()
    helper.start()
    try:
        kiosk.start_call([], "all", helper.signal)
        helper.start_call([], "all", kiosk.signal)
        wait_until(lambda: kiosk.last_sample is not None, what="a first sample")
        wait_until(
            lambda: (
                kiosk.last_sample is not None
                and kiosk.last_sample.rtt_s is not None
                and kiosk.last_sample.kbps is not None
            ),
            timeout=15,
            what="round trip and the helper's estimate measured",
        )
        sample = kiosk.last_sample
        assert sample is not None and sample.rtt_s is not None and sample.kbps is not None
        # in this process, no link between: nothing lost, the round trip of a busy machine
        assert sample.loss < 0.02 and sample.rtt_s < 1.0 and sample.kbps > 50, sample
    finally:
        kiosk.close()
        helper.close()


# ---- the kiosk process against a real hub -------------------------------------------------

POOR_DA = "Dårlig forbindelse — vi har slået video fra, så I stadig kan høre hinanden"
WEAK_DA = "Svag forbindelse — vi har sænket billedkvaliteten, så samtalen kan fortsætte"


def test_the_room_screen_says_what_the_helpers_side_reports_and_audio_only_tells_the_helper(
    hub,
    start_kiosk,  # noqa: F811
):
    kiosk = start_kiosk()
    d = kiosk.driver
    d.wait_for("start")
    helper = hub.client("helper1")
    on_duty(helper)
    ask_for_help(d, nickname="Ali", note="opgave 3")
    offer = helper.wait_for("offer", timeout=15)
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    d.wait_screen("room")
    joined = helper.ok("room:join", {"room_id": room_id})
    engine = helper_call(helper, joined, room_id, (320, 240))
    try:
        d.wait_for("video.remote", timeout=30, live=True)
        wait_until(lambda: engine.remote.received > 10, what="the kiosk's video at the helper")
        toggle = d.wait_for("audio_only", text="Kun lyd", selected=False)
        big_enough_to_touch(d)
        assert d.wait_for("status")["text"] == ""

        # What the helper's page reports, in plain words on the kiosk.
        def helper_reports(video: str, reason: str) -> None:
            helper.ok("rtc:quality", {"room_id": room_id, "video": video, "reason": reason})

        helper_reports("low", "network")
        d.wait_for("status", text=WEAK_DA)
        helper_reports("off", "network")
        d.wait_for("status", text=POOR_DA)
        helper_reports("off", "choice")
        d.wait_for("status", text="Hjælper 1 har valgt kun lyd.")
        helper_reports("full", "network")
        d.wait_for("status", text="")

        # The student taps "Kun lyd": the kiosk sends no video, the helper is told, sound goes on.
        d.tap("audio_only")
        assert helper.wait_for("rtc:quality", timeout=10) == {
            "room_id": room_id,
            "video": "off",
            "reason": "choice",
            "from": "student",
        }
        d.wait_for("audio_only", selected=True)
        time.sleep(1)
        off = receive(engine)
        assert off.fps < 1 and off.audio_per_s > 40, off  # at most a frame under way
        assert d.wait_for("status")["text"] == ""  # the student's own choice needs no notice

        d.tap("audio_only")
        assert helper.wait_for("rtc:quality", timeout=10) == {
            "room_id": room_id,
            "video": "full",
            "reason": "network",
            "from": "student",
        }
        d.wait_for("audio_only", selected=False)
        wait_until(lambda: receive(engine, 1).fps > 5, what="the kiosk's video again")
        assert toggle["rect"][2] >= 64 and toggle["rect"][3] >= 64
    finally:
        engine.close()


# ---- the kiosk through a shaped link, in a call with a helper in Chromium --------------------
#
# The kiosk process in the network namespace of tests/test_kiosk_network.py, the hub and the
# helper's Chromium on the host; the link shaped as in tests/test_poor_network.py (`shape`: tc's
# token bucket both ways and 2 % loss by nftables; this kernel has no sch_netem, so no delay).
# What the helper's page receives of the kiosk is read from Chromium's own stats every 0.25 s;
# the kiosk's level from its log ("video full -> low (network: …)").

# What the helper's page receives from the kiosk: audio packets, video frames decoded, the size
# of the last one.
RECEIVED = """async () => {
  const call = window.lcCalls[window.lcCalls.length - 1];
  const out = { audio: 0, frames: 0, width: 0, height: 0 };
  if (!call) return out;
  (await call.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") out.audio += r.packetsReceived || 0;
    if (r.type === "inbound-rtp" && r.kind === "video") {
      out.frames += r.framesDecoded || 0;
      out.width = r.frameWidth || out.width;
      out.height = r.frameHeight || out.height;
    }
  });
  return out;
}"""
# The helper's own video sender at full: active, not scaled down (rtc.js's applyVideoLevel).
HELPER_SENDS_FULL = """() => {
  const call = window.lcCalls[window.lcCalls.length - 1];
  if (!call) return false;
  const t = call.pc.getTransceivers().find((t) => t.receiver.track.kind === "video");
  const encodings = (t && t.sender.getParameters().encodings) || [];
  const full = (e) => e.active && (e.scaleResolutionDownBy || 1) === 1;
  return encodings.length > 0 && encodings.every(full);
}"""
LEVEL_LINE = re.compile(r"appliance\.media: video (\w+) -> (\w+) \((\w+)(?:: ([^)]*))?\)")


@dataclass
class Seen:
    """One profile seen from the helper's page: the kiosk's video fps and sizes, audio packets a
    second and the longest stretch without any; and the kiosk's levels (its log)."""

    seconds: float = 0.0
    frames: int = 0
    audio: int = 0
    longest_gap_s: float = 0.0
    sizes: list[tuple[int, int]] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def audio_per_s(self) -> float:
        return self.audio / self.seconds if self.seconds else 0.0

    def line(self, name: str) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in self.sizes) or "none"
        return (
            f"{name}: {self.seconds:.0f} s, kiosk video {self.fps:.1f} fps ({sizes}), audio "
            f"{self.audio_per_s:.0f} packets/s, longest gap {self.longest_gap_s:.1f} s, kiosk "
            f"levels {' -> '.join(self.levels)} [{'; '.join(self.why)}]"
        )


def kiosk_levels(log: Path, since: int) -> tuple[list[tuple[str, str]], int]:
    """The kiosk's level changes logged after offset `since`: (level, why), and the new offset."""
    text = log.read_text(errors="replace")
    found = [(m[2], f"{m[1]}->{m[2]} {m[4] or m[3]}") for m in LEVEL_LINE.finditer(text, since)]
    return found, len(text)


def watch_kiosk(
    helper: Page, log: Path, seconds: float, level: str, until: str | None = None
) -> tuple[Seen, str]:
    """What the helper receives over `seconds` (or until the kiosk's level is `until`), starting
    at the kiosk's `level`; returns the figures and the level at the end."""
    seen = Seen(levels=[level])
    _, offset = kiosk_levels(log, 0)
    started = last_audio_at = time.monotonic()
    last = helper.evaluate(RECEIVED)
    while time.monotonic() - started < seconds and level != until:
        time.sleep(0.25)
        now = helper.evaluate(RECEIVED)
        at = time.monotonic()
        # a new RTCPeerConnection (the helper's page restarted the call) counts from 0
        seen.audio += (
            now["audio"] - last["audio"] if now["audio"] >= last["audio"] else now["audio"]
        )
        frames = (
            now["frames"] - last["frames"] if now["frames"] >= last["frames"] else now["frames"]
        )
        seen.frames += frames
        if now["audio"] != last["audio"]:
            last_audio_at = at
        seen.longest_gap_s = max(seen.longest_gap_s, at - last_audio_at)
        size = (now["width"], now["height"])
        if frames and (not seen.sizes or seen.sizes[-1] != size):
            seen.sizes.append(size)
        last = now
        changes, offset = kiosk_levels(log, offset)
        for level, why in changes:
            seen.levels.append(level)
            seen.why.append(why)
    seen.seconds = time.monotonic() - started
    return seen, level


@pytest.mark.slow
@pytest.mark.browser
def test_the_kiosk_through_a_poor_network_keeps_its_sound_lowers_its_video_and_gets_it_back(
    hub_on_the_link,  # noqa: F811
    kiosk_network,  # noqa: F811
    kiosk_in_namespace,  # noqa: F811
    helper_browser,  # noqa: F811
):
    if subprocess.run(["nft", "--version"], capture_output=True).returncode != 0:
        pytest.skip("nft is missing (scripts/ensure-test-tools installs nftables)")
    hub = hub_on_the_link
    _process, d, log = kiosk_in_namespace
    helper = log_in(helper_browser, hub, "helper1", WATCH_CALLS, **DESKTOP, **MEDIA)
    meet(d, helper)
    expect_video_from_the_other_side(helper)
    wait_until(lambda: helper.evaluate(RECEIVED)["frames"] > 30, 30, "the kiosk's video")
    seen: dict[str, Seen] = {}
    try:
        seen["clean before"], level = watch_kiosk(helper, log, 8, "full")
        for name in ("weak", "bad"):
            shape(kiosk_network, *PROFILES[name])
            seen[name], level = watch_kiosk(helper, log, HOLD_S, level)
        shape(kiosk_network, *PROFILES["clean"])
        seen["clean"], level = watch_kiosk(helper, log, RECOVER_S, level, until="full")
        seen["full again"], level = watch_kiosk(helper, log, 10, level)
    finally:
        shape(kiosk_network, None, 0)
        for name, figures in seen.items():
            print(figures.line(name))
        for line in log.read_text(errors="replace").splitlines():
            if "appliance.media" in line or "connection state" in line.lower():
                print("kiosk:", line[-160:])
    before = seen["clean before"]
    assert before.fps > 5 and before.sizes == [(640, 480)] and before.levels == ["full"], before
    # Sound keeps flowing through both poor profiles (Opus sends 50 packets a second).
    for name in ("weak", "bad"):
        assert seen[name].audio_per_s > 25 and seen[name].longest_gap_s < 2.0, seen[name]
    # The kiosk's video goes down on the weak link, off on the bad one, and the helper is told.
    assert {"low", "off"} & set(seen["weak"].levels[1:]), seen["weak"]
    assert "off" in seen["bad"].levels and seen["bad"].fps < 5, seen["bad"]
    # Back at full on the clean link, and the helper's notice about the kiosk's video is gone.
    assert seen["clean"].levels[-1] == "full", seen["clean"]
    assert seen["full again"].fps > 5 and seen["full again"].sizes[-1] == (640, 480)
    # The helper's notice shows the worse of both sides' videos: once the helper's own video is
    # back at full too (its own policy, which waits longer after several offs), no notice.
    helper.wait_for_function(HELPER_SENDS_FULL, timeout=90_000, polling=500)
    expect(helper.get_by_test_id("quality-notice")).to_be_hidden(timeout=10_000)
