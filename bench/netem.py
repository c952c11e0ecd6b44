"""A call through a poor network: what the helper receives while the student's link is clean,
256 kbit/s with 2 % loss, 64 kbit/s with 2 % loss and clean again, and how fast video adapts.

    .venv/bin/python -m bench.netem                       # one call, 30 s per poor profile
    .venv/bin/python -m bench.netem --runs 3 --hold-s 45  # medians over three calls
    .venv/bin/python -m bench.netem --student kiosk       # the kiosk (aiortc) as the student

Needs root (a network namespace and a veth pair, as tests/test_poor_network.py), tc and nft
(scripts/ensure-test-tools) and Chromium. The link, its shaping, the pages and their sampling
are the test's own code (tests/test_kiosk_network.py, tests/test_poor_network.py). See
bench/README.md."""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Playwright, sync_playwright

from bench.common import HUB_ENV, finish, machine_lines, new_result, progress, seed
from tests.conftest import RunningHub, stop
from tests.kiosks import pair_into
from tests.test_browser import log_in
from tests.test_kiosk_browser import meet as meet_at_the_kiosk
from tests.test_kiosk_network import (
    LINK_HUB_ENV,
    WATCH_CALLS,
    KioskNetwork,
    NoNamespace,
    hub_on,
    link_chromium,
    namespace_link,
    start_kiosk_in,
)
from tests.test_kiosk_quality import LEVEL_LINE
from tests.test_poor_network import (
    GAP_S,
    PROFILES,
    SAMPLER,
    Figures,
    meet_through,
    nft_missing,
    samples_from,
    shape,
    student_chromium_in,
    watch,
)
from tests.test_room_browser import DESKTOP, MEDIA, expect_video_from_the_other_side

# (name, the profile of tests/test_poor_network.py); each held for --hold-s, the first for
# --clean-s and the last for --recover-s.
PHASES = (
    ("clean", "clean"),
    ("256 kbit/s, 2 % loss", "weak"),
    ("64 kbit/s, 2 % loss", "bad"),
    ("clean again", "clean"),
)


RANK = {"off": 0, "low": 1, "full": 2}


@dataclass
class Call:
    """A call in progress: the helper's page (sampled) and where the student's sent video
    level is read from, as (epoch seconds, level) at the start and at each change."""

    helper: Page
    student_levels: Callable[[], list[tuple[float, str]]]
    student_software: str


@contextmanager
def browser_student(
    pw: Playwright, hub: RunningHub, net: KioskNetwork, scratch: Path
) -> Iterator[Call]:
    """The student in Chromium inside the namespace, the helper in Chromium on the host."""
    with (
        student_chromium_in(pw, hub.url, net, scratch) as student_browser,
        link_chromium(pw, hub.url) as helper_browser,
    ):
        student, helper = meet_through(student_browser, helper_browser, hub)
        yield Call(
            helper,
            lambda: Figures(samples_from(student, 0)).changes("sending"),
            f"Chromium {student_browser.version}",
        )


# The kiosk's log line of a level change, with its time (lektiecafe/cli.py's log format: the
# local time to the millisecond).
TIMED_LEVEL_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?" + LEVEL_LINE.pattern, re.M
)


def kiosk_levels(log: Path) -> list[tuple[float, str]]:
    """(epoch seconds, level) of the kiosk's sent video: full from the start, then its log."""
    text = log.read_text(errors="replace")
    changes = [(0.0, "full")]
    for m in TIMED_LEVEL_LINE.finditer(text):
        at = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        changes.append((at, m[3]))
    return changes


