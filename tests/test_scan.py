"""The worksheet scan (pagescan) on photographs made here: a known worksheet (text
lines and a grid) on a darker table, seen at a known angle, with a shadow across it and camera
noise. The scan must find the page's corners within a few pixels, and the flattened page must
look like the worksheet (structural similarity); a photo with no page is kept as it is; and
through the real hub, the stored attachment of such a photo is the flattened page."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

import pagescan as scan
from tests.test_attachments import upload

PAGE = (840, 1188)  # width, height: A4's proportions (1 : √2)
CORNER_TOLERANCE_PX = 4.0
SSIM_BAR = 0.70


def worksheet(size: tuple[int, int] = PAGE) -> np.ndarray:
    """A white page with a heading, lines of text and a squared grid (RGB)."""
    width = size[0]
    page = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(page)
    unit = width / 840
    draw.text((60 * unit, 50 * unit), "Opgave 3: Lineære funktioner", fill=(0, 0, 0),
              font_size=int(34 * unit))  # fmt: skip
    for row in range(12):
        y = (130 + row * 40) * unit
        words = f"{row + 1}. Find haeldningen for linjen gennem (2,{row}) og (5,{row * 2 + 1})."
        draw.text((60 * unit, y), words, fill=(20, 20, 20), font_size=int(22 * unit))
    top, left, cell = 650 * unit, 60 * unit, 36 * unit
    for i in range(21):
        x = left + i * cell
        draw.line([(x, top), (x, top + 13 * cell)], fill=(60, 60, 160), width=max(1, int(unit)))
    for j in range(14):
        y = top + j * cell
        draw.line([(left, y), (left + 20 * cell, y)], fill=(60, 60, 160), width=max(1, int(unit)))
    return np.asarray(page).copy()


def photograph(
    page: np.ndarray,
    frame: tuple[int, int],
    corners: np.ndarray,
    seed: int = 1,
) -> np.ndarray:
    """`page` lying on a brown table, its corners at `corners` in a `frame` (width, height)
    photo, lit from one side (a gradient down to 55 %) and with sensor noise."""
    width, height = frame
    rng = np.random.default_rng(seed)
    table = np.empty((height, width, 3), np.float32)
    table[:] = (96, 70, 48)
    grain = cv2.GaussianBlur(rng.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 3)
    table += grain[..., None]
    h, w = page.shape[:2]
    source = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    warp = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
    seen = cv2.warpPerspective(page, warp, frame, flags=cv2.INTER_AREA).astype(np.float32)
    inside = cv2.warpPerspective(np.ones((h, w), np.float32), warp, frame, flags=cv2.INTER_AREA)
    photo = seen * inside[..., None] + table * (1 - inside[..., None])
    xs = np.linspace(1.0, 0.55, width, dtype=np.float32)
    ys = np.linspace(1.0, 0.85, height, dtype=np.float32)
    light = np.outer(ys, xs)[..., None] * np.array([1.0, 0.96, 0.88], np.float32)  # warm, dim
    photo = photo * light + np.asarray(rng.normal(0, 6, size=photo.shape), np.float32)
    return np.clip(photo, 0, 255).astype(np.uint8)


def webcam_corners(scale: float = 1.0) -> np.ndarray:
    """Where an A4 page lies in a 1280×720 kiosk photo: a pinhole camera (focal length 1000 px,
    looking through the photo's centre) 50 cm from the page, tilted 30° and turned 6°."""
    w, h = 0.210, 0.297
    page = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]]) / 2
    tilt, turn = np.radians(30), np.radians(6)
    rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    rz = np.array([[np.cos(turn), -np.sin(turn), 0], [np.sin(turn), np.cos(turn), 0], [0, 0, 1]])
    seen = page @ (rx @ rz).T + np.array([0.02, 0.02, 0.5])
    corners = 1000 * seen[:, :2] / seen[:, 2:] + np.array([640, 360])
    return (corners * scale).astype(np.float32)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two grey images (Wang et al. 2004, 11×11 Gaussian σ 1.5)."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(m: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(m, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    score = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(score.mean())


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@pytest.mark.parametrize("frame, scale", [((1280, 720), 1.0), ((4000, 2250), 4000 / 1280)])
def test_the_corners_of_a_page_photographed_at_an_angle_are_found_within_a_few_pixels(frame, scale):
    known = webcam_corners(scale)
    photo = photograph(worksheet(), frame, known)
    found = scan.find_page(photo)
    assert found is not None
    error = np.linalg.norm(found - known, axis=1)
    assert error.max() < CORNER_TOLERANCE_PX * max(1.0, scale / 2), (found, known)


