"""How fast a call starts: `offer:accept` clicked -> the first remote video frame on both sides.

    .venv/bin/python -m bench.video [--repeats 10] [--chromium /usr/bin/chromium]

Two headless Chromium pages with fake camera and microphone, a fresh match each time. Target
(issue 3): accept -> first frame p50 < 1 s. See bench/README.md."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.common import (
    CHROMIUM_ARGS,
    DEMO_PASSWORD,
    ON_REMOTE_VIDEO_JS,
    BenchUser,
    Samples,
    finish,
    hub_options,
    measure_table,
    new_result,
    on_fresh_hub,
    progress,
    report_header,
    subject_ids,
    verdict,
)

TARGET_P50_MS = 1000.0
# In every page before its scripts: the epoch-based time (performance.timeOrigin + now(), one
# clock for both pages of the same machine) of the accept click, of the first RTCPeerConnection
# (the page has entered the room), of the first frame the remote video element presents
# (requestVideoFrameCallback) and of the first time getStats() reports a decoded inbound video
# frame (polled every 10 ms).
TIMING_SCRIPT = (
    """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const t = (window.__lcTimes = {});
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest('[data-testid="offer-accept"]')) t.accept ??= now();
  }, true);
  function onRemoteVideo(video) {
    video.requestVideoFrameCallback(() => { t.frame ??= now(); });
  }
"""
    + ON_REMOTE_VIDEO_JS
    + """
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      t.peerConnection ??= now();
      const poll = async () => {
        if (t.decoded || this.connectionState === "closed") return;
        try {
          const stats = await this.getStats();
          stats.forEach((s) => {
            if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) {
              t.decoded ??= now();
            }
          });
        } catch (_) { /* closed meanwhile */ }
        if (!t.decoded) setTimeout(poll, 10);
      };
      setTimeout(poll, 10);
    }
  };
})();
"""
)


VIDEO_MEASURES = (  # (key in window.__lcTimes, what it is); the first is the target's
    ("frame", "first remote frame shown"),
    ("decoded", "framesDecoded > 0"),
    ("peerConnection", "room entered (RTCPeerConnection)"),
)


def run_calls(args: argparse.Namespace, hub_url: str, users: list[BenchUser]) -> dict[str, Any]:
    """Each round: a fresh student and helper log in through the form in their own browser
    contexts, the student asks, the helper goes on duty and clicks accept; then both pages are
    watched until their remote video presents a frame."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    subject = subject_ids(hub_url, users[0].token)[0]
    measures = {
        (role, key): Samples(f"{role}: accept -> {label}")
        for key, label in VIDEO_MEASURES
        for role in ("student", "helper")
    }
    rounds: list[dict[str, Any]] = []
    timeout_ms = args.timeout_s * 1000
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        version = browser.version
        try:
            for i in range(1, args.repeats + 1):
                contexts = [browser.new_context(base_url=hub_url, locale="da-DK") for _ in "sh"]
                try:
                    pages = {}
                    for role, context in zip(("student", "helper"), contexts, strict=True):
                        context.add_init_script(TIMING_SCRIPT)
                        page = context.new_page()
                        page.set_default_timeout(timeout_ms)
                        page.goto("/login")
                        page.get_by_test_id("login-username").fill(f"{role}{i}")
                        page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
                        page.get_by_test_id("login-submit").click()
                        page.wait_for_url(lambda url: not url.endswith("/login"))
                        pages[role] = page
                    student, helper = pages["student"], pages["helper"]
                    student.get_by_test_id("ask-subject").select_option(str(subject))
                    student.get_by_test_id("ask-submit").click()
                    expect(student.get_by_test_id("queue-position")).to_have_text("1")
                    expect(helper.get_by_test_id("connection")).to_have_attribute(
                        "data-state", "connected"
                    )
                    helper.get_by_test_id("duty-toggle").click()
                    helper.get_by_test_id("offer-accept").click()
                    times = {}
                    for role, page in pages.items():
                        page.wait_for_function(
                            "() => window.__lcTimes.frame && window.__lcTimes.decoded",
                            timeout=timeout_ms,
                        )
                        times[role] = page.evaluate("() => window.__lcTimes")
                except PlaywrightError as exc:
                    for samples in measures.values():
                        samples.fail(type(exc).__name__)
                    progress(f"  round {i}: failed: {str(exc).splitlines()[0]}")
                    continue
                finally:
                    for context in contexts:
                        context.close()
                accept = times["helper"]["accept"]
                for (role, key), samples in measures.items():
                    samples.add((times[role][key] - accept) / 1000)
                rounds.append({r: {k: v - accept for k, v in t.items()} for r, t in times.items()})
                progress(
                    f"  round {i}: first frame at the student after "
                    f"{times['student']['frame'] - accept:.0f} ms, "
                    f"at the helper after {times['helper']['frame'] - accept:.0f} ms"
                )
        finally:
            browser.close()
    return {
        "repeats": args.repeats,
        "browser": f"Chromium {version} ({args.chromium}), headless, fake camera and microphone",
        "measures": [m.summary() for m in measures.values()],
        "rounds_ms": rounds,
    }


def report(result: dict[str, Any]) -> str:
    v = result["video"]
    lines = report_header("Lektiecafé call start benchmark", result)
    lines += ["", f"Call start, browser to browser: {v['repeats']} fresh matches, {v['browser']}"]
    target = f"p50 < {TARGET_P50_MS:.0f} ms"
    verdicts = {
        m["name"]: f"{target}  {verdict(m['n'] > 0 and m['p50_ms'] < TARGET_P50_MS)}"
        for m in v["measures"]
        if m["name"].endswith(VIDEO_MEASURES[0][1])
    }
    lines += measure_table(v["measures"], verdicts)
    lines.append(f"\n  config    {json.dumps(result['config'])}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("calls")
    g.add_argument("--repeats", type=int, default=10, help="fresh matches, one after the other")
    g.add_argument("--timeout-s", type=float, default=30.0, help="per step of a round")
    g.add_argument("--chromium", default="/usr/bin/chromium")
    hub_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = new_result("video", args)
    result["video"], result["database"] = on_fresh_hub(
        args, args.repeats, lambda url, users, _pid: run_calls(args, url, users)
    )
    return finish(result, report, args.json)


if __name__ == "__main__":
    sys.exit(main())
