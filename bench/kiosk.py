"""The kiosk on this machine: cold start, memory and CPU in a call beside Chromium, UI frame rate,
and glass-to-glass latency read from the synthetic camera's picture.

    .venv/bin/python -m bench.kiosk [--starts 10] [--window-s 30] [--calls kiosk,chromium,x11]

start     `lektiecafe kiosk` started --starts times (SDL dummy, synthetic camera, paired, the hub
          on loopback): process start -> driver socket listening -> first frame answered -> the
          attract screen with its Start button (connected to the hub).
kiosk     call A: the kiosk student asks, a helper in headless Chromium accepts: a two-way
          640x480 15 fps call. Over --window-s of steady call: the kiosk process's CPU seconds
          and RSS, its UI loop rate and screen updates (test driver `state`), and the kiosk
          camera -> helper's screen latency, read in the helper's page from the time stamp in
          the picture.
chromium  call B, right after: the same with a student in Chromium (a browser instance of its
          own, fake camera held to 640x480 at 15 fps) instead of the kiosk: the CPU seconds of
          that browser's whole process tree. Ratio = kiosk CPU / Chromium student CPU.
x11       call X: call A again with the kiosk on X (an Xvfb of its own), if Xvfb is installed.

Targets (issue 4): kiosk CPU at most 1.5x Chromium's; UI at least 30 fps; glass-to-glass p50
under 150 ms on loopback. See bench/README.md."""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    CHROMIUM_ARGS,
    DEMO_PASSWORD,
    HUB_ENV,
    ON_REMOTE_VIDEO_JS,
    PG_ADMIN,
    ROOT,
    SECRET_KEY,
    Samples,
    SeededHub,
    cpu_used,
    load_line,
    machine_info,
    machine_lines,
    measure_table,
    pair_kiosk,
    percentile,
    proc_kib,
    process_tree,
    progress,
    seeded_hub,
    tree_cpu_seconds,
    verdict,
    write_results,
)
from lektiecafe.launch import stop_process

WIDTH, HEIGHT, FPS = 640, 480, 15  # the kiosk's camera (appliance.visit.Options) and Chromium's
CPU_TARGET_RATIO = 1.5
UI_TARGET_FPS = 30.0
LATENCY_TARGET_P50_MS = 150.0
SETUP_TIMEOUT_S = 60.0  # each step of matching and connecting a call
TIMEOUT_MS = SETUP_TIMEOUT_S * 1000  # the same, for Playwright
STAMP_WRAP = 2**32  # the picture carries the capture time in ms modulo 2^32

PAGE = {"locale": "da-DK", "viewport": {"width": 1280, "height": 900}}
MEDIA = {"permissions": ["camera", "microphone"]}

# Every Chromium page: the camera the page asks for is the fake device at exactly the kiosk's
# size and rate (rtc.js asks for an ideal 640x480 at any rate).
CAMERA_SCRIPT = f"""
(() => {{
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const native = md.getUserMedia.bind(md);
  const exact = {{ width: {{ exact: {WIDTH} }}, height: {{ exact: {HEIGHT} }},
                  frameRate: {{ exact: {FPS} }} }};
  md.getUserMedia = (c) => native(c && c.video
    ? {{ ...c, video: {{ ...(typeof c.video === "object" ? c.video : {{}}), ...exact }} }}
    : c);
}})();
"""