def test_the_flattened_page_matches_the_worksheet():
    page = worksheet()
    photo = photograph(page, (1280, 720), webcam_corners())
    scanned = scan.scan(photo)
    assert scanned is not None
    height, width = scanned.shape[:2]
    assert abs(width / height - PAGE[0] / PAGE[1]) < 0.05  # the page's shape, not the photo's
    original = cv2.resize(grey(page), (width, height), interpolation=cv2.INTER_AREA)
    text = (slice(int(0.03 * height), int(0.95 * height)), slice(int(0.05 * width), None))
    score = ssim(grey(scanned)[text], original[text])
    assert score > SSIM_BAR, score
    # Evened out: the shadowed right side of the paper is as light as the left.
    left = np.median(grey(scanned)[:, : width // 10])
    right = np.median(grey(scanned)[:, -width // 10 :])
    assert min(left, right) > 230 and abs(float(left) - float(right)) < 12
    # Without the scan the photo itself scores far lower: the test measures the flattening.
    unflat = cv2.resize(grey(photo), (width, height), interpolation=cv2.INTER_AREA)
    assert ssim(unflat[text], original[text]) < score - 0.3


def test_even_out_lifts_a_shadow_and_keeps_the_print_dark():
    page = worksheet((420, 594))
    shaded = (page * np.linspace(1.0, 0.5, 420, dtype=np.float32)[None, :, None]).astype(np.uint8)
    even = grey(scan.even_out(shaded))
    ink = grey(page) < 100
    assert np.median(even[~ink]) > 240 and np.percentile(even[~ink][:, None], 5) > 200
    assert np.median(even[ink]) < 90


@pytest.mark.parametrize(
    "photo",
    [
        np.random.default_rng(3).integers(0, 256, (720, 1280, 3), dtype=np.uint8),  # noise
        np.full((720, 1280, 3), (180, 176, 170), np.uint8),  # a plain wall
        cv2.GaussianBlur(  # a wall with soft light on it
            np.random.default_rng(4).normal(170, 25, (720, 1280, 3)).astype(np.uint8), (0, 0), 30
        ),
    ],
    ids=["noise", "plain wall", "lit wall"],
)
def test_no_page_is_found_where_there_is_none(photo):
    assert scan.find_page(photo) is None
    assert scan.scan(photo) is None


def jpeg_of(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, "JPEG", quality=92)
    return out.getvalue()


def stored(hub, attachment_id: str) -> Image.Image:
    import requests

    seen = requests.get(
        f"{hub.url}/api/attachments/{attachment_id}",
        headers={"Authorization": f"Bearer {hub.token('student1')}"},
        timeout=10,
    )
    assert seen.status_code == 200 and seen.headers["Content-Type"] == "image/jpeg"
    return Image.open(io.BytesIO(seen.content))


def test_the_hub_stores_the_scan_of_a_worksheet_photo(hub):
    photo = photograph(worksheet(), (1280, 720), webcam_corners())
    r = upload(hub, "student1", jpeg_of(photo), "opgave.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    picture = stored(hub, r.json()["attachment_id"])
    width, height = picture.size
    assert abs(width / height - PAGE[0] / PAGE[1]) < 0.05, picture.size  # portrait, not 16:9
    pixels = grey(np.asarray(picture.convert("RGB")))
    corner = max(4, width // 30)
    for patch in (
        pixels[:corner, :corner],
        pixels[:corner, -corner:],
        pixels[-corner:, :corner],
        pixels[-corner:, -corner:],
    ):
        assert patch.mean() > 200, patch.mean()  # paper in every corner: no table left
    assert (pixels < 100).mean() > 0.01  # the print is there


def test_the_hub_keeps_a_photo_without_a_page_as_it_is(hub):
    wall = cv2.GaussianBlur(
        np.random.default_rng(5).normal(150, 30, (720, 1280, 3)).astype(np.uint8), (0, 0), 20
    )
    r = upload(hub, "student1", jpeg_of(wall), "væg.jpg", "image/jpeg")
    assert r.status_code == 201, r.text
    picture = stored(hub, r.json()["attachment_id"])
    assert picture.size == (1280, 720)
    kept = np.asarray(picture.convert("RGB")).astype(np.int16)
    assert np.abs(kept - wall).mean() < 4  # re-encoded, not changed


def upload_with_scan(hub, photo: np.ndarray, scan_field: str):
    import requests

    return requests.post(
        hub.url + "/api/attachments",
        files={"file": ("opgave.jpg", jpeg_of(photo), "image/jpeg")},
        data={"scan": scan_field},
        headers={"Authorization": f"Bearer {hub.token('student1')}"},
        timeout=10,
    )


def test_the_hub_stores_the_original_photo_when_asked_not_to_scan(hub):
    photo = photograph(worksheet(), (1280, 720), webcam_corners())
    r = upload_with_scan(hub, photo, "0")
    assert r.status_code == 201, r.text
    picture = stored(hub, r.json()["attachment_id"])
    assert picture.size == (1280, 720)  # the whole photo, table and all: not flattened
    kept = np.asarray(picture.convert("RGB")).astype(np.int16)
    assert np.abs(kept - photo).mean() < 10  # its noise through two JPEG encodings
    scanned = upload_with_scan(hub, photo, "1")
    assert scanned.status_code == 201, scanned.text
    assert stored(hub, scanned.json()["attachment_id"]).size != (1280, 720)


@pytest.mark.parametrize("value", ["", "no", "2", "true"])
def test_the_hub_refuses_a_scan_field_that_is_not_0_or_1(hub, value):
    r = upload_with_scan(hub, photograph(worksheet(), (1280, 720), webcam_corners()), value)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"] == {"fields": {"scan": "invalid"}}
