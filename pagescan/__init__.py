"""A photo of a worksheet made to look like a scan: the page's four corners found, the perspective
flattened, shadows and colour cast evened out and the contrast raised, so print and handwriting
read clearly. Plain functions on RGB images (numpy arrays, height × width × 3, uint8).

The page is looked for on a small copy (edges, then the biggest four-sided outline); its sides are
then fitted as straight lines to every point of that outline, which places the corners to within
a pixel or two even where a corner is dog-eared or under a thumb. When nothing page-like is found
(a plain wall, a close-up, a page filling the whole frame) the caller keeps the photo as it is.

Shared by the hub (hub/attachments/service.py scans every attachment photo) and the kiosk
(kiosk_ui/outline.py: the page's outline over the camera preview, the scan shown before it is
sent), so it needs only OpenCV and numpy: no Flask, no pygame. OpenCV is an optional extra on the
kiosk; without it the kiosk just shows no outline."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

# OpenCV's stubs type every array loosely; these names say what each one holds.
Image = NDArray[Any]  # uint8, height × width × 3 (RGB) or height × width (grey)
Corners = NDArray[Any]  # float32, 4 × 2, (x, y): top left, top right, bottom right, bottom left

DETECT_SIDE = 720  # the page is looked for on a copy this long (px): quick, and enough
MIN_AREA = 0.15  # the page covers at least this share of the photo...
MAX_AREA = 0.97  # ...and less than all of it (else there is no table around it to find)
MIN_SIDE_PX = 64  # smaller photos are not scanned
EDGE_WIDENING_PX = 1.0  # how far the dilated edges stand outside the page's true edge


def find_page(image: Image, detect_side: int = DETECT_SIDE) -> Corners | None:
    """The page's four corners in `image`'s pixels, ordered top left, top right, bottom right,
    bottom left; None when no page is seen. The page is looked for on a copy at most
    `detect_side` long (smaller is quicker and a little less exact)."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE_PX:
        return None
    scale = min(1.0, detect_side / max(height, width))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    # Closing (a max then a min filter) paints over dark print on the page, so only its outline
    # is left to find; the blur keeps table grain and noise from making edges.
    gray = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    gray = cv2.GaussianBlur(gray, (5, 5), 0)
    area = gray.shape[0] * gray.shape[1]
    for mask in _outlines(gray):
        contours, _hierarchy = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:3]:
            if not MIN_AREA * area <= cv2.contourArea(contour) <= MAX_AREA * area:
                continue
            quad = _quadrilateral(contour)
            if quad is not None and not _the_frame(quad, gray.shape[1], gray.shape[0]):
                return (quad / scale).astype(np.float32)
    return None


def _the_frame(quad: Corners, width: int, height: int) -> bool:
    """Whether the outline is the photo's own edge (three corners or more at its border)."""
    margin = 0.02 * max(width, height)
    x, y = quad[:, 0], quad[:, 1]
    near = (x < margin) | (y < margin) | (x > width - 1 - margin) | (y > height - 1 - margin)
    return int(near.sum()) >= 3


def _outlines(gray: Image) -> list[Image]:
    """Two guesses at the page's outline: its edges, and a light/dark split (Otsu)."""
    median = float(np.median(gray))
    edges = cv2.Canny(gray, int(max(0, 0.5 * median)), int(min(255, 1.2 * median)))
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    _t, light = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return [edges, light]


def _quadrilateral(contour: NDArray[Any]) -> Corners | None:
    hull = cv2.convexHull(contour)
    perimeter = cv2.arcLength(hull, True)
    approx = cv2.approxPolyDP(hull, 0.02 * perimeter, True)
    if len(approx) != 4 or not cv2.isContourConvex(approx):
        return None
    corners = _ordered(approx.reshape(4, 2).astype(np.float32))
    refined = _fit_sides(contour.reshape(-1, 2).astype(np.float32), corners)
    return refined if refined is not None else corners


