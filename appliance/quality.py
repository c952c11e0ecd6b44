"""How a call's video adapts to the network: a small policy, measured stats in, a video level out.

The same thresholds are in hub/static/js/rtc.js (`VIDEO_POLICY`, `nextVideoLevel`), for the
browser; this is the single place that documents them, and both must change together:

- a sample is *bad* when the outgoing loss is ≥ 10 %, the round trip ≥ 600 ms or the available
  outgoing bitrate < 150 kbit/s; *poor* when loss ≥ 4 %, round trip ≥ 350 ms or bitrate
  < 400 kbit/s; otherwise *good*.
- full → low after 2 poor samples in a row; full or low → off after 2 bad ones.
- up one level (off → low → full) only after good samples in a row: 5, then 10, then 20 (at most)
  each time that level failed again since video last held full for `HELD_FULL` good samples
  (30 s): from off by the times video went off, from low by the times full went down. So a
  network that cannot carry video, or not full video, does not make the picture come and go
  every few seconds. (A link that carries low video but not full, such as 256 kbit/s, looks good
  at low, where the estimate does not count; with a fixed wait it went low → full → low every
  14 s.) The two counts are apart so that a bad spell after a weak one does not also slow the
  step from off to low.
- the bitrate estimate counts only while video is full: with only sound, or small video, to send
  the sender's estimate stays near what it sends and would keep video down for good; loss and
  round trip count at every level (a link that cannot carry the video loses packets or queues
  them). Going up to full makes the sender probe, so its estimate grows back quickly.
- `low` is half the resolution at 10 frames per second; `off` sends no video, audio stays.

Samples come every 2 s (`SAMPLE_S`): a bad network turns video off within about 4 s, and video
comes back 10 s or more after the network is good again, then to full once the estimate has grown
back past 400 kbit/s for 10 s.

What the kiosk sends at each level (appliance/media.py; the browser's own WebRTC stack chooses
its bitrates itself): VP8 at most `VIDEO_MAX_KBPS[level]`, following the helper's estimate (REMB)
down to `VIDEO_MIN_KBPS`; Opus at `AUDIO_KBPS[level]` of the network's level (a student who
chose audio only on a good link keeps the better sound). aiortc on its own sends Opus at
96 kbit/s and VP8 at 250 kbit/s or more, which a 64 kbit/s link cannot carry; 16 kbit/s of Opus
plus its packet headers (about 20 kbit/s at 50 packets a second) leaves room on one.

aiortc does not probe the link as a browser does: the helper's estimate (REMB) starts low and
grows only with what arrives, and a change of picture size (a new VP8 keyframe) can make it dip.
So for `PROBE_S` after its video starts or goes back up to full the kiosk sends VP8 at
`PROBE_GAIN` times the estimate (the estimate then grows with what arrives, and the target with
it, up to the ceiling), and the estimate does not count for the policy meanwhile; loss and round
trip still do, and a falling estimate still lowers the target at once, so a link that cannot
carry it sends video down. Once video has been off for the network in a call, the kiosk trusts
the estimate no more in that call: while no video arrives Chrome's estimate falls to its floor
(5 kbit/s) and grows back only slowly (in tests/test_kiosk_quality.py's shaped call it was still
5 kbit/s 20 s after video was back), so it would keep saying the link carries nothing. From
then on VP8 sends the level's ceiling, at most aiortc's 500 kbit/s, and loss and round trip
alone decide."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Level = Literal["full", "low", "off"]
Health = Literal["good", "poor", "bad"]
LEVELS: tuple[Level, ...] = ("full", "low", "off")

SAMPLE_S = 2.0
POOR = {"loss": 0.04, "rtt_s": 0.35, "kbps": 400.0}
BAD = {"loss": 0.10, "rtt_s": 0.60, "kbps": 150.0}
DOWN_AFTER, UP_AFTER = 2, 5
HELD_FULL = 15  # good samples in a row at full after which earlier drops are forgotten
LOW_SCALE, LOW_FPS = 2, 10
VIDEO_MAX_KBPS: dict[Level, int] = {"full": 1500, "low": 150, "off": 0}
VIDEO_MIN_KBPS = 50
AUDIO_KBPS: dict[Level, int] = {"full": 32, "low": 24, "off": 16}
PROBE_S, PROBE_GAIN = 8.0, 1.5


@dataclass(frozen=True)
class Sample:
    """One measurement: loss is the fraction (0–1) of the sender's packets the other side
    reported lost since the last sample; rtt_s and kbps are None when not measured yet."""

    loss: float = 0.0
    rtt_s: float | None = None
    kbps: float | None = None


def health(sample: Sample, full: bool = True) -> Health:
    kbps = sample.kbps if full else None

    def past(limit: dict[str, float]) -> bool:
        return (
            sample.loss >= limit["loss"]
            or (sample.rtt_s is not None and sample.rtt_s >= limit["rtt_s"])
            or (kbps is not None and kbps < limit["kbps"])
        )

    return "bad" if past(BAD) else "poor" if past(POOR) else "good"


@dataclass(frozen=True)
class Policy:
    """The current level, the run of samples that points the same way, and since video last held
    full: how often it went off (`offs`) and how often full went down (`falls`)."""

    level: Level = "full"
    run: Health = "good"
    count: int = 0
    offs: int = 0
    falls: int = 0


def up_after(policy: Policy) -> int:
    """Good samples in a row needed to go up a level."""
    failed = policy.offs if policy.level == "off" else policy.falls
    return UP_AFTER * 2 ** min(max(failed - 1, 0), 2)


def step(policy: Policy, sample: Sample) -> Policy:
    """The policy after one more sample; its `level` is what to send now."""
    now = health(sample, full=policy.level == "full")
    count = policy.count + 1 if now == policy.run else 1
    down = count >= DOWN_AFTER
    falls = policy.falls + (policy.level == "full")
    if now == "bad" and down and policy.level != "off":
        return Policy("off", now, 0, policy.offs + 1, falls)
    if now == "poor" and down and policy.level == "full":
        return Policy("low", now, 0, policy.offs, falls)
    if now == "good" and policy.level != "full" and count >= up_after(policy):
        up: Level = "low" if policy.level == "off" else "full"
        return replace(policy, level=up, run=now, count=0)
    if policy.level == "full" and now == "good" and count >= HELD_FULL:
        return Policy("full", now, count)
    return replace(policy, run=now, count=count)
