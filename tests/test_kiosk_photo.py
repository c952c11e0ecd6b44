"""The kiosk's photo screen with a worksheet held up to the camera: the real kiosk program (pygame
on SDL's dummy driver, its test driver) whose synthetic camera shows a photographed worksheet at
a known angle (tests/test_scan.py makes it), against a real hub. The page's outline is drawn over
the preview where the page is; after the photo the scan is shown; retake goes back to the
preview; "Send" has the hub store the flattened scan, "Use the original" the photo as it is."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from kiosk_ui import theme as t
from kiosk_ui.driver import DriverClient
from tests.conftest import ROOT
from tests.kiosks import pair_into
from tests.test_kiosk import big_enough_to_touch, to_the_photo_screen
from tests.test_matching import on_duty
from tests.test_scan import photograph, webcam_corners, worksheet

pytestmark = pytest.mark.kiosk

FRAME = (640, 360)  # the synthetic camera's picture: width, height
CORNERS = webcam_corners(FRAME[0] / 1280)  # where the page's corners are in it
OUTLINE_TOLERANCE_PX = 5.0

# The kiosk program as `lektiecafe kiosk --windowed --test-driver` starts it, with the synthetic
# camera showing a picture file (Options.fake_picture; the command line has no option for it).
LAUNCH = """
import sys
if sys.argv[4] == "without-opencv":
    sys.modules["cv2"] = None  # as on a kiosk without the extra: importing cv2 fails
from pathlib import Path
from appliance.visit import Options
from kiosk_ui.app import run
from kiosk_ui.settings import Settings
hub, data_dir, picture = sys.argv[1:4]
options = Options(
    hub_url=hub, data_dir=Path(data_dir), fake_camera=True, fake_picture=Path(picture)
)
sys.exit(run(options, Settings(), windowed=True, driver_path=Path(data_dir) / "driver.sock"))
"""


@pytest.fixture
def worksheet_kiosk(hub: Any, tmp_path: Path) -> Iterator[Callable[..., DriverClient]]:
    """Start a paired kiosk whose camera sees the worksheet; its test driver."""
    picture = tmp_path / "worksheet.png"
    Image.fromarray(photograph(worksheet(), FRAME, CORNERS)).save(picture)
    started: list[tuple[subprocess.Popen[bytes], DriverClient]] = []

    def start(opencv: bool = True) -> DriverClient:
        data_dir = tmp_path / f"kiosk{len(started)}"
        pair_into(hub, data_dir)
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCH,
                hub.url,
                str(data_dir),
                str(picture),
                "with-opencv" if opencv else "without-opencv",
            ],
            cwd=ROOT,
            env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
            stdout=(data_dir / "kiosk.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        driver = DriverClient(data_dir / "driver.sock", timeout=30)
        started.append((process, driver))
        return driver

    yield start
    for process, driver in started:
        driver.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def outline_of(d: DriverClient, timeout: float = 10) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while True:
        outline = d.wait_for("preview")["outline"]
        if outline:
            return np.array(outline, np.float32)
        assert time.monotonic() < deadline, "no outline over the preview"
        time.sleep(0.1)


def on_screen(preview: dict[str, Any], point: np.ndarray) -> tuple[int, int]:
    """Where a point of the camera frame is drawn inside the preview (fitted, letterboxed)."""
    x, y, w, h = preview["rect"]
    factor = min(w / FRAME[0], h / FRAME[1])
    left, top = x + (w - FRAME[0] * factor) / 2, y + (h - FRAME[1] * factor) / 2
    return round(left + point[0] * factor), round(top + point[1] * factor)


def ask_and_get_the_photo(hub: Any, d: DriverClient) -> Image.Image:
    """From the question screen: ask, and the photo the helper is offered, as stored."""
    helper = hub.client("helper1")
    on_duty(helper)
    d.wait_screen("question")
    d.type("opgave 3")
    d.tap("ask")
    d.wait_screen("waiting")
    offer = helper.wait_for("offer", timeout=15)
    (photo,) = offer["request"]["attachments"]
    seen = requests.get(
        hub.url + photo["url"], headers={"Authorization": f"Bearer {helper.token}"}, timeout=10
    )
    assert seen.status_code == 200 and seen.headers["Content-Type"] == "image/jpeg"
    return Image.open(io.BytesIO(seen.content))


def test_the_page_outline_follows_the_worksheet_and_the_scan_is_sent(
    hub, worksheet_kiosk, tmp_path
):
    d = worksheet_kiosk()
    to_the_photo_screen(d)

    # The outline's corners are where the page's corners are in the camera picture...
    found = outline_of(d)
    error = np.linalg.norm(found - CORNERS, axis=1)
    assert error.max() < OUTLINE_TOLERANCE_PX, (found, CORNERS)
    # ...and it is drawn there: the middle of each side is the outline's colour on the screen.
    shot = tmp_path / "photo-outline.png"
    d.screenshot(shot)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    preview = d.wait_for("preview")
    for i in range(4):
        x, y = on_screen(preview, (CORNERS[i] + CORNERS[(i + 1) % 4]) / 2)
        patch = pixels[y - 4 : y + 5, x - 4 : x + 5]
        assert (np.abs(patch - t.ACCENT).sum(axis=2) < 40).any(), (i, patch[4, 4])

    # The photo: its scan shown big, with large buttons; retake goes back to the live preview.
    d.tap("take")
    scan = d.wait_for("scan")
    assert scan["text"] == "Din side, scannet"
    assert [d.wait_for(b)["text"] for b in ("use", "retake", "original")] == [
        "Send",
        "Tag igen",
        "Brug originalen",
    ]
    big_enough_to_touch(d)
    d.screenshot(tmp_path / "photo-scan.png")
    d.tap("retake")
    d.wait_for("preview", live=True)
    assert d.widget("scan") is None and d.widget("use") is None
    assert outline_of(d) is not None

    # Send: the hub stores the page flattened (portrait, A4's proportions), not the 16:9 photo.
    d.tap("take")
    d.wait_for("scan")
    d.tap("use")
    picture = ask_and_get_the_photo(hub, d)
    width, height = picture.size
    assert abs(width / height - 210 / 297) < 0.05, picture.size


def test_use_the_original_has_the_hub_keep_the_photo_as_it_was_taken(hub, worksheet_kiosk):
    d = worksheet_kiosk()
    to_the_photo_screen(d)
    d.tap("take")
    d.wait_for("scan")
    d.tap("original")
    picture = ask_and_get_the_photo(hub, d)
    assert picture.size == FRAME  # the whole picture, table and all
    taken = photograph(worksheet(), FRAME, CORNERS).astype(np.int16)
    assert np.abs(np.asarray(picture.convert("RGB")).astype(np.int16) - taken).mean() < 12


def test_a_kiosk_without_opencv_shows_no_outline_and_the_hub_still_scans(hub, worksheet_kiosk):
    d = worksheet_kiosk(opencv=False)
    to_the_photo_screen(d)
    deadline = time.monotonic() + 2  # the outline would be there within a second
    while time.monotonic() < deadline:
        assert d.wait_for("preview")["outline"] is None
        time.sleep(0.1)
    d.tap("take")
    assert d.wait_for("photo")["text"] == "Dit billede"  # the photo as taken: no scan here
    assert d.widget("original") is None and d.widget("scan") is None
    d.tap("use")
    width, height = ask_and_get_the_photo(hub, d).size
    assert abs(width / height - 210 / 297) < 0.05, (width, height)  # the hub made the scan