def _ordered(points: Corners) -> Corners:
    """Top left, top right, bottom right, bottom left (clockwise on screen)."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    clockwise = points[np.argsort(angles)]  # from the left, through the top (y grows downwards)
    start = int(np.argmin(clockwise.sum(axis=1)))  # the top left has the smallest x + y
    return np.roll(clockwise, -start, axis=0)


def _fit_sides(points: NDArray[Any], corners: Corners) -> Corners | None:
    """Each side as a straight line through the outline's points near it (leaving out those close
    to a corner), and the corners where these lines meet."""
    lines = []
    for i in range(4):
        a, b = corners[i], corners[(i + 1) % 4]
        length = float(np.linalg.norm(b - a))
        if length < 8:
            return None
        direction = (b - a) / length
        normal = np.array([-direction[1], direction[0]], np.float32)
        along = (points - a) @ direction
        off = np.abs((points - a) @ normal)
        near = points[(along > 0.1 * length) & (along < 0.9 * length) & (off < 0.03 * length + 3)]
        if len(near) < 10:
            return None
        vx, vy, x0, y0 = cv2.fitLine(near, cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        # The outline was traced on edges widened by a pixel: move the side back onto the edge.
        inward = np.array([-vy, vx])
        if float(inward @ normal) < 0:
            inward = -inward
        lines.append((np.array([x0, y0]) + EDGE_WIDENING_PX * inward, np.array([vx, vy])))
    meets = []
    for i in range(4):
        (p, u), (q, v) = lines[i - 1], lines[i]
        matrix = np.array([u, -v]).T
        if abs(np.linalg.det(matrix)) < 1e-6:
            return None
        t = np.linalg.solve(matrix, q - p)[0]
        meets.append(p + t * u)
    found = np.array(meets, np.float32)
    if np.max(np.linalg.norm(found - corners, axis=1)) > 0.05 * cv2.arcLength(corners, True):
        return None  # the fit went astray: keep the rougher corners
    return found


def flatten(image: Image, corners: Corners) -> Image:
    """The page seen straight on: the quadrilateral `corners` warped to a rectangle as wide as
    the page's longer top or bottom side and as high as the page's own proportions give (from
    the perspective, for a camera looking through the photo's centre; Zhang & He 2007)."""
    tl, tr, br, bl = corners.astype(np.float64)
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    ratio = _aspect(corners, image.shape[1] / 2, image.shape[0] / 2)
    if ratio is not None and 0.2 < ratio < 5:
        height = width / ratio
    w, h = max(2, round(width)), max(2, round(height))
    target = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(
        image, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _aspect(corners: Corners, u0: float, v0: float) -> float | None:
    """Width / height of the rectangle whose picture is `corners`, or None when unsure."""
    tl, tr, br, bl = (np.array([x, y, 1.0]) for x, y in corners.astype(np.float64))
    k2 = np.cross(tl, br) @ bl / (np.cross(tr, br) @ bl)
    k3 = np.cross(tl, br) @ tr / (np.cross(bl, br) @ tr)
    n2, n3 = k2 * tr - tl, k3 * bl - tl
    if abs(n2[2] * n3[2]) < 1e-9:  # seen straight on: no perspective to read a focal length from
        return float(np.hypot(n2[0], n2[1]) / np.hypot(n3[0], n3[1]))
    f2 = -(
        (n2[0] * n3[0] - (n2[0] * n3[2] + n2[2] * n3[0]) * u0 + n2[2] * n3[2] * u0 * u0)
        + (n2[1] * n3[1] - (n2[1] * n3[2] + n2[2] * n3[1]) * v0 + n2[2] * n3[2] * v0 * v0)
    ) / (n2[2] * n3[2])
    if f2 <= 0:
        return float(np.hypot(n2[0], n2[1]) / np.hypot(n3[0], n3[1]))
    inverse = np.linalg.inv(np.array([[np.sqrt(f2), 0, u0], [0, np.sqrt(f2), v0], [0, 0, 1]]))
    a, b = inverse @ n2, inverse @ n3
    return float(np.sqrt((a @ a) / (b @ b)))


def even_out(image: Image) -> Image:
    """Shadows, uneven light and colour cast removed, contrast raised: each colour channel divided
    by an estimate of the bare paper behind it (the print closed over, then smoothed, on a small
    copy), then stretched so the paper is white and the print dark."""
    height, width = image.shape[:2]
    scale = min(1.0, 512 / max(height, width))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    stroke = max(3, round(min(small.shape[:2]) / 40)) | 1  # wider than a pen line on the copy
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, np.ones((stroke, stroke), np.uint8))
    paper = cv2.medianBlur(paper, 2 * stroke + 1)
    paper = cv2.GaussianBlur(paper, (0, 0), stroke)
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = image.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    # The darkest print to black, the paper (ratio about 1) to white; a gentle curve after it.
    dark = float(np.percentile(flat, 0.5))
    light = 0.92
    if light - dark < 0.05:
        return image
    stretched = np.clip((flat - dark) / (light - dark), 0.0, 1.0) ** 1.3
    return (stretched * 255.0 + 0.5).astype(np.uint8)


def scan(image: Image) -> Image | None:
    """The scanned page, or None when no page is found (keep the photo as it is)."""
    corners = find_page(image)
    if corners is None:
        return None
    return even_out(flatten(image, corners))