# The helper's pages (both calls alike): keep the RTCPeerConnections for getStats(), and at every
# frame the remote video presents (requestVideoFrameCallback) draw it into a canvas and read the
# capture time that appliance.media.stamp_time wrote into its top band: 40 blocks, 32 bits of
# milliseconds and 8 of check, read as appliance.media.read_time does (the middle half of each
# block, mean of R, G and B over 127). Recorded per readable frame: [stamp, then on the epoch
# clock performance.timeOrigin + ...: the frame's last packet received, the moment the callback
# runs (performance.now(); its own first argument is the start of the rendering frame, which can
# be earlier), and the time Chromium expects the frame on the screen].
HELPER_SCRIPT = (
    """
(() => {
  const lc = (window.__lcBench = { frames: [], unreadable: 0, pcs: [] });
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); lc.pcs.push(this); }
  };
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const BITS = 40;
  const check = (ms) =>
    (((ms >>> 24) + ((ms >>> 16) & 255) + ((ms >>> 8) & 255) + (ms & 255)) & 255) ^ 0xa5;
  function stamp(video, w, h) {
    const cell = Math.floor(w / BITS), band = Math.max(4, Math.floor(h / 15));
    if (canvas.width !== w || canvas.height !== band) { canvas.width = w; canvas.height = band; }
    ctx.drawImage(video, 0, 0, w, h);
    const top = Math.floor(band / 4), rows = band - 2 * top;
    const data = ctx.getImageData(0, top, w, rows).data;
    let ms = 0, chk = 0;
    for (let i = 0; i < BITS; i++) {
      const x0 = i * cell + Math.floor(cell / 4), x1 = (i + 1) * cell - Math.floor(cell / 4);
      let sum = 0;
      for (let y = 0; y < rows; y++) {
        for (let x = x0; x < x1; x++) {
          const o = (y * w + x) * 4;
          sum += data[o] + data[o + 1] + data[o + 2];
        }
      }
      const bit = sum / (3 * rows * (x1 - x0)) > 127 ? 1 : 0;
      if (i < 32) ms = ms * 2 + bit; else chk = chk * 2 + bit;
    }
    return chk === check(ms) ? ms : null;
  }
  function onRemoteVideo(video) {
    const onFrame = (_frameStart, meta) => {
      const called = performance.now();
      const origin = performance.timeOrigin;
      const ms = stamp(video, meta.width, meta.height);
      if (ms === null) lc.unreadable++;
      else lc.frames.push([ms,
                           meta.receiveTime === undefined ? null : origin + meta.receiveTime,
                           origin + called, origin + meta.expectedDisplayTime]);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
"""
    + ON_REMOTE_VIDEO_JS
    + "})();"
)

# The helper's connected call, from getStats(): each inbound and outbound RTP stream's plain
# numbers and strings, keyed "inbound-rtp video" etc.
RTP_STATS = """async () => {
  const pc = window.__lcBench.pcs.filter((p) => p.connectionState === "connected").pop();
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" || s.type === "outbound-rtp") {
      out[`${s.type} ${s.kind}`] = Object.fromEntries(
        Object.entries(s).filter(([, v]) => typeof v !== "object"));
    }
  });
  return out;
}"""

# True once the element's video has played for a second.
PLAYED = """(testid) => {
  const v = document.querySelector(`[data-testid="${testid}"]`);
  return !!v && v.readyState >= 2 && v.currentTime > 1;
}"""


# ---------------------------------------------------------------------------------------------
# Processes


def cmdline(pid: int) -> list[str]:
    """A process's arguments, near enough: Chromium's helpers rewrite theirs into one string."""
    with suppress(OSError):
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .decode(errors="replace")
            .replace("\0", " ")
            .split()
        )
    return []


