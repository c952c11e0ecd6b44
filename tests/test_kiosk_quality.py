"""The kiosk's side of a call that survives a poor network (issue 11): the media engine sends its
video at the level appliance/quality.py chooses (half the resolution at 10 fps, or none while the
sound goes on), measures its own call to choose it, and sends less sound and video than aiortc
would; the room screen tells the helper (`rtc:quality`), says in plain words what the helper's
side reported, and has a big "Kun lyd" toggle. First two real aiortc engines in this process,
then the real kiosk process against a real hub, then (slow) the kiosk in a network namespace in
a call with a helper in Chromium through a shaped link."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from appliance import quality
from appliance.media import MediaEngine
from appliance.quality import Sample
from tests.kiosks import helper_call
from tests.test_kiosk import (
    ask_for_help,
    big_enough_to_touch,
    hub_env,  # noqa: F401 (a fixture)
    start_kiosk,  # noqa: F401 (a fixture)
)
from tests.test_matching import on_duty

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
    assert quality.LOW_FPS * 0.7 < low.fps <= quality.LOW_FPS * 1.1, low
    assert low.audio_per_s > 40, low

    for sample in (BAD, BAD):
        kiosk.step_policy(sample)
    time.sleep(1)
    off = receive(helper)
    assert off.fps == 0 and off.audio_per_s > 40, off

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
    assert chosen.fps == 0 and chosen.audio_per_s > 40, chosen
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


def test_the_kiosk_measures_its_call_and_stays_full_on_a_clean_link():
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
        assert sample.loss < 0.02 and sample.rtt_s < 0.2 and sample.kbps > 150, sample
        assert kiosk.video_level == "full" and kiosk.policy.level == "full"
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
        assert off.fps == 0 and off.audio_per_s > 40, off
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
