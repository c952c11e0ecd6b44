"""A call that survives a poor network (issue 11): the video policy (appliance/quality.py, and its
browser copy in rtc.js, which must decide alike), the `rtc:quality` room event that tells the
other side, the room page's audio-only toggle and plain-words notice, and a real call between
two Chromiums (the student's inside a network namespace) through a shaped link. The kiosk adapts
with the same policy (appliance/media.py: video at half size and 10 fps or none, and Opus and VP8
at bitrates a 64 kbit/s link carries); its side, and the kiosk in a call with a helper's Chromium
through this shaped link, are tested in tests/test_kiosk_quality.py."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from appliance.quality import LEVELS, Policy, Sample, health, step
from tests.conftest import RunningHub
from tests.test_kiosk_network import (
    WATCH_CALLS,
    KioskNetwork,
    helper_browser,  # noqa: F401 (a fixture)
    hub_on_the_link,  # noqa: F401 (a fixture)
    kiosk_network,  # noqa: F401 (a fixture)
    link_chromium,
)
from tests.test_room_browser import (
    SLOW,
    chromium,  # noqa: F401 (a fixture)
    expect_video_from_the_other_side,
    media_browser,  # noqa: F401 (a fixture)
    meet,
)
from tests.test_rooms import matched

CLEAN = Sample(loss=0.0, rtt_s=0.02, kbps=2000)
WEAK = Sample(loss=0.02, rtt_s=0.2, kbps=256)  # the 256 kbit/s profile
BAD = Sample(loss=0.02, rtt_s=0.2, kbps=64)  # the 64 kbit/s profile


def run(samples: list[Sample], policy: Policy | None = None) -> list[str]:
    policy = policy or Policy()
    levels: list[str] = []
    for sample in samples:
        policy = step(policy, sample)
        levels.append(policy.level)
    return levels


def test_health_of_a_sample():
    assert health(CLEAN) == "good"
    assert health(Sample()) == "good"  # nothing measured yet
    assert health(WEAK) == "poor"
    assert health(BAD) == "bad"
    assert health(Sample(loss=0.12)) == "bad"
    assert health(Sample(rtt_s=0.4)) == "poor"


def test_video_steps_down_on_a_weak_network_goes_off_on_a_bad_one_and_comes_back_slowly():
    assert run([WEAK] * 4) == ["full", "low", "low", "low"]
    assert run([WEAK] * 2 + [Sample(loss=0.12)] * 2) == ["full", "low", "low", "off"]
    assert run([BAD] * 2) == ["full", "off"]
    back = run([CLEAN] * 10, Policy("off"))
    assert back == ["off"] * 4 + ["low"] + ["low"] * 4 + ["full"]


def test_one_bad_sample_among_good_ones_changes_nothing():
    assert set(run([CLEAN, BAD, CLEAN, WEAK, CLEAN] * 3)) == {"full"}
    # and a flicker while recovering starts the wait for good samples again
    assert run([CLEAN] * 4 + [Sample(loss=0.05)] + [CLEAN] * 4, Policy("off")) == ["off"] * 9


def test_below_full_video_the_low_estimate_of_a_small_stream_does_not_keep_it_down():
    assert run([Sample(kbps=64)] * 5, Policy("off")) == ["off"] * 4 + ["low"]
    assert run([Sample(kbps=64)] * 5, Policy("low")) == ["low"] * 4 + ["full"]
    assert run([Sample(kbps=64, loss=0.12)] * 2, Policy("low")) == ["low", "off"]


def test_each_time_video_has_to_go_off_again_it_waits_longer_before_trying():
    lossy = Sample(loss=0.12)  # the small video is too much for the link too
    tries = run([BAD] * 2 + [CLEAN] * 5 + [lossy] * 2 + [CLEAN] * 10)
    assert tries[:7] == ["full", "off", "off", "off", "off", "off", "low"]
    assert tries[8:] == ["off"] * 10 + ["low"]  # the second time 10 good samples, not 5
    assert run([CLEAN] * 20, Policy("off", offs=3))[-1] == "low"
    assert set(run([CLEAN] * 19, Policy("off", offs=3))) == {"off"}


def stays(levels: list[str], level: str) -> list[int]:
    """How many samples in a row each stay at `level` lasted."""
    runs = [0]
    for now, before in zip(levels, ["full", *levels[:-1]], strict=True):
        if now == level:
            runs[-1] += 1
        elif before == level:
            runs.append(0)
    return [r for r in runs if r]


def test_a_link_that_carries_low_video_but_not_full_tries_full_less_and_less_often():
    # At low the weak link looks good (the estimate counts only at full): each try at full
    # fails, and the wait before the next try doubles, up to 20 samples (40 s).
    assert stays(run([WEAK] * 120), "low")[:5] == [5, 10, 20, 20, 20]
    # Once full has held for 15 good samples, earlier drops are forgotten.
    settled = [WEAK] * 2 + [CLEAN] * 5 + [WEAK] * 2 + [CLEAN] * 10
    assert stays(run(settled + [CLEAN] * 15 + [WEAK] * 2 + [CLEAN] * 5), "low")[-1] == 5
    assert stays(run(settled + [CLEAN] * 14 + [WEAK] * 2 + [CLEAN] * 20), "low")[-1] == 20
    # Full's failures on the weak link do not slow the step from off to low after a bad spell.
    lossy = Sample(loss=0.12)
    weak_then_bad = [WEAK] * 2 + [CLEAN] * 5 + [WEAK] * 2 + [lossy] * 2 + [CLEAN] * 40
    assert stays(run(weak_then_bad), "off") == [5] and stays(run(weak_then_bad), "low")[-1] == 10


SEQUENCES = {
    "weak link, full too much": [WEAK] * 90,
    "held full": [WEAK] * 2 + [CLEAN] * 20 + [WEAK] * 2 + [CLEAN] * 6,
    "weak then lossy": [WEAK] * 2
    + [CLEAN] * 5
    + [WEAK] * 2
    + [Sample(loss=0.12)] * 2
    + [CLEAN] * 40,
    "weak": [WEAK] * 4,
    "bad": [BAD] * 3,
    "flicker": [CLEAN, BAD, CLEAN, WEAK, CLEAN] * 3,
    "recover": [BAD] * 2 + [CLEAN] * 12,
    "backoff": ([Sample(loss=0.12)] * 2 + [CLEAN] * 5) * 3 + [CLEAN] * 25,
    "estimate below full": [BAD] * 2 + [Sample(kbps=64)] * 12,
    "unmeasured": [Sample(loss=0.05), Sample(), Sample(loss=0.05), Sample(loss=0.05)],
}
JS_POLICY = """async (sequences) => {
  const { nextVideoLevel } = await import("/static/js/rtc.js");
  const out = {};
  for (const [name, samples] of Object.entries(sequences)) {
    let policy = { level: "full", run: "good", count: 0, offs: 0, falls: 0 };
    out[name] = samples.map((s) => (policy = nextVideoLevel(policy, s)).level);
  }
  return out;
}"""


def test_the_browser_policy_decides_as_the_kiosk_policy(media_browser, hub):  # noqa: F811
    page = media_browser.new_page(base_url=hub.url)
    page.goto("/login")
    samples = {
        name: [{"loss": s.loss, "rttS": s.rtt_s, "kbps": s.kbps} for s in seq]
        for name, seq in SEQUENCES.items()
    }
    browser = page.evaluate(JS_POLICY, json.loads(json.dumps(samples)))
    assert browser == {name: run(seq) for name, seq in SEQUENCES.items()}
    assert set(LEVELS) >= {level for levels in browser.values() for level in levels}


def test_rtc_quality_reaches_the_other_member_only(hub):
    student, helper, room_id = matched(hub)
    helper.ok("rtc:quality", {"room_id": room_id, "video": "off", "reason": "network"})
    assert student.wait_for("rtc:quality") == {
        "room_id": room_id,
        "video": "off",
        "reason": "network",
        "from": "helper",
    }
    helper.nothing("rtc:quality")
    outsider = hub.client("student2")
    low = {"room_id": room_id, "video": "low", "reason": "network"}
    refused = outsider.call("rtc:quality", low)
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    wrong = student.call("rtc:quality", {**low, "video": "tiny"})
    assert wrong["ok"] is False and wrong["error"]["code"] == "invalid"
    helper.nothing("rtc:quality")


SENDING_VIDEO = """() => {
  const pc = window.lcCalls[window.lcCalls.length - 1].pc;
  const t = pc.getTransceivers().find((t) => t.receiver.track.kind === "video");
  return t.sender.getParameters().encodings.every((e) => e.active);
}"""
KEEP_CALLS = """(() => {
  const Native = window.RTCPeerConnection;
  window.lcCalls = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.lcCalls.push({ pc: this }); }
  };
})();"""


REMOTE_PLAYING = """() => {
  const v = document.querySelector('[data-testid="remote-video"]');
  return Boolean(v.srcObject) && !v.paused;
}"""


def expect_audio_only_card(page: Page, reason: str) -> None:
    """The page shows the other person's card, not their video (which plays on: the sound)."""
    card = page.get_by_test_id("remote-video-off")
    expect(card).to_be_visible()
    expect(card).to_contain_text("Kun lyd")
    expect(page.get_by_test_id("remote-video-off-reason")).to_contain_text(reason)
    expect(page.get_by_test_id("remote-video")).to_be_hidden()
    page.wait_for_function(REMOTE_PLAYING, timeout=SLOW)


