"""The kiosk's replica of a room's shared document, with pycrdt (Yjs v1 updates, like the hub and
the browser's doc.js): a Y.Text "text" and a Y.Array "strokes" of Y.Maps in exactly the shape
hub/static/js/whiteboard.js draws (`mode`, `color`, `width`, `points` as a Y.Array of numbers).

Every local change is handed as an update to `on_update` (the room's DocLink sends it). There is
no outbox: what the hub has not stored is still in the document, and the sync exchange of the next
connection sends it (appliance/doclink.py). Not thread-safe by itself: the Visit and the DocLink
call it under the Visit's lock.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from pycrdt import Array, Doc, Map, Text

from lektiecafe.ysync import EMPTY_UPDATE

BOARD_W, BOARD_H = 1600, 1200  # whiteboard.js's board units
COLOR_DEFAULT = "#1b1d21"
Mode = Literal["pen", "erase"]
ERASER_COLOR = "#ffffff"  # what whiteboard.js stores for an eraser stroke


def diff_text(before: str, after: str) -> tuple[int, int, str]:
    """The one edit that turns `before` into `after`: (index, characters removed, inserted)."""
    limit = min(len(before), len(after))
    start = 0
    while start < limit and before[start] == after[start]:
        start += 1
    end = 0
    while end < limit - start and before[len(before) - 1 - end] == after[len(after) - 1 - end]:
        end += 1
    return start, len(before) - start - end, after[start : len(after) - end]


class DocReplica:
    """One room's document on the kiosk."""

    def __init__(self) -> None:
        self._doc: Doc = Doc()
        self._text = self._doc.get("text", type=Text)
        self._strokes = self._doc.get("strokes", type=Array)
        self.on_update: Callable[[bytes], None] = lambda _update: None  # each local change
        self._open_strokes: dict[int, Array] = {}  # handle → points of a stroke being drawn
        self._next_handle = 1

    # ---- from the hub ------------------------------------------------------------------------

    def load(self, state_b64: str | None) -> None:
        """The whole document from `room:join` (merged with what the replica has)."""
        if state_b64:
            self._doc.apply_update(base64.b64decode(state_b64))

    def apply(self, update: bytes) -> bool:
        """An update from the hub; False for one that cannot be read."""
        try:
            self._doc.apply_update(update)
        except Exception:
            return False
        return True

    def state_vector(self) -> bytes:
        return self._doc.get_state()

    def missing_for(self, state_vector: bytes) -> bytes:
        """What a copy at `state_vector` lacks of this one, as one update."""
        return self._doc.get_update(state_vector)

    # ---- reading -----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return str(self._text)

    def strokes(self) -> list[tuple[Mode, str, float, tuple[float, ...]]]:
        """(mode, color, width, flattened points) of every stroke, in drawing order."""
        found: list[tuple[Mode, str, float, tuple[float, ...]]] = []
        for stroke in self._strokes:
            if not isinstance(stroke, Map):
                continue
            points = stroke.get("points")
            mode: Mode = "erase" if stroke.get("mode") == "erase" else "pen"
            found.append(
                (
                    mode,
                    str(stroke.get("color") or COLOR_DEFAULT),
                    float(stroke.get("width") or 6),
                    tuple(float(p) for p in points) if isinstance(points, Array) else (),
                )
            )
        return found

    # ---- local changes -----------------------------------------------------------------------

    @contextmanager
    def _local(self) -> Iterator[None]:
        """One transaction whose update goes to `on_update`."""
        before = self._doc.get_state()
        with self._doc.transaction():
            yield
        update = self._doc.get_update(before)
        if update and update != EMPTY_UPDATE:
            self.on_update(update)

    def set_text(self, new_text: str) -> None:
        before = self.text
        index, removed, inserted = diff_text(before, new_text)
        if not removed and not inserted:
            return
        # pycrdt counts a Text's positions in UTF-8 bytes, not characters (æ, ø, å are two)
        start = len(before[:index].encode())
        end = start + len(before[index : index + removed].encode())
        with self._local():
            if removed:
                del self._text[start:end]
            if inserted:
                self._text.insert(start, inserted)

    def add_stroke(self, points: list[float], color: str, width: float, mode: Mode) -> int:
        handle = self._next_handle
        self._next_handle += 1
        line = Array([float(p) for p in _clamped(points)])
        with self._local():
            self._strokes.append(
                Map(
                    {
                        "mode": mode,
                        "color": ERASER_COLOR if mode == "erase" else color,
                        "width": float(width),
                        "points": line,
                    }
                )
            )
        self._open_strokes[handle] = self._strokes[len(self._strokes) - 1]["points"]
        return handle

    def extend_stroke(self, handle: int, points: list[float]) -> None:
        line = self._open_strokes.get(handle)
        if line is None or not points:
            return
        with self._local():
            line.extend([float(p) for p in _clamped(points)])

    def clear_board(self) -> None:
        if len(self._strokes) == 0:
            return
        self._open_strokes.clear()
        with self._local():
            del self._strokes[0 : len(self._strokes)]


def _clamped(points: list[float]) -> list[float]:
    """Points on the board (x within 0..BOARD_W, y within 0..BOARD_H), as whiteboard.js makes."""
    clamped = []
    for i, value in enumerate(points[: len(points) - len(points) % 2]):
        top = BOARD_W if i % 2 == 0 else BOARD_H
        clamped.append(min(top, max(0.0, float(value))))
    return clamped
