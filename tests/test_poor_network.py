"""A call that survives a poor network (issue 11): the video policy (appliance/quality.py, and its
browser copy in rtc.js, which must decide alike), the `rtc:quality` room event that tells the
other side, the room page's audio-only toggle and plain-words notice, and a real call between
Chromium and the aiortc kiosk through a shaped network namespace."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from appliance.quality import LEVELS, Policy, Sample, health, step
from tests.test_room_browser import (
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
    assert run([WEAK] * 4) == ["full", "low", "low", "off"]
    assert run([BAD] * 2) == ["full", "off"]
    back = run([CLEAN] * 10, Policy("off"))
    assert back == ["off"] * 4 + ["low"] + ["low"] * 4 + ["full"]


def test_one_bad_sample_among_good_ones_changes_nothing():
    assert set(run([CLEAN, BAD, CLEAN, WEAK, CLEAN] * 3)) == {"full"}
    # and a flicker while recovering starts the wait for good samples again
    assert run([CLEAN] * 4 + [WEAK] + [CLEAN] * 4, Policy("off")) == ["off"] * 9


SEQUENCES = {
    "weak": [WEAK] * 4,
    "bad": [BAD] * 3,
    "flicker": [CLEAN, BAD, CLEAN, WEAK, CLEAN] * 3,
    "recover": [BAD] * 2 + [CLEAN] * 12,
    "unmeasured": [Sample(loss=0.05), Sample(), Sample(loss=0.05), Sample(loss=0.05)],
}
JS_POLICY = """async (sequences) => {
  const { nextVideoLevel } = await import("/static/js/rtc.js");
  const out = {};
  for (const [name, samples] of Object.entries(sequences)) {
    let policy = { level: "full", run: "good", count: 0 };
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