def expect_video_back(page: Page) -> None:
    expect(page.get_by_test_id("remote-video-off")).to_be_hidden()
    expect(page.get_by_test_id("remote-video")).to_be_visible()
    expect_video_from_the_other_side(page)


def test_a_student_chooses_audio_only_and_the_helper_is_told(media_browser, hub):  # noqa: F811
    student, helper = meet(media_browser, media_browser, hub)
    student.context.add_init_script(KEEP_CALLS)
    student.reload()
    expect_video_from_the_other_side(student)
    expect_video_from_the_other_side(helper)
    assert student.evaluate(SENDING_VIDEO)
    toggle = student.get_by_test_id("audio-only-toggle")
    expect(toggle).to_have_text("Kun lyd")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    student.wait_for_function(f"() => !({SENDING_VIDEO})()", timeout=10_000)
    expect(helper.get_by_test_id("quality-notice")).to_contain_text("har valgt kun lyd")
    # Not the student's last frame, frozen: their name and "Kun lyd" instead.
    expect_audio_only_card(helper, "har valgt kun lyd")
    name = helper.get_by_test_id("remote-video-off-name").inner_text()
    assert name and name in (helper.get_by_test_id("remote-video-note").text_content() or "")
    # A fresh helper page is told again (it would start out showing the frozen frame).
    helper.reload()
    expect(helper.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect_audio_only_card(helper, "har valgt kun lyd")
    toggle.click()
    student.wait_for_function(SENDING_VIDEO, timeout=10_000)
    expect(helper.get_by_test_id("quality-notice")).to_be_hidden()
    expect_video_back(helper)


def test_a_helper_who_chooses_audio_only_shows_the_student_a_card_not_a_frozen_frame(
    media_browser,  # noqa: F811
    hub,
):
    student, helper = meet(media_browser, media_browser, hub)
    expect_video_from_the_other_side(student)
    toggle = helper.get_by_test_id("audio-only-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect_audio_only_card(student, "har valgt kun lyd")
    toggle.click()
    expect_video_back(student)


# ---- A real call through a shaped link ------------------------------------------------------
#
# The student's Chromium runs inside the network namespace of tests/test_kiosk_network.py, the
# helper's Chromium and the hub on the host; every packet between them crosses the veth pair.
# Rate: tc's token bucket (tbf) on both ends of the pair, so both directions are limited. Loss:
# nftables in the namespace drops 2 % of the packets going in and 2 % of those going out
# (`numgen random mod 100 < 2`). Delay: this machine's kernel has no sch_netem, and no other
# kernel tool here delays packets, so the profiles have no added round trip (the 200 ms of the
# issue's first profile is left out; the policy's round-trip thresholds are covered above).

PROFILES: dict[str, tuple[int | None, int]] = {"weak": (256, 2), "bad": (64, 2), "clean": (None, 0)}
HOLD_S = 30.0  # each poor profile this long
RECOVER_S = 90.0  # video must be back this soon after the link is clean
LOSS_TABLE = "lcpoornet"


def quietly(*command: str) -> None:
    """A command that may fail because there is nothing to undo."""
    subprocess.run(command, capture_output=True)


def shape(net: KioskNetwork, kbit: int | None, loss: int) -> None:
    """Both directions of the link at `kbit` kbit/s (None: unlimited), `loss` % dropped."""
    for prefix, link in (([], net.host_link), (net.inside(), net.kiosk_link)):
        if kbit is None:
            quietly(*prefix, "tc", "qdisc", "del", "dev", link, "root")
        else:
            rate = ["tbf", "rate", f"{kbit}kbit", "burst", "4kb", "latency", "300ms"]
            net.run(*prefix, "tc", "qdisc", "replace", "dev", link, "root", *rate)
    quietly(*net.inside("nft", "delete", "table", "inet", LOSS_TABLE))
    if loss:
        drop = f"numgen random mod 100 < {loss} drop"
        rules = (
            f"table inet {LOSS_TABLE} {{\n"
            f"  chain in {{ type filter hook input priority 0; {drop}; }}\n"
            f"  chain out {{ type filter hook output priority 0; {drop}; }}\n}}\n"
        )
        done = subprocess.run(
            net.inside("nft", "-f", "-"), input=rules, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def nft_missing() -> bool:
    return subprocess.run(["nft", "--version"], capture_output=True).returncode != 0


@contextmanager
def student_chromium_in(
    playwright: Playwright, hub_url: str, net: KioskNetwork, scratch: Path
) -> Iterator[Browser]:
    """The student's Chromium (fake camera and microphone) inside the namespace, so all its
    traffic crosses the shaped link; the link is clean again afterwards. `scratch`: a directory
    for the wrapper script that starts Chromium there."""
    inside = scratch / "chromium-in-namespace"
    inside.write_text(f'#!/bin/sh\nexec {" ".join(net.inside("/usr/bin/chromium"))} "$@"\n')
    inside.chmod(0o755)
    try:
        with link_chromium(playwright, hub_url, executable=str(inside)) as browser:
            yield browser
    finally:
        shape(net, None, 0)


@pytest.fixture
def student_in_namespace(
    chromium: Playwright,  # noqa: F811
    hub_on_the_link: RunningHub,  # noqa: F811
    kiosk_network: KioskNetwork,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Browser]:
    if nft_missing():
        pytest.skip("nft is missing (scripts/ensure-test-tools installs nftables)")
    with student_chromium_in(chromium, hub_on_the_link.url, kiosk_network, tmp_path) as browser:
        yield browser


# In a page, after WATCH_CALLS: every 50 ms what its latest call receives and sends, kept in
# window.lcSamples. `t` is the epoch time in ms (performance.timeOrigin + now(): one clock for
# both pages and this process); audio: packets received; concealed / played: samples the
# receiver's jitter buffer made up / played in all (NetEq); frames: video frames decoded; sending:
# our own video sender's level from its parameters ("full", "low", "off"); notice: the quality
# notice's data-level ("" when there is none).
SAMPLER = """(() => {
  window.lcSamples = [];
  const kindOf = (t) => t.receiver.track.kind;
  const levelOf = (pc) => {
    const t = pc.getTransceivers().find((t) => kindOf(t) === "video");
    const encodings = (t && t.sender.getParameters().encodings) || [];
    if (encodings.length && encodings.every((e) => !e.active)) return "off";
    return encodings.some((e) => (e.scaleResolutionDownBy || 1) > 1) ? "low" : "full";
  };
  let busy = false;
  setInterval(async () => {
    const calls = window.lcCalls || [];
    const call = calls[calls.length - 1];
    if (!call || busy || call.pc.connectionState === "closed") return;
    busy = true;
    try {
      const s = { audio: 0, concealed: 0, played: 0, frames: 0 };
      for (const t of call.pc.getTransceivers()) {
        (await t.receiver.getStats()).forEach((r) => {
          if (r.type !== "inbound-rtp") return;
          if (r.kind === "audio") {
            s.audio += r.packetsReceived || 0;
            s.concealed += r.concealedSamples || 0;
            s.played += r.totalSamplesReceived || 0;
          } else if (r.kind === "video") s.frames += r.framesDecoded || 0;
        });
      }
      s.t = performance.timeOrigin + performance.now();
      s.sending = levelOf(call.pc);
      const notice = document.querySelector('[data-testid="quality-notice"]');
      s.notice = (notice && !notice.hidden && notice.dataset.level) || "";
      window.lcSamples.push(s);
    } catch (err) {
      // the call closed meanwhile
    } finally {
      busy = false;
    }
  }, 50);
})();"""
SAMPLES_SINCE = "(from) => window.lcSamples.slice(from)"
SAMPLE_COUNT = "() => window.lcSamples.length"
GAP_S = 0.2  # a stretch without audio packets longer than this is counted as a gap


def grown(before: dict[str, Any], after: dict[str, Any], key: str) -> int:
    """How much a counter grew between two samples (a new RTCPeerConnection starts it at 0)."""
    now, was = int(after[key]), int(before[key])
    return now - was if now >= was else now


@dataclass
class Figures:
    """One stretch of a call, seen by one page from its samples (SAMPLER): what it received of
    the other side (video fps, audio packets and their gaps, how much of the sound was real),
    its own video level and its quality notice."""

    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.samples[-1]["t"] - self.samples[0]["t"]) / 1000 if self.samples else 0.0

    def total(self, key: str) -> int:
        return sum(grown(a, b, key) for a, b in pairwise(self.samples))

    @property
    def frames(self) -> int:
        return self.total("frames")

    @property
    def audio(self) -> int:
        return self.total("audio")

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def audio_per_s(self) -> float:
        return self.audio / self.seconds if self.seconds else 0.0

    def fps_by_window(self, window_s: float = 1.0) -> list[tuple[float, float]]:
        """(epoch seconds at its end, video fps) of each whole `window_s` of the stretch."""
        out: list[tuple[float, float]] = []
        if not self.samples:
            return out
        start, frames = self.samples[0], 0
        for before, after in pairwise(self.samples):
            frames += grown(before, after, "frames")
            if (after["t"] - start["t"]) / 1000 >= window_s:
                out.append((after["t"] / 1000, frames / ((after["t"] - start["t"]) / 1000)))
                start, frames = after, 0
        return out

    def fps_windows(self, window_s: float = 1.0) -> list[float]:
        """Video fps in each whole `window_s` of the stretch."""
        return [fps for _, fps in self.fps_by_window(window_s)]

    @property
    def median_fps(self) -> float:
        windows = self.fps_windows()
        return statistics.median(windows) if windows else 0.0

    def audio_gaps_s(self) -> list[float]:
        """Every stretch without a new audio packet, in seconds (to the sampling's 50 ms): from
        a sample that saw packets to the next that does, with at least one sample between that
        saw none. A page too busy to sample for a while (one long interval with packets at its
        end) is no gap: the packets may have come all along."""
        gaps: list[float] = []
        last_at = self.samples[0]["t"] if self.samples else 0.0
        empty = False
        for before, after in pairwise(self.samples):
            if grown(before, after, "audio") > 0:
                if empty:
                    gaps.append((after["t"] - last_at) / 1000)
                last_at, empty = after["t"], False
            else:
                empty = True
        if self.samples and empty:
            gaps.append((self.samples[-1]["t"] - last_at) / 1000)
        return gaps

    @property
    def longest_gap_s(self) -> float:
        return max(self.audio_gaps_s(), default=0.0)

    @property
    def gaps_over(self) -> int:
        return sum(gap > GAP_S for gap in self.audio_gaps_s())

    @property
    def covered(self) -> float:
        """The share of the sound played that was real audio, not made up by the jitter
        buffer: of every 20 ms of playout, how much came from the other side's packets."""
        played = self.total("played")
        return 1 - self.total("concealed") / played if played else 0.0

    @property
    def sampled_every_s(self) -> float:
        """The longest time between two samples: how fine the gaps above are."""
        steps = [(b["t"] - a["t"]) / 1000 for a, b in pairwise(self.samples)]
        return max(steps, default=0.0)

    def changes(self, key: str) -> list[tuple[float, str]]:
        """(epoch seconds, value) of `key` ("sending", "notice") at the start and each change."""
        out: list[tuple[float, str]] = []
        for sample in self.samples:
            if not out or out[-1][1] != sample[key]:
                out.append((sample["t"] / 1000, sample[key]))
        return out

    @property
    def levels(self) -> list[str]:
        """The notices this page showed in turn ("" for none: the other side's video full)."""
        return [level for _, level in self.changes("notice")]

    def __repr__(self) -> str:
        return (
            f"Figures({self.seconds:.1f} s, {self.fps:.1f} fps, audio {self.audio_per_s:.0f}/s, "
            f"longest gap {self.longest_gap_s:.2f} s, notices {self.levels})"
        )


def samples_from(page: Page, start: int) -> list[dict[str, Any]]:
    return list(page.evaluate(SAMPLES_SINCE, start))


def watch(page: Page, seconds: float, until: str | None = None) -> Figures:
    """The page's samples over the next `seconds` (or until its quality notice's level is
    `until`, '' meaning no notice: video back at full)."""
    start = page.evaluate(SAMPLE_COUNT)
    started = time.monotonic()
    notice = page.get_by_test_id("quality-notice")
    while time.monotonic() - started < seconds:
        time.sleep(0.25)
        if until is not None and (notice.get_attribute("data-level") or "") == until:
            time.sleep(0.2)  # a sample or more after the change
            break
    # From the sample before the start, so the first stretch of the window counts too.
    return Figures(samples_from(page, max(0, start - 1)))


@pytest.mark.slow
@pytest.mark.browser
def test_a_call_through_a_poor_network_keeps_its_sound_drops_video_and_gets_it_back(
    hub_on_the_link,  # noqa: F811
    kiosk_network,  # noqa: F811
    student_in_namespace,
    helper_browser,  # noqa: F811
):
    student, helper = meet_through(student_in_namespace, helper_browser, hub_on_the_link)
    expect(helper.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect_video_from_the_other_side(helper)
    expect_video_from_the_other_side(student)
    seen = {"clean before": watch(helper, 8)}
    assert seen["clean before"].fps > 5 and seen["clean before"].levels == [""]

    for name in ("weak", "bad"):
        shape(kiosk_network, *PROFILES[name])
        seen[name] = watch(helper, HOLD_S)
    shape(kiosk_network, *PROFILES["clean"])
    seen["clean"] = watch(helper, RECOVER_S, until="")
    for name, f in seen.items():
        print(
            f"{name}: {f.fps:.1f} fps, audio {f.audio_per_s:.0f} packets/s, longest gap "
            f"{f.longest_gap_s:.1f} s, video {' -> '.join(x or 'full' for x in f.levels)}, "
            f"{f.seconds:.0f} s"
        )
    # Sound keeps flowing through both poor profiles (Opus sends 50 packets/s).
    for name in ("weak", "bad"):
        assert seen[name].audio_per_s > 25 and seen[name].longest_gap_s < 2.0, (name, seen[name])
    # Video goes down a level on the weak link and off on the bad one, and the other side is told.
    assert {"low", "off"} & set(seen["weak"].levels), seen["weak"]
    assert seen["bad"].levels[-1] == "off", seen["bad"]
    expect(helper.get_by_test_id("quality-notice")).to_be_hidden(timeout=1)  # back: no notice
    assert seen["clean"].levels[-1] == "", seen["clean"]
    back = watch(helper, 5)
    assert back.fps > 5, back


def meet_through(student: Browser, helper_in: Browser, hub: RunningHub) -> tuple[Page, Page]:
    """`meet`, then both pages reloaded keeping their peer connections (WATCH_CALLS) and
    sampling them (SAMPLER); returns once video flows both ways."""
    student_page, helper = meet(student, helper_in, hub)
    for page in (student_page, helper):
        page.context.add_init_script(WATCH_CALLS)
        page.context.add_init_script(SAMPLER)
        page.reload()
        expect(page.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect_video_from_the_other_side(helper)
    expect_video_from_the_other_side(student_page)
    return student_page, helper