@contextmanager
def kiosk_student(
    pw: Playwright, hub: RunningHub, net: KioskNetwork, scratch: Path
) -> Iterator[Call]:
    """`lektiecafe kiosk` (synthetic camera, aiortc) paired and started inside the namespace as
    tests/test_kiosk_quality.py does; the helper in Chromium on the host."""
    data_dir = scratch / "kiosk"
    pair_into(hub, data_dir)
    process, driver, log = start_kiosk_in(net, hub, data_dir)
    try:
        with link_chromium(pw, hub.url) as helper_browser:
            script = WATCH_CALLS + "\n" + SAMPLER
            helper = log_in(helper_browser, hub, "helper1", script, **DESKTOP, **MEDIA)
            meet_at_the_kiosk(driver, helper)
            expect_video_from_the_other_side(helper)
            yield Call(helper, lambda: kiosk_levels(log), f"kiosk, aiortc {version('aiortc')}")
        driver.close()
    finally:
        stop(process)


STUDENTS: dict[str, Callable[..., Any]] = {"browser": browser_student, "kiosk": kiosk_student}


def seconds_after(
    changes: list[tuple[float, str]], since: float, wanted: Callable[[str], bool]
) -> float | None:
    """Seconds from `since` to the first change at or after it whose level is `wanted` (or
    the level already in force at `since`, which counts as 0)."""
    current = next((level for at, level in reversed(changes) if at <= since), None)
    if current is not None and wanted(current):
        return 0.0
    return next((at - since for at, level in changes if at > since and wanted(level)), None)


def stepped(level: str, up: bool) -> Callable[[str], bool]:
    """Whether a level is a step up (or down) from `level`."""
    return lambda other: RANK[other] > RANK[level] if up else RANK[other] < RANK[level]


def levels_between(changes: list[tuple[float, str]], start: float, end: float) -> list[str]:
    """The level in force at `start` and every change up to `end`."""
    before = [level for at, level in changes if at <= start][-1:]
    return before + [level for at, level in changes if start < at <= end]


def one_call(args: argparse.Namespace, run: int) -> dict[str, Any]:
    """A fresh namespace, database, hub and pair of browsers; the profiles in turn."""
    scratch = Path(tempfile.mkdtemp(prefix="lektiecafe-netem-"))
    try:
        with namespace_link() as net:
            url = f"sqlite:///{scratch / 'hub.db'}"
            seed(url, students=2, helpers=2)
            env = {**LINK_HUB_ENV, **HUB_ENV}
            with (
                hub_on(net, url, scratch, env) as hub,
                sync_playwright() as pw,
                STUDENTS[args.student](pw, hub, net, scratch) as call,
            ):
                return measure(args, net, call, run)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            progress(f"kept {scratch}")


