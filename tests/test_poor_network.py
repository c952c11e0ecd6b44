"""A call that survives a poor network (issue 11): the video policy (appliance/quality.py, and its
browser copy in rtc.js, which must decide alike), the `rtc:quality` room event that tells the
other side, the room page's audio-only toggle and plain-words notice, and a real call between
two Chromiums (the student's inside a network namespace) through a shaped link. The kiosk does not
adapt yet (appliance/quality.py is its policy, not yet wired into appliance/media.py): aiortc sends
Opus at 96 kbit/s and VP8 at 250 kbit/s or more, more than the 64 kbit/s profile carries."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
)
from tests.test_room_browser import (
    MEDIA_ARGS,
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


SEQUENCES = {
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
    let policy = { level: "full", run: "good", count: 0, offs: 0 };
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
    toggle.click()
    student.wait_for_function(SENDING_VIDEO, timeout=10_000)
    expect(helper.get_by_test_id("quality-notice")).to_be_hidden()


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


@pytest.fixture
def student_in_namespace(
    chromium: Playwright,  # noqa: F811
    hub_on_the_link: RunningHub,  # noqa: F811
    kiosk_network: KioskNetwork,  # noqa: F811
    tmp_path: Path,
) -> Iterator[Browser]:
    """The student's Chromium (fake camera and microphone) inside the namespace, so all its
    traffic crosses the shaped link."""
    if subprocess.run(["nft", "--version"], capture_output=True).returncode != 0:
        pytest.skip("nft is missing (scripts/ensure-test-tools installs nftables)")
    inside = tmp_path / "chromium-in-namespace"
    inside.write_text(
        f'#!/bin/sh\nexec {" ".join(kiosk_network.inside("/usr/bin/chromium"))} "$@"\n'
    )
    inside.chmod(0o755)
    browser = chromium.chromium.launch(
        executable_path=str(inside),
        args=[
            *MEDIA_ARGS,
            f"--unsafely-treat-insecure-origin-as-secure={hub_on_the_link.url}",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
        ],
    )
    try:
        yield browser
    finally:
        shape(kiosk_network, None, 0)
        browser.close()


# What the helper's page receives from the student: audio packets and decoded video frames.
RECEIVED = """async () => {
  const call = window.lcCalls[window.lcCalls.length - 1];
  const out = { audio: 0, frames: 0 };
  if (!call) return out;
  (await call.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") out.audio += r.packetsReceived || 0;
    if (r.type === "inbound-rtp" && r.kind === "video") out.frames += r.framesDecoded || 0;
  });
  return out;
}"""


@dataclass
class Figures:
    """One profile, seen from the helper's side: fps of the student's video, audio packets per
    second and the longest stretch without any, and the levels the student's video went through."""

    seconds: float = 0.0
    frames: int = 0
    audio: int = 0
    longest_gap_s: float = 0.0
    levels: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def audio_per_s(self) -> float:
        return self.audio / self.seconds


def watch(helper: Page, seconds: float, until: str | None = None) -> Figures:
    """Samples what the helper receives every 0.25 s for `seconds` (or until the notice of the
    student's video level is `until`, '' meaning no notice: video back at full)."""
    figures = Figures()
    started = last_audio_at = time.monotonic()
    first = helper.evaluate(RECEIVED)
    last = first
    notice = helper.get_by_test_id("quality-notice")
    while time.monotonic() - started < seconds:
        time.sleep(0.25)
        now = helper.evaluate(RECEIVED)
        at = time.monotonic()
        if now["audio"] > last["audio"]:
            last_audio_at = at
        figures.longest_gap_s = max(figures.longest_gap_s, at - last_audio_at)
        last = now
        level = notice.get_attribute("data-level") or ""
        if not figures.levels or figures.levels[-1] != level:
            figures.levels.append(level)
        if until is not None and level == until:
            break
    figures.seconds = time.monotonic() - started
    figures.frames = last["frames"] - first["frames"]
    figures.audio = last["audio"] - first["audio"]
    return figures


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
    """`meet`, then the helper's page reloaded keeping its peer connections (WATCH_CALLS)."""
    student_page, helper = meet(student, helper_in, hub)
    helper.context.add_init_script(WATCH_CALLS)
    helper.reload()
    return student_page, helper
