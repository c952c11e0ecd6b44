"""Time the worksheet scan on the hub's own code: per photo, at 1280×720 (a kiosk webcam) and at
12 MP (4000×3000, a phone), the whole upload path (`clean_upload`: decode, scale to 2400 px,
scan, encode JPEG) and the scan alone (`scan.scan` on the decoded, scaled picture). The photos
are the tests' own (tests/test_scan.py: a worksheet at an angle, shaded, noisy).

    .venv/bin/python -m bench.scan            # 30 runs each
    .venv/bin/python -m bench.scan --runs 100
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import pagescan as scan
from hub.attachments.service import MAX_SIDE, clean_upload
from tests.test_scan import jpeg_of, photograph, webcam_corners, worksheet

SIZES = {"1280x720": (1280, 720), "12MP": (4000, 3000)}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python, opencv = platform.python_version(), cv2.__version__
    return f"{cpu}, {os.cpu_count()} cores, Python {python}, OpenCV {opencv}"


def timings(fn, runs: int) -> dict[str, float]:
    fn()  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return {"median_ms": statistics.median(times), "p99_ms": p99, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    results: dict[str, object] = {"machine": machine(), "opencv_threads": cv2.getNumThreads()}
    print(results["machine"], f"(OpenCV threads: {cv2.getNumThreads()})")
    print(f"{'photo':<10} {'measure':<14} {'median ms':>10} {'p99 ms':>10}")
    for name, frame in SIZES.items():
        scale = frame[0] / 1280  # the kiosk's framing, centred in a 4:3 frame
        corners = webcam_corners(scale) + np.array([0, (frame[1] - 720 * scale) / 2])
        data = jpeg_of(photograph(worksheet(), frame, corners.astype(np.float32)))
        picture = Image.open(io.BytesIO(data)).convert("RGB")
        picture.thumbnail((MAX_SIDE, MAX_SIDE))
        pixels = np.asarray(picture)
        assert scan.scan(pixels) is not None, "the bench photo has no page found"
        for measure, fn in (
            ("upload path", lambda data=data: clean_upload(data, 64 * 1024 * 1024)),
            ("scan alone", lambda pixels=pixels: scan.scan(pixels)),
        ):
            figures = timings(fn, args.runs)
            results[f"{name} {measure}"] = figures
            median, p99 = figures["median_ms"], figures["p99_ms"]
            print(f"{name:<10} {measure:<14} {median:>10.1f} {p99:>10.1f}")
    out = Path(__file__).parent / "results" / f"scan-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print("written", out)


if __name__ == "__main__":
    main()