def measure(args: argparse.Namespace, net: KioskNetwork, call: Call, run: int) -> dict[str, Any]:
    phases: list[dict[str, Any]] = []
    seen: list[Figures] = []
    for i, (name, profile) in enumerate(PHASES):
        hold = args.clean_s if i == 0 else args.recover_s if i == len(PHASES) - 1 else args.hold_s
        progress(f"run {run}: {name} for {hold:.0f} s")
        load = os.getloadavg()
        shaped_at = time.time()
        shape(net, *PROFILES[profile])
        figures = watch(call.helper, hold)
        seen.append(figures)
        phases.append({"name": name, "shaped_at": shaped_at, "load": load, "figures": figures})
    student = call.student_levels()
    helper_sent = Figures([s for f in seen for s in f.samples]).changes("sending")
    clean_fps = seen[0].median_fps
    out: list[dict[str, Any]] = []
    for i, phase in enumerate(phases):
        f: Figures = phase["figures"]
        start = phase["shaped_at"]
        end = phases[i + 1]["shaped_at"] if i + 1 < len(phases) else math.inf
        windows = sorted(f.fps_windows())
        levels = levels_between(student, start, end)
        row = {
            "name": phase["name"],
            "load_average": phase["load"],
            "seconds": f.seconds,
            "fps_median_1s": f.median_fps,
            "fps_p5_1s": windows[max(0, math.ceil(0.05 * len(windows)) - 1)] if windows else 0,
            "fps_overall": f.fps,
            "audio_per_s": f.audio_per_s,
            "audio_longest_gap_s": f.longest_gap_s,
            "audio_gaps_over_200ms": f.gaps_over,
            "audio_covered": f.covered,
            "sampled_every_s_max": f.sampled_every_s,
            "fps_1s_windows": [round(fps, 1) for fps in f.fps_windows()],
            "audio_gaps_s": [round(gap, 3) for gap in f.audio_gaps_s() if gap > 0.1],
            "student_levels": levels,
            "helper_levels": levels_between(helper_sent, start, end),
            "helper_notices": f.levels,
            "adapt_s": None,
            "told_s": None,
        }
        if i > 0:
            # Down from the level in force on a poor link, up from it on a clean one: a step
            # the other way (still going up from the profile before) is not the adapting.
            row["adapt_s"] = seconds_after(
                [(at, lv) for at, lv in student if start < at <= end],
                start,
                stepped(levels[0], up=PHASES[i][1] == "clean"),
            )
            told = [at for at, _ in f.changes("notice")[1:]]
            row["told_s"] = told[0] - start if told else None
        if i == len(phases) - 1:
            row["back_to_full_s"] = seconds_after(student, start, lambda level: level == "full")
            near = args.near * clean_fps
            windows_at = f.fps_by_window()
            # The first of three windows in a row at that rate: not a burst of queued frames.
            back = [
                windows_at[j][0] - 1
                for j in range(len(windows_at) - 2)
                if all(fps >= near for _, fps in windows_at[j : j + 3])
            ]
            row["fps_near_clean_s"] = max(0.0, back[0] - start) if back else None
            row["fps_near_clean_target"] = near
            notices = f.changes("notice")
            row["notice_gone_s"] = seconds_after(notices, start, lambda level: level == "")
        out.append(row)
    return {
        "run": run,
        "student_software": call.student_software,
        "phases": out,
        "shaped_at": [p["shaped_at"] for p in phases],
        "student_changes": student,
        "helper_changes": helper_sent,
    }


# ---- the report ------------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], phase: int, key: str) -> tuple[float | None, list[Any]]:
    values = [r["phases"][phase].get(key) for r in runs]
    known = [v for v in values if v is not None]
    return (statistics.median(known) if known else None), values


def cell(runs: list[dict[str, Any]], phase: int, key: str, fmt: Callable[[float], str]) -> str:
    median, values = median_of(runs, phase, key)
    if median is None:
        return "-"
    text = fmt(median)
    known = [v for v in values if v is not None]
    if len(values) > 1:
        text += f" ({fmt(min(known))}–{fmt(max(known))}"
        text += f", {len(values) - len(known)} none)" if len(known) < len(values) else ")"
    return text


def levels_cell(runs: list[dict[str, Any]], phase: int, key: str) -> str:
    seqs = {" → ".join(x or "full" for x in r["phases"][phase][key]) for r in runs}
    return "; ".join(sorted(seqs))