def chromium_role(pid: int) -> str:
    """What a Chromium process does: browser, zygote, renderer, gpu-process, or the utility
    service it runs (NetworkService, AudioService, VideoCaptureService, …)."""
    args = cmdline(pid)
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
    if kind == "utility":
        sub = next((a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")), "")
        return sub.rsplit(".", 1)[-1] or "utility"
    return kind


def browser_pids() -> set[int]:
    """The Chromium browser processes (not their helpers) this benchmark has launched: they run
    under Playwright's driver, a child of this process, and talk to it over a pipe."""
    return {
        pid
        for pid in process_tree(os.getpid())
        if "--remote-debugging-pipe" in (args := cmdline(pid))
        and not any(a.startswith("--type=") for a in args)
    }


class KioskProcess:
    """`lektiecafe kiosk` with the synthetic camera and the test driver, in its own process."""

    def __init__(self, hub_url: str, data_dir: Path, env: dict[str, str]) -> None:
        self.sock = data_dir / "driver.sock"
        self.sock.unlink(missing_ok=True)
        self.log = data_dir / "kiosk.log"
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lektiecafe.cli",
                "kiosk",
                "--hub",
                hub_url,
                "--windowed",
                "--fake-camera",
                "--test-driver",
                str(self.sock),
                "--data-dir",
                str(data_dir),
                "--room-idle-after",
                "3600",
            ],
            cwd=ROOT,
            env={**os.environ, "SDL_AUDIODRIVER": "dummy", **env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self._driver: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_socket(self, timeout: float = SETUP_TIMEOUT_S) -> float:
        """Seconds from the start until the test driver listens (polled every 5 ms)."""
        deadline = time.monotonic() + timeout
        while not self.sock.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the kiosk did not start:\n{self.tail()}")
            time.sleep(0.005)
        return time.perf_counter() - self.started

    @property
    def driver(self) -> Any:
        from kiosk_ui.driver import DriverClient

        if self._driver is None:
            self.wait_socket()
            self._driver = DriverClient(self.sock, timeout=10)
        return self._driver

    def tail(self, chars: int = 3000) -> str:
        with suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        """SIGTERM: the kiosk finishes the visit on the hub and closes the call, as in service."""
        if self._driver is not None:
            with suppress(Exception):
                self._driver.close()
        stop_process(self.process, wait_s=20)


@contextmanager
def xvfb_display() -> Iterator[tuple[str, int]]:
    """An Xvfb server on a display number it picks itself: (DISPLAY, its pid)."""
    read, write = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise SystemExit("Xvfb did not start")
        yield f":{number}", process.pid
    finally:
        stop_process(process)


# ---------------------------------------------------------------------------------------------
# Part 1: cold start


def cold_start(hub_url: str, data_dir: Path, starts: int) -> dict[str, Any]:
    """Start the kiosk `starts` times; the time to each milestone, then stop it (SIGTERM)."""
    imports = Samples("import appliance.visit + kiosk_ui.app")
    socket_up = Samples("start -> driver socket (imports, SDL window)")
    first = Samples("start -> first frame answered")
    attract = Samples("start -> attract screen with Start")
    runs = []
    for i in range(1, starts + 1):
        begin = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import appliance.visit, kiosk_ui.app"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"},
        )
        imports.add(time.perf_counter() - begin)
        kiosk = KioskProcess(hub_url, data_dir, {"SDL_VIDEODRIVER": "dummy"})
        try:
            listening = kiosk.wait_socket()
            d = kiosk.driver
            answered: float | None = None
            deadline = time.monotonic() + SETUP_TIMEOUT_S
            while True:
                widgets = d.tree()
                now = time.perf_counter() - kiosk.started
                answered = answered if answered is not None else now
                if any(w["id"] == "start" and w.get("enabled") for w in widgets):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"no attract screen: {[w['id'] for w in widgets]}")
                time.sleep(0.005)
        finally:
            kiosk.stop()
        socket_up.add(listening)
        first.add(answered)
        attract.add(now)
        runs.append({"socket_s": listening, "first_frame_s": answered, "attract_s": now})
        progress(f"  start {i}: attract screen after {now * 1000:.0f} ms")
    return {
        "starts": starts,
        "measures": [s.summary() for s in (imports, socket_up, first, attract)],
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------
# Parts 2-4: calls


@dataclass
class Window:
    """What was sampled once a second during the measured window of one call."""

    wall: tuple[float, float] = (0.0, 0.0)  # time.time() at its start and end
    seconds: float = 0.0
    cpu_s: float = 0.0  # the measured side: kiosk process, or the student's browser tree
    cpu_by_role: dict[str, float] = field(default_factory=dict)
    cpu_per_s: list[float] = field(default_factory=list)  # share of one core, each second
    rss_kib: list[int] = field(default_factory=list)
    pss_kib: list[int] = field(default_factory=list)
    helper_cpu_s: float = 0.0  # the helper's browser tree, for context
    hub_cpu_s: float = 0.0
    xvfb_cpu_s: float | None = None
    bench_cpu_s: float = 0.0
    load: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
    kiosk_states: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


def measure_window(
    seconds: float,
    measured: int,
    helper_browser: int,
    hub: int,
    xvfb: int | None = None,
    kiosk: KioskProcess | None = None,
) -> Window:
    """Sample once a second for `seconds`: CPU and memory of the process tree under `measured`
    (and the kiosk's test-driver state when it is the kiosk)."""
    w = Window(load=(os.getloadavg(), ()))
    roles = {p: chromium_role(p) for p in process_tree(measured)} if kiosk is None else {}
    start_cpu = last_cpu = tree_cpu_seconds(measured)
    helper_cpu, hub_cpu = tree_cpu_seconds(helper_browser), tree_cpu_seconds(hub)
    xvfb_cpu = tree_cpu_seconds(xvfb) if xvfb else {}
    bench_cpu = time.process_time()
    begin = last = time.perf_counter()
    wall = time.time()
    ticks = max(1, round(seconds))
    for tick in range(1, ticks + 1):
        time.sleep(max(0.0, begin + tick * seconds / ticks - time.perf_counter()))
        now = time.perf_counter()
        cpu = tree_cpu_seconds(measured)
        w.cpu_per_s.append(cpu_used(last_cpu, cpu) / (now - last))
        last_cpu, last = cpu, now
        w.rss_kib.append(sum(proc_kib(p, "status", "VmRSS") or 0 for p in cpu))
        w.pss_kib.append(sum(proc_kib(p, "smaps_rollup", "Pss") or 0 for p in cpu))
        if kiosk is not None:
            w.kiosk_states.append((time.perf_counter(), kiosk.driver.ok("state")))
    w.seconds = last - begin
    w.wall = (wall, time.time())
    w.cpu_s = cpu_used(start_cpu, last_cpu)
    for pid, used in last_cpu.items():
        role = "kiosk" if kiosk is not None else roles.get(pid) or chromium_role(pid)
        w.cpu_by_role[role] = w.cpu_by_role.get(role, 0.0) + used - start_cpu.get(pid, 0.0)
    w.helper_cpu_s = cpu_used(helper_cpu, tree_cpu_seconds(helper_browser))
    w.hub_cpu_s = cpu_used(hub_cpu, tree_cpu_seconds(hub))
    if xvfb:
        w.xvfb_cpu_s = cpu_used(xvfb_cpu, tree_cpu_seconds(xvfb))
    w.bench_cpu_s = time.process_time() - bench_cpu
    w.load = (w.load[0], os.getloadavg())
    return w


def clock_offset(page: Any, tries: int = 20) -> tuple[float, float]:
    """(offset, error) in ms of the page's performance.timeOrigin + now() against this
    process's time.time(): the reading with the shortest round trip, whose true offset lies
    within half that round trip of the one given."""
    best: tuple[float, float] | None = None
    for _ in range(tries):
        before = time.time()
        page_ms = float(page.evaluate("() => performance.timeOrigin + performance.now()"))
        after = time.time()
        rtt = (after - before) * 1000
        if best is None or rtt < 2 * best[1]:
            best = (page_ms - (before + after) * 500, rtt / 2)
    assert best is not None
    return best


def rtp_rates(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Per RTP stream of the helper's call: the window's frame rate and bit rate from counter
    differences, and the last frame size, encoder/decoder and quality limitation."""
    if not before or not after:
        return {}
    rates: dict[str, Any] = {}
    for key, end in after.items():
        start = before.get(key)
        if not start:
            continue
        seconds = (end["timestamp"] - start["timestamp"]) / 1000
        frames = "framesDecoded" if key.startswith("inbound") else "framesEncoded"
        octets = "bytesReceived" if key.startswith("inbound") else "bytesSent"
        row: dict[str, Any] = {"kbit_per_s": (end[octets] - start[octets]) * 8 / 1000 / seconds}
        if key.endswith("video"):
            row["fps"] = (end.get(frames, 0) - start.get(frames, 0)) / seconds
            row["size"] = f"{end.get('frameWidth', '?')}x{end.get('frameHeight', '?')}"
            for extra in (
                "decoderImplementation",
                "encoderImplementation",
                "qualityLimitationReason",
            ):
                if extra in end:
                    row[extra] = end[extra]
            if "jitterBufferEmittedCount" in end:
                emitted = end["jitterBufferEmittedCount"] - start["jitterBufferEmittedCount"]
                delay = end["jitterBufferDelay"] - start["jitterBufferDelay"]
                row["jitter_buffer_ms"] = delay / emitted * 1000 if emitted else None
        rates[key] = row
    return rates


LATENCY_MEASURES = (  # the last one is the target's
    "kiosk camera -> frame received at helper",
    "kiosk camera -> helper's page has it (rVFC)",
    "kiosk camera -> helper's screen",
)


def latencies(frames: list[list[Any]], wall: tuple[float, float], offset_ms: float) -> dict:
    """The helper's readable frames shown within the window, on this process's clock: from the
    capture (the stamp) to each of the times the page recorded; and the target's p50 in each
    10 s of the window (the jitter buffer, and so the latency, can move during a call)."""
    measures = [Samples(name) for name in LATENCY_MEASURES]
    slices: dict[int, Samples] = {}
    per_frame = []
    for stamp, *times in frames:
        shown = times[-1] - offset_ms
        if not wall[0] * 1000 <= shown <= wall[1] * 1000:
            continue
        row = [round(shown / 1000 - wall[0], 3)]
        for samples, at in zip(measures, times, strict=True):
            late = None
            if at is not None:
                late = (at - offset_ms - stamp) % STAMP_WRAP  # stamps wrap at 2^32 ms
                late = late - STAMP_WRAP if late > STAMP_WRAP / 2 else late
                samples.add(late / 1000)
            row.append(late)
        per_frame.append(row)
        slices.setdefault(int(row[0] // 10), Samples("")).add(measures[-1].values[-1])
    return {
        "measures": [m.summary() for m in measures],
        "p50_ms_by_10s": [slices[k].summary()["p50_ms"] for k in sorted(slices)],
        "frames": {
            "columns": ["s into the window", *(f"{name}, ms" for name in LATENCY_MEASURES)],
            "rows": per_frame,
        },
    }


def per_second(states: list[tuple[float, dict[str, Any]]], key: str) -> list[float]:
    """The rate of a counter in the kiosk's `state` between consecutive samples."""
    return [
        (b[key] - a[key]) / (tb - ta)
        for (ta, a), (tb, b) in itertools.pairwise(states)
        if key in a and key in b and tb > ta
    ]


def rate_summary(values: list[float]) -> dict[str, Any]:
    v = sorted(values)
    return {
        "n": len(v),
        "p50": percentile(v, 50),
        "p5": percentile(v, 5),
        "min": v[0] if v else math.nan,
        "mean": sum(v) / len(v) if v else math.nan,
    }


@dataclass
class Browsers:
    """The Playwright handle, the helper's browser (one for all calls) and its pid."""

    playwright: Any
    helper: Any
    helper_pid: int
    executable: str


def helper_page(b: Browsers, hub_url: str, username: str) -> Any:
    """A helper logged in through the form in a fresh context, on duty."""
    from playwright.sync_api import expect

    context = b.helper.new_context(base_url=hub_url, **PAGE, **MEDIA)
    context.add_init_script(CAMERA_SCRIPT)
    context.add_init_script(HELPER_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log_in(page, username)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    page.get_by_test_id("duty-toggle").click()
    expect(page.get_by_test_id("duty-toggle")).to_have_attribute("aria-pressed", "true")
    return page


def log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))


def accept_and_connect(helper: Any) -> None:
    """The helper accepts the offer; returns once the helper's page plays the remote video."""
    from playwright.sync_api import expect

    helper.get_by_test_id("offer-accept").click()
    expect(helper.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect(helper.get_by_test_id("rtc-state")).to_have_attribute("data-state", "connected")
    helper.wait_for_function(PLAYED, arg="remote-video", polling=250)


def end_call(helper: Any) -> None:
    with suppress(Exception):
        helper.get_by_test_id("end-session").click()
        helper.get_by_test_id("end-confirm").click()
        helper.get_by_test_id("room-ended").wait_for(state="visible")
    helper.context.close()


def ask_at_the_kiosk(d: Any) -> None:
    """From the attract screen to the queue, as a student taps: a name, grade 9, maths, no
    photo, no note."""
    d.tap("start", timeout=SETUP_TIMEOUT_S)
    d.wait_screen("nickname")
    d.type("Bench")
    d.tap("grade.9")
    d.tap("next")
    d.wait_screen("subject")
    d.tap(next(w["id"] for w in d.tree() if w["id"].startswith("subject.")))
    d.tap("next")
    d.tap("skip")
    d.tap("ask")
    d.wait_screen("waiting", timeout=SETUP_TIMEOUT_S)


def wait_until(what: str, check: Callable[[], Any], timeout: float = SETUP_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: still {value!r} after {timeout:.0f} s")
        time.sleep(0.2)
    return value


def call_summary(
    w: Window, helper: Any, stats: tuple[Any, Any], offset: tuple[float, float]
) -> dict[str, Any]:
    """The window's figures, and what the helper's page saw in it."""
    bench = helper.evaluate("() => window.__lcBench")
    rss = sorted(kib / 1024 for kib in w.rss_kib)
    pss = sorted(kib / 1024 for kib in w.pss_kib)
    per_s = sorted(w.cpu_per_s)
    return {
        "window_s": w.seconds,
        "cpu_s": w.cpu_s,
        "cpu_share": w.cpu_s / w.seconds,
        "cpu_share_per_s": {"p50": percentile(per_s, 50), "max": per_s[-1] if per_s else None},
        "cpu_by_process": dict(sorted(w.cpu_by_role.items(), key=lambda kv: -kv[1])),
        "rss_mib": {"p50": percentile(rss, 50), "max": rss[-1] if rss else None},
        "pss_mib": {"p50": percentile(pss, 50), "max": pss[-1] if pss else None},
        "helper_cpu_s": w.helper_cpu_s,
        "hub_cpu_s": w.hub_cpu_s,
        "xvfb_cpu_s": w.xvfb_cpu_s,
        "bench_cpu_s": w.bench_cpu_s,
        "load_average": list(w.load),
        "rtp_at_helper": rtp_rates(*stats),
        "clock_offset_ms": {"offset": offset[0], "error": offset[1]},
        "latency": latencies(bench["frames"], w.wall, offset[0]),
        "stamps_unreadable": bench["unreadable"],
        "stamps_read": len(bench["frames"]),
    }


def kiosk_call(
    args: argparse.Namespace,
    b: Browsers,
    sh: SeededHub,
    data_dir: Path,
    helper_name: str,
    env: dict[str, str],
    xvfb: int | None = None,
) -> dict[str, Any]:
    """Call A: the kiosk student and a helper in Chromium, measured on the kiosk's side."""
    kiosk = KioskProcess(sh.hub.url, data_dir, env)
    helper = None
    try:
        d = kiosk.driver
        helper = helper_page(b, sh.hub.url, helper_name)
        ask_at_the_kiosk(d)
        accept_and_connect(helper)
        d.wait_screen("room", timeout=SETUP_TIMEOUT_S)
        wait_until("the kiosk's call", lambda: d.ok("state")["rtc"] == "connected")
        first = wait_until("frames at the kiosk", lambda: d.ok("state")["remote_frames"])
        wait_until("more frames at the kiosk", lambda: d.ok("state")["remote_frames"] > first)
        progress(f"  call connected; {args.warmup_s:g} s warm-up, {args.window_s:g} s measured")
        time.sleep(args.warmup_s)
        offset = clock_offset(helper)
        before = helper.evaluate(RTP_STATS)
        w = measure_window(args.window_s, kiosk.pid, b.helper_pid, sh.hub.pid, xvfb, kiosk)
        after = helper.evaluate(RTP_STATS)
        result = call_summary(w, helper, (before, after), offset)
        states = w.kiosk_states
        result["kiosk"] = {
            "ui_loop_fps": rate_summary(per_second(states, "frames_run")),
            "screen_updates_per_s": rate_summary(per_second(states, "frames_drawn")),
            "helper_frames_decoded_per_s": rate_summary(per_second(states, "remote_frames")),
            "vm_hwm_mib": (proc_kib(kiosk.pid, "status", "VmHWM") or 0) / 1024,
            "state_at_end": states[-1][1] if states else {},
        }
        return result
    except BaseException:
        progress(f"kiosk log tail:\n{kiosk.tail()}")
        raise
    finally:
        if helper is not None:
            end_call(helper)
        kiosk.stop()


def chromium_call(
    args: argparse.Namespace, b: Browsers, sh: SeededHub, helper_name: str
) -> dict[str, Any]:
    """Call B: a student in a Chromium of its own and a helper in Chromium, measured on the
    student's browser: its whole process tree."""
    from playwright.sync_api import expect

    known = browser_pids()
    student_browser = b.playwright.chromium.launch(executable_path=b.executable, args=CHROMIUM_ARGS)
    helper = None
    try:
        (student_pid,) = browser_pids() - known
        context = student_browser.new_context(base_url=sh.hub.url, **PAGE, **MEDIA)
        context.add_init_script(CAMERA_SCRIPT)
        student = context.new_page()
        student.set_default_timeout(TIMEOUT_MS)
        log_in(student, "student1")
        helper = helper_page(b, sh.hub.url, helper_name)
        student.get_by_test_id("ask-subject").select_option(label="Matematik")
        student.get_by_test_id("ask-submit").click()
        expect(student.get_by_test_id("queue-position")).to_have_text("1")
        accept_and_connect(helper)
        expect(student.get_by_test_id("rtc-state")).to_have_attribute("data-state", "connected")
        student.wait_for_function(PLAYED, arg="remote-video", polling=250)
        camera = student.evaluate(
            "() => { const v = document.querySelector('[data-testid=local-video]');"
            " const t = v && v.srcObject && v.srcObject.getVideoTracks()[0];"
            " return t ? t.getSettings() : null; }"
        )
        progress(f"  call connected; {args.warmup_s:g} s warm-up, {args.window_s:g} s measured")
        time.sleep(args.warmup_s)
        offset = clock_offset(helper)
        before = helper.evaluate(RTP_STATS)
        w = measure_window(args.window_s, student_pid, b.helper_pid, sh.hub.pid)
        after = helper.evaluate(RTP_STATS)
        result = call_summary(w, helper, (before, after), offset)
        result["student_camera"] = (
            {k: camera.get(k) for k in ("width", "height", "frameRate", "resizeMode")}
            if camera
            else None
        )
        result["processes"] = sorted(chromium_role(p) for p in process_tree(student_pid))
        return result
    finally:
        if helper is not None:
            end_call(helper)
        student_browser.close()


# ---------------------------------------------------------------------------------------------
# Report


def _call_lines(title: str, c: dict[str, Any], side: str) -> list[str]:
    lines = [
        "",
        title,
        f"  {side} CPU  {c['cpu_s']:.1f} s in {c['window_s']:.1f} s = {c['cpu_share']:.0%} of one "
        f"core (per second p50 {c['cpu_share_per_s']['p50']:.0%}, max "
        f"{c['cpu_share_per_s']['max']:.0%})",
        "    by process: "
        + ", ".join(f"{role} {s:.1f} s" for role, s in c["cpu_by_process"].items()),
        f"  memory     RSS p50 {c['rss_mib']['p50']:.0f} MiB, max {c['rss_mib']['max']:.0f} MiB; "
        f"PSS p50 {c['pss_mib']['p50']:.0f} MiB (sums over the processes: RSS counts shared "
        "pages in each)",
        f"  meanwhile  helper's Chromium {c['helper_cpu_s']:.1f} s CPU, hub "
        f"{c['hub_cpu_s']:.1f} s, bench {c['bench_cpu_s']:.1f} s"
        + (f", Xvfb {c['xvfb_cpu_s']:.1f} s" if c.get("xvfb_cpu_s") is not None else "")
        + "; load avg "
        + " -> ".join("/".join(f"{x:.1f}" for x in la) for la in c["load_average"]),
    ]
    for key, label in (
        ("inbound-rtp video", f"{side} -> helper"),
        ("outbound-rtp video", f"helper -> {side}"),
    ):
        r = c["rtp_at_helper"].get(key)
        if r:
            extra = r.get("qualityLimitationReason")
            lines.append(
                f"  video      {label}: {r['size']} {r['fps']:.1f} fps {r['kbit_per_s']:.0f} kbit/s"
                + (f" (limited by: {extra})" if extra and extra != "none" else "")
                + (
                    f", jitter buffer {r['jitter_buffer_ms']:.0f} ms"
                    if r.get("jitter_buffer_ms") is not None
                    else ""
                )
            )
    return lines


def _kiosk_lines(c: dict[str, Any]) -> list[str]:
    k = c["kiosk"]
    ui, drawn, decoded = (
        k["ui_loop_fps"],
        k["screen_updates_per_s"],
        k["helper_frames_decoded_per_s"],
    )
    ok = ui["n"] > 0 and ui["p5"] >= UI_TARGET_FPS
    return [
        f"  UI loop    p50 {ui['p50']:.1f} fps, p5 {ui['p5']:.1f}, min {ui['min']:.1f} "
        f"({ui['n']} one-second samples)   target >= {UI_TARGET_FPS:.0f}  {verdict(ok)}",
        f"  screen     updated p50 {drawn['p50']:.1f} times/s; helper's video decoded p50 "
        f"{decoded['p50']:.1f} frames/s; peak RSS (VmHWM) {k['vm_hwm_mib']:.0f} MiB",
    ]


def _latency_lines(c: dict[str, Any]) -> list[str]:
    measures = c["latency"]["measures"]
    shown = measures[-1]
    ok = shown["n"] > 0 and shown["p50_ms"] < LATENCY_TARGET_P50_MS
    lines = measure_table(
        measures, {shown["name"]: f"p50 < {LATENCY_TARGET_P50_MS:.0f} ms  {verdict(ok)}"}
    )
    by_10s = " / ".join(f"{ms:.0f}" for ms in c["latency"]["p50_ms_by_10s"])
    lines.append(f"  {shown['name']}: p50 in each 10 s of the window {by_10s} ms")
    off = c["clock_offset_ms"]
    lines.append(
        f"  clocks: the page's timeOrigin+now() - time.time() = {off['offset']:+.2f} ms "
        f"(+-{off['error']:.2f} ms), corrected; {c['stamps_unreadable']} frames unreadable"
    )
    return lines


def report(result: dict[str, Any]) -> str:
    lines = ["Lektiecafé kiosk benchmark", *machine_lines(result["machine"])]
    lines.append(f"  software  {result['software']}")
    lines.append(load_line(result["load_average_before"], result["load_average_after"]))
    start = result.get("cold_start")
    if start:
        lines += [
            "",
            f"Cold start: `lektiecafe kiosk`, SDL dummy driver, synthetic camera, paired, hub on "
            f"loopback; {start['starts']} starts",
            *measure_table(start["measures"], {}),
        ]
    calls = result["calls"]
    if "kiosk" in calls:
        a = calls["kiosk"]
        lines += _call_lines(
            f"Call A: kiosk (SDL dummy) <-> helper in Chromium, {WIDTH}x{HEIGHT} {FPS} fps both "
            f"ways; {a['window_s']:.0f} s measured after {result['config']['warmup_s']:g} s",
            a,
            "kiosk",
        )
        lines += _kiosk_lines(a)
        lines += _latency_lines(a)
    if "chromium" in calls:
        c = calls["chromium"]
        lines += _call_lines(
            "Call B: student in its own headless Chromium <-> the same helper, camera "
            f"{c.get('student_camera')}; same window",
            c,
            "Chromium",
        )
    if "kiosk" in calls and "chromium" in calls:
        ratio = calls["kiosk"]["cpu_s"] / calls["chromium"]["cpu_s"]
        lines.append(
            f"\n  CPU ratio kiosk / Chromium student = {ratio:.2f}   target <= "
            f"{CPU_TARGET_RATIO:g}  {verdict(ratio <= CPU_TARGET_RATIO)}"
        )
    if "kiosk_x11" in calls:
        x = calls["kiosk_x11"]
        lines += _call_lines("Call X: call A with the kiosk on X (Xvfb 1280x800x24)", x, "kiosk")
        lines += _kiosk_lines(x)
        lines += _latency_lines(x)
    lines.append(f"\n  config    {result['config']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Main


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.kiosk", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    p.add_argument("--starts", type=int, default=10, help="cold starts (0: none)")
    p.add_argument("--window-s", type=float, default=30.0, help="measured seconds of each call")
    p.add_argument("--warmup-s", type=float, default=10.0, help="call seconds before measuring")
    p.add_argument(
        "--calls",
        default="kiosk,chromium,x11",
        help="which calls, in this order: kiosk (A), chromium (B), x11 (the kiosk on Xvfb, when "
        "Xvfb is installed); empty: only the cold start",
    )
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--keep", action="store_true", help="keep the data dir (kiosk and hub logs)")
    p.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")
    return p


def _software(browser_version: str) -> str:
    import aiortc
    import pygame

    return (
        f"Chromium {browser_version} (headless), pygame {pygame.version.ver} "
        f"(SDL {'.'.join(map(str, pygame.get_sdl_version()))}), aiortc {aiortc.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import expect, sync_playwright

    from appliance.pairing import identity_from_answer
    from appliance.state import KioskState

    args = _parser().parse_args(argv)
    expect.set_options(timeout=TIMEOUT_MS)
    calls = [c for c in args.calls.split(",") if c]
    if "x11" in calls and shutil.which("Xvfb") is None:
        progress("no Xvfb on this machine (apt-get install xvfb): the x11 call is left out")
        calls.remove("x11")
    started_at = datetime.now(UTC)
    result: dict[str, Any] = {
        "benchmark": "kiosk",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_before": os.getloadavg(),
        "config": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"
        },
        "calls": {},
    }
    with (
        seeded_hub(None, PG_ADMIN, 1, 3, SECRET_KEY, HUB_ENV, keep=args.keep) as sh,
        sync_playwright() as p,
    ):
        data_dir = Path(tempfile.mkdtemp(prefix="kiosk-", dir=sh.db.data_dir))
        paired = pair_kiosk(sh.hub.url, sh.db.url, SECRET_KEY)
        state = KioskState(data_dir)
        state.store_identity(identity_from_answer(paired))
        state.close()
        if args.starts:
            progress(f"cold start: {args.starts} starts")
            result["cold_start"] = cold_start(sh.hub.url, data_dir, args.starts)
        known = browser_pids()
        helper = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        try:
            (helper_pid,) = browser_pids() - known
            b = Browsers(p, helper, helper_pid, args.chromium)
            result["software"] = _software(helper.version)
            for n, call in enumerate(calls, start=1):
                helper_name = f"helper{n}"  # a fresh helper for each call
                if call == "kiosk":
                    progress("call A: the kiosk (SDL dummy) and a helper in Chromium")
                    env = {"SDL_VIDEODRIVER": "dummy"}
                    result["calls"][call] = kiosk_call(args, b, sh, data_dir, helper_name, env)
                elif call == "chromium":
                    progress("call B: a student in Chromium and a helper in Chromium")
                    result["calls"][call] = chromium_call(args, b, sh, helper_name)
                elif call == "x11":
                    progress("call X: the kiosk on Xvfb and a helper in Chromium")
                    with xvfb_display() as (display, xvfb_pid):
                        env = {"SDL_VIDEODRIVER": "x11", "DISPLAY": display}
                        result["calls"]["kiosk_x11"] = kiosk_call(
                            args, b, sh, data_dir, helper_name, env, xvfb_pid
                        )
                else:
                    raise SystemExit(f"unknown call {call!r}: kiosk, chromium or x11")
        finally:
            helper.close()
    result["load_average_after"] = os.getloadavg()
    print(report(result), flush=True)
    target = write_results(result, args.json, f"kiosk-{started_at:%Y%m%d-%H%M%S}.json")
    print(f"\nresults written to {os.path.relpath(target)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
