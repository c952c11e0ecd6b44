"""How a call's video adapts to the network: a small policy, measured stats in, a video level out.

The same thresholds are in hub/static/js/rtc.js (`VIDEO_POLICY`, `nextVideoLevel`), for the
browser; this is the single place that documents them, and both must change together:

- a sample is *bad* when the outgoing loss is ≥ 10 %, the round trip ≥ 600 ms or the available
  outgoing bitrate < 150 kbit/s; *poor* when loss ≥ 4 %, round trip ≥ 350 ms or bitrate
  < 400 kbit/s; otherwise *good*.
- one level down (full → low → off) after 2 poor-or-bad samples in a row, straight to off after
  2 bad ones; one level up (off → low → full) only after 5 good samples in a row, so a network
  that flickers does not make the picture flicker too.
- `low` is half the resolution at 10 frames per second; `off` sends no video, audio stays.

Samples come every 2 s (`SAMPLE_S`): a bad network turns video off within about 4 s, and video
comes back about 10 s after the network is good again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["full", "low", "off"]
Health = Literal["good", "poor", "bad"]
LEVELS: tuple[Level, ...] = ("full", "low", "off")

SAMPLE_S = 2.0
POOR = {"loss": 0.04, "rtt_s": 0.35, "kbps": 400.0}
BAD = {"loss": 0.10, "rtt_s": 0.60, "kbps": 150.0}
DOWN_AFTER, UP_AFTER = 2, 5
LOW_SCALE, LOW_FPS = 2, 10


@dataclass(frozen=True)
class Sample:
    """One measurement: loss is the fraction (0–1) of the sender's packets the other side
    reported lost since the last sample; rtt_s and kbps are None when not measured yet."""

    loss: float = 0.0
    rtt_s: float | None = None
    kbps: float | None = None


def health(sample: Sample) -> Health:
    def past(limit: dict[str, float]) -> bool:
        return (
            sample.loss >= limit["loss"]
            or (sample.rtt_s is not None and sample.rtt_s >= limit["rtt_s"])
            or (sample.kbps is not None and sample.kbps < limit["kbps"])
        )

    return "bad" if past(BAD) else "poor" if past(POOR) else "good"


@dataclass(frozen=True)
class Policy:
    """The current level and the run of samples that points the same way."""

    level: Level = "full"
    run: Health = "good"
    count: int = 0


def step(policy: Policy, sample: Sample) -> Policy:
    """The policy after one more sample; its `level` is what to send now."""
    now = health(sample)
    count = policy.count + 1 if now == policy.run else 1
    index = LEVELS.index(policy.level)
    if now == "bad" and count >= DOWN_AFTER:
        return Policy("off", now, 0)
    if now == "poor" and count >= DOWN_AFTER and index < len(LEVELS) - 1:
        return Policy(LEVELS[index + 1], now, 0)
    if now == "good" and count >= UP_AFTER and index > 0:
        return Policy(LEVELS[index - 1], now, 0)
    return Policy(policy.level, now, count)