def report(result: dict[str, Any]) -> str:
    runs = result["runs"]
    m = result["machine"]
    lines = [
        f"A call through a poor network (bench/netem.py): student {result['student']}, "
        f"{len(runs)} run(s); cells are medians over runs (min–max)",
        *machine_lines(m),
        f"  student   {runs[0]['student_software'] if runs else '-'}, in a network namespace; "
        "helper in Chromium on the host; hub on the host end of the veth pair",
        f"  held      clean {result['config']['clean_s']:.0f} s, each poor profile "
        f"{result['config']['hold_s']:.0f} s, clean again {result['config']['recover_s']:.0f} s",
        "  load avg  (1 min) at each phase's start: "
        + "; ".join(" / ".join(f"{p['load_average'][0]:.1f}" for p in r["phases"]) for r in runs)
        + f"  (before {result['load_average_before'][0]:.1f}, "
        f"after {result['load_average_after'][0]:.1f})",
        "",
    ]

    def num(fmt: str) -> Callable[[float], str]:
        return lambda v: format(v, fmt)

    rows: list[tuple[str, Callable[[int], str]]] = [
        ("video fps, median of 1 s windows", lambda i: cell(runs, i, "fps_median_1s", num(".1f"))),
        ("video fps, worst 1 s (p5)", lambda i: cell(runs, i, "fps_p5_1s", num(".1f"))),
        ("video fps, overall", lambda i: cell(runs, i, "fps_overall", num(".1f"))),
        ("audio packets/s (Opus sends 50)", lambda i: cell(runs, i, "audio_per_s", num(".0f"))),
        (
            "audio longest gap",
            lambda i: cell(runs, i, "audio_longest_gap_s", lambda v: f"{v * 1000:.0f} ms"),
        ),
        (
            f"audio gaps > {GAP_S * 1000:.0f} ms",
            lambda i: cell(runs, i, "audio_gaps_over_200ms", num(".0f")),
        ),
        (
            "audio played from packets",
            lambda i: cell(runs, i, "audio_covered", lambda v: f"{v * 100:.1f} %"),
        ),
        ("student's video sent at", lambda i: levels_cell(runs, i, "student_levels")),
        ("helper's video sent at", lambda i: levels_cell(runs, i, "helper_levels")),
        ("helper's notice (worse side)", lambda i: levels_cell(runs, i, "helper_notices")),
        ("time to adapt (shaped → step)", lambda i: cell(runs, i, "adapt_s", num(".1f"))),
        ("helper told (shaped → notice)", lambda i: cell(runs, i, "told_s", num(".1f"))),
    ]
    names = [name for name, _ in PHASES]
    width = 34
    col = max(
        22,
        *(
            len(levels_cell(runs, i, key)) + 2
            for i in range(len(names))
            for key in ("student_levels", "helper_levels", "helper_notices")
        ),
    )
    lines.append(f"  {'':<{width}}" + "".join(f"{n:<{col}}" for n in names))
    for label, value in rows:
        lines.append(f"  {label:<{width}}" + "".join(f"{value(i):<{col}}" for i in range(4)))
    last = len(PHASES) - 1
    lines += [
        "",
        "  recovery, from the link clean again:",
        "    student's video back at full      "
        + cell(runs, last, "back_to_full_s", lambda v: f"{v:.1f} s"),
        f"    helper's fps ≥ {result['config']['near'] * 100:.0f} % of clean, 3 s in a row "
        + cell(runs, last, "fps_near_clean_s", lambda v: f"{v:.1f} s"),
        "    helper's notice gone              "
        + cell(runs, last, "notice_gone_s", lambda v: f"{v:.1f} s"),
        "",
        "  times in s; '-' = did not happen in the phase. Audio gaps are to the 50 ms the pages are"
        f" sampled at (longest interval seen: {max_sampling(runs) * 1000:.0f} ms).",
    ]
    return "\n".join(lines)


def max_sampling(runs: list[dict[str, Any]]) -> float:
    return max((p["sampled_every_s_max"] for r in runs for p in r["phases"]), default=0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", choices=sorted(STUDENTS), default="browser")
    parser.add_argument("--runs", type=int, default=1, help="calls, each on a fresh link and hub")
    parser.add_argument("--hold-s", type=float, default=30.0, help="each poor profile this long")
    parser.add_argument("--clean-s", type=float, default=15.0, help="the clean start this long")
    parser.add_argument(
        "--recover-s", type=float, default=60.0, help="clean again this long (recovery)"
    )
    parser.add_argument(
        "--near", type=float, default=0.8, help="fps back near clean: this share of its median"
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's data dir (logs)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if nft_missing() or not shutil.which("tc"):
        sys.exit("tc and nft are needed (scripts/ensure-test-tools installs nftables)")
    result = new_result("netem", args)
    result["student"] = args.student
    result["runs"] = []
    for run in range(1, args.runs + 1):
        try:
            result["runs"].append(one_call(args, run))
        except NoNamespace as why:
            sys.exit(f"bench/netem.py: {why}")
    return finish(result, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
