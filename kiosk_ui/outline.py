"""The page on the photo screen: its outline found in the camera preview a few times a second,
and the scan of the photo taken, both with the hub's own page finder (pagescan). The work runs on
one background thread, on a small copy of the frame, so the preview stays smooth on a Pi; the
UI thread only hands over frames and picks up what was found.

Without OpenCV (an optional extra on the kiosk) nothing is found: the preview shows no outline,
the photo is shown as it was taken, and the hub still makes the scan."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

try:
    import pagescan
except ImportError:  # no OpenCV on this kiosk
    pagescan = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOOK_EVERY_S = 0.25  # the outline follows the page four times a second
LOOK_SIDE = 320  # px: the preview frame is searched at this size (the corners are scaled back)

Corners = tuple[tuple[float, float], ...]  # frame pixels: top left, top right, bottom right, ...

_pool: ThreadPoolExecutor | None = None


def available() -> bool:
    return pagescan is not None


def _work(job: Any, *args: Any) -> Future[Any]:
    global _pool
    if _pool is None:  # one thread for the kiosk's life, started on first use
        _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pagescan")
    return _pool.submit(job, *args)


def _corners(frame: np.ndarray) -> Corners | None:
    found = pagescan.find_page(frame, detect_side=LOOK_SIDE)
    return None if found is None else tuple((float(x), float(y)) for x, y in found)


def _scan(image: np.ndarray) -> np.ndarray | None:
    return pagescan.scan(image)


def _outcome(future: Future[Any]) -> Any:
    if future.exception() is not None:
        log.error("finding the page failed", exc_info=future.exception())
        return None
    return future.result()


class PageOutline:
    """The page's corners in the latest preview frame looked at (None: no page seen)."""

    def __init__(self) -> None:
        self.corners: Corners | None = None
        self._looking: Future[Corners | None] | None = None
        self._since = LOOK_EVERY_S  # seconds since the last look started

    def follow(self, frame: np.ndarray | None, dt: float) -> None:
        """Called every UI frame with the newest preview frame (RGB): picks up the last look's
        result and starts the next one when it is time."""
        self._since += dt
        if self._looking is not None and self._looking.done():
            self.corners = _outcome(self._looking)
            self._looking = None
        if frame is None or not available() or self._looking is not None:
            return
        if self._since >= LOOK_EVERY_S:
            self._since = 0.0
            self._looking = _work(_corners, frame)


def scan(image: np.ndarray) -> Future[np.ndarray | None] | None:
    """The scan of a photo (RGB) being made, or None when this kiosk cannot make scans."""
    return _work(_scan, image) if available() else None


def scan_result(future: Future[np.ndarray | None]) -> np.ndarray | None:
    """The finished scan, or None (no page was found, or finding it failed)."""
    result: np.ndarray | None = _outcome(future)
    return result
