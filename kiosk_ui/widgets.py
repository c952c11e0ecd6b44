"""A tiny widget toolkit. A screen declares its widgets afresh from its state every frame (cheap:
rectangles and strings), so the tree the test driver reports is always what is on the glass, and
nothing of a visit survives in a widget once the state that produced it is gone.

Every widget has an `id`, a `kind`, a `text` and a `rect`; `signature()` says what would change
its pixels, so the app redraws only when something did."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pygame

from kiosk_ui import theme as t
from kiosk_ui.theme import Color, Theme

Icon = Callable[[pygame.Surface, pygame.Rect, Color], None]
Tap = Callable[[], None]


def rounded(
    surface: pygame.Surface,
    rect: pygame.Rect,
    fill: Color,
    radius: int,
    border: Color | None = None,
    width: int = 0,
) -> None:
    pygame.draw.rect(surface, fill, rect, border_radius=radius)
    if border is not None and width:
        pygame.draw.rect(surface, border, rect, width, border_radius=radius)


def blit_center(surface: pygame.Surface, image: pygame.Surface, center: tuple[int, int]) -> None:
    surface.blit(image, image.get_rect(center=center))


@dataclass(eq=False)
class Widget:
    id: str
    rect: pygame.Rect
    text: str = ""
    on_tap: Tap | None = None
    enabled: bool = True
    kind = "widget"
    opaque = False  # paints every pixel of its rect, so it can be redrawn alone

    @property
    def tappable(self) -> bool:
        return self.on_tap is not None and self.enabled

    def describe(self) -> dict[str, Any]:
        r = self.rect
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "rect": [r.x, r.y, r.w, r.h],
            "enabled": self.enabled,
        }

    def signature(self) -> tuple[Any, ...]:
        return (self.id, self.kind, self.text, tuple(self.rect), self.enabled)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        raise NotImplementedError


@dataclass(eq=False)
class Box(Widget):
    """A plain rounded panel behind other widgets."""

    fill: Color = t.SURFACE
    border: Color | None = None
    kind = "box"

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        rounded(surface, self.rect, self.fill, theme.px(18), self.border, theme.px(2))


@dataclass(eq=False)
class Label(Widget):
    size: int = 28
    color: Color = t.INK
    bold: bool = False
    align: str = "left"  # left | center
    kind = "label"

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), self.size, self.color, self.bold)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        lines = theme.wrap(self.text, self.size, self.rect.w, self.bold)
        height = theme.font(self.size, self.bold).get_linesize()
        y = self.rect.y
        if self.align == "center":
            y = self.rect.centery - height * len(lines) // 2
        for line in lines:
            if y + height > self.rect.bottom + height // 3:
                break
            image = theme.text(line, self.size, self.color, self.bold)
            x = self.rect.x if self.align == "left" else self.rect.centerx - image.get_width() // 2
            surface.blit(image, (x, y))
            y += height


STYLES: dict[str, tuple[Color, Color, Color]] = {
    # style: (fill, fill when pressed, text)
    "primary": (t.PRIMARY, t.PRIMARY_DOWN, t.PRIMARY_INK),
    "secondary": (t.SECONDARY, t.SECONDARY_DOWN, t.INK),
    "danger": (t.DANGER, (128, 26, 20), t.PRIMARY_INK),
    "success": (t.SUCCESS, (18, 72, 34), t.PRIMARY_INK),
    "surface": (t.SURFACE, t.SECONDARY_DOWN, t.INK),
}


@dataclass(eq=False)
class Button(Widget):
    style: str = "primary"
    size: int = 30
    icon: Icon | None = None
    selected: bool = False
    caption: bool = True  # False: the icon alone shows what it does (the text is for the tree)
    kind = "button"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "selected": self.selected}

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), self.style, self.selected, self.size)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        fill, down, ink = STYLES[self.style]
        if not self.enabled:
            fill, ink = t.DISABLED, t.MUTED
        rect = self.rect.move(0, theme.px(2)) if pressed else self.rect
        if not pressed and self.enabled:
            shadow = rect.move(0, theme.px(4))
            rounded(surface, shadow, (210, 200, 185), theme.px(16))
        if self.selected and self.style in ("secondary", "surface"):
            fill = t.WARNING_FILL
        rounded(surface, rect, down if pressed else fill, theme.px(16))
        if self.selected:
            pygame.draw.rect(surface, t.FOCUS, rect, theme.px(6), border_radius=theme.px(16))
        elif self.style in ("secondary", "surface"):
            pygame.draw.rect(surface, t.BORDER, rect, theme.px(2), border_radius=theme.px(16))
        if self.icon is not None:
            self._draw_with_icon(surface, theme, rect, ink)
            return
        lines = theme.wrap(self.text, self.size, rect.w - theme.px(16), bold=True)
        height = theme.font(self.size, True).get_linesize()
        images = [theme.text(line, self.size, ink, True) for line in lines]
        y = rect.centery - height * len(images) // 2
        for image in images:
            surface.blit(image, (rect.centerx - image.get_width() // 2, y))
            y += height

    def _draw_with_icon(
        self, surface: pygame.Surface, theme: Theme, rect: pygame.Rect, ink: Color
    ) -> None:
        assert self.icon is not None
        if not self.caption:
            side = min(rect.w, rect.h) - theme.px(24)
            self.icon(
                surface,
                pygame.Rect(0, 0, side, side).move(
                    rect.centerx - side // 2, rect.centery - side // 2
                ),
                ink,
            )
            return
        text_h = theme.font(self.size, True).get_linesize() if self.text else 0
        side = min(rect.w - theme.px(24), rect.h - text_h - theme.px(28))
        art = pygame.Rect(0, 0, side, side)
        art.midtop = (rect.centerx, rect.y + theme.px(12))
        self.icon(surface, art, ink)
        if self.text:
            line = theme.wrap(self.text, self.size, rect.w - theme.px(12), True)[0]
            image = theme.text(line, self.size, ink, True)
            blit_center(surface, image, (rect.centerx, rect.bottom - theme.px(10) - text_h // 2))


@dataclass(eq=False)
class Key(Button):
    """One key of the on-screen keyboard."""

    style: str = "surface"
    kind = "keyboard_key"


@dataclass(eq=False)
class TextInput(Widget):
    """A text field. The text lives in the screen; a tap focuses it (the keyboard then types)."""

    placeholder: str = ""
    focused: bool = False
    size: int = 30
    multiline: bool = False
    kind = "text_input"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "focused": self.focused, "placeholder": self.placeholder}

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), self.focused, self.placeholder)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        border = t.FOCUS if self.focused else t.BORDER
        rounded(
            surface, self.rect, t.SURFACE, theme.px(12), border, theme.px(4 if self.focused else 2)
        )
        inner = self.rect.inflate(-theme.px(28), -theme.px(16))
        shown, color = (self.text, t.INK) if self.text else (self.placeholder, t.MUTED)
        height = theme.font(self.size).get_linesize()
        if self.multiline:
            lines = theme.wrap(shown, self.size, inner.w)
            visible = max(1, inner.h // height)
            lines = lines[-visible:]  # the end, where the cursor is
            y = inner.y
        else:
            line = shown
            font = theme.font(self.size)
            while font.size(line)[0] > inner.w - theme.px(8) and len(line) > 1:
                # Keep the end of the text in view while typing; cut a long placeholder's end.
                line = line[1:] if self.text else line[:-2] + "…"
            lines = [line]
            y = inner.centery - height // 2
        for line in lines:
            surface.blit(theme.text(line, self.size, color), (inner.x, y))
            y += height
        if self.focused:
            last = lines[-1] if self.text else ""
            x = inner.x + theme.font(self.size).size(last)[0] + theme.px(2)
            top = y - height + theme.px(4)
            pygame.draw.rect(surface, t.PRIMARY, (x, top, theme.px(3), height - theme.px(8)))


@dataclass(eq=False)
class Picture(Widget):
    """A still picture (the assignment photo), scaled to fit its rect."""

    image: pygame.Surface | None = None
    kind = "image"
    opaque = True

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), id(self.image))

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        pygame.draw.rect(surface, t.VIDEO_BACK, self.rect)
        if self.image is not None:
            blit_fitted(surface, self.image, self.rect)


def blit_fitted(surface: pygame.Surface, image: pygame.Surface, rect: pygame.Rect) -> None:
    """Scale `image` to fit inside `rect`, keeping its shape (letterboxed)."""
    w, h = image.get_size()
    factor = min(rect.w / w, rect.h / h)
    size = (max(1, int(w * factor)), max(1, int(h * factor)))
    scaled = image if size == (w, h) else pygame.transform.scale(image, size)
    surface.blit(scaled, scaled.get_rect(center=rect.center))


def frame_surface(frame: Any) -> pygame.Surface:
    """A pygame surface over an RGB frame (a numpy array, height × width × 3, uint8), no copy."""
    height, width = frame.shape[:2]
    return pygame.image.frombuffer(memoryview(frame).cast("B"), (width, height), "RGB")


@dataclass(eq=False)
class Video(Widget):
    """Live video: the newest frame from the media engine, or a friendly placeholder text.
    `outline`: corners in the frame's pixels (the page found in the photo screen's preview),
    drawn as a closed line over the picture."""

    frame: Any = None
    mirror: bool = False
    outline: Sequence[tuple[float, float]] | None = None
    kind = "video"
    opaque = True

    def describe(self) -> dict[str, Any]:
        live = self.frame is not None
        outline = [list(corner) for corner in self.outline] if self.outline else None
        return {**super().describe(), "live": live, "outline": outline}

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), id(self.frame), self.outline)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        pygame.draw.rect(surface, t.VIDEO_BACK, self.rect)
        if self.frame is None:
            lines = theme.wrap(self.text, 26, self.rect.w - theme.px(24))
            height = theme.font(26).get_linesize()
            y = self.rect.centery - height * len(lines) // 2
            for line in lines:
                image = theme.text(line, 26, t.PRIMARY_INK)
                surface.blit(image, (self.rect.centerx - image.get_width() // 2, y))
                y += height
            return
        image = frame_surface(self.frame)
        if self.mirror:
            image = pygame.transform.flip(image, True, False)
        clip = surface.get_clip()
        surface.set_clip(self.rect)
        blit_fitted(surface, image, self.rect)
        if self.outline and self.frame is not None:
            self._draw_outline(surface, theme, image.get_size())
        surface.set_clip(clip)

    def _draw_outline(self, surface: pygame.Surface, theme: Theme, size: tuple[int, int]) -> None:
        w, h = size
        factor = min(self.rect.w / w, self.rect.h / h)
        left = self.rect.centerx - w * factor / 2
        top = self.rect.centery - h * factor / 2
        points = [
            (left + ((w - x) if self.mirror else x) * factor, top + y * factor)
            for x, y in self.outline or ()
        ]
        pygame.draw.lines(surface, t.ACCENT, True, points, theme.px(5))


@dataclass
class Item:
    id: str
    text: str
    mine: bool = False
    note: bool = False  # a notice from the kiosk itself (a blocked message), not a message
    pending: bool = False  # sent, not yet confirmed by the hub: drawn greyed


@dataclass(eq=False)
class ChatList(Widget):
    """Chat messages as bubbles, newest at the bottom; older ones scroll off the top."""

    items: Sequence[Item] = ()
    kind = "list"
    opaque = True

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "items": [{"id": i.id, "text": i.text} for i in self.items]}

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), tuple((i.id, i.text, i.pending) for i in self.items))

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        rounded(surface, self.rect, t.SURFACE, theme.px(14), t.BORDER, theme.px(2))
        inner = self.rect.inflate(-theme.px(20), -theme.px(20))
        height = theme.font(24).get_linesize()
        pad = theme.px(10)
        y = inner.bottom
        clip = surface.get_clip()
        surface.set_clip(inner)
        for item in reversed(self.items):
            lines = theme.wrap(item.text, 24, int(inner.w * 0.8) - 2 * pad)
            bubble_h = height * len(lines) + 2 * pad
            width = max(theme.font(24).size(line)[0] for line in lines) + 2 * pad
            y -= bubble_h
            x = inner.right - width if item.mine else inner.x
            fill = t.WARNING_FILL if item.note else (t.SECONDARY if item.mine else (241, 236, 226))
            rounded(surface, pygame.Rect(x, y, width, bubble_h), fill, theme.px(12))
            for i, line in enumerate(lines):
                color = t.DANGER if item.note else t.MUTED if item.pending else t.INK
                surface.blit(theme.text(line, 24, color), (x + pad, y + pad + i * height))
            y -= theme.px(8)
            if y < inner.y:
                break
        surface.set_clip(clip)


BOARD_SIZE = (1600, 1200)  # board units, as in hub/static/js/whiteboard.js
Ink = tuple[Sequence[float], Color, float]  # flat x0, y0, x1, y1, … in board units; colour; width


class BoardPainter:
    """Keeps the whiteboard painted on a surface. Strokes only grow while they are drawn and new
    ones come at the end, so usually only the new ink is painted; anything else (clear, an
    eraser stroke from the other side) paints the board afresh."""

    def __init__(self) -> None:
        self.image: pygame.Surface | None = None
        self._painted: list[tuple[Color, float, int]] = []  # colour, width, points painted

    def paint(self, strokes: Sequence[Ink], size: tuple[int, int]) -> pygame.Surface:
        if self.image is None or self.image.get_size() != size:
            self.image = pygame.Surface(size)
            self._painted = []
            self._fresh()
        keys = [(color, width) for _flat, color, width in strokes]
        grown = len(strokes) >= len(self._painted) and all(
            keys[i] == (c, w) and len(strokes[i][0]) >= n
            for i, (c, w, n) in enumerate(self._painted)
        )
        if not grown:
            self._painted = []
            self._fresh()
        factor = size[0] / BOARD_SIZE[0]
        for i, (flat, color, width) in enumerate(strokes):
            done = self._painted[i][2] if i < len(self._painted) else 0
            if done == len(flat):
                continue
            start = max(0, done - 2)  # join the new piece to the last painted point
            points = [
                (flat[j] * factor, flat[j + 1] * factor) for j in range(start, len(flat) - 1, 2)
            ]
            line_w = max(1, round(width * factor))
            for point in points:
                pygame.draw.circle(self.image, color, point, line_w / 2)
            if len(points) > 1:
                pygame.draw.lines(self.image, color, False, points, line_w)
            entry = (color, width, len(flat))
            if i < len(self._painted):
                self._painted[i] = entry
            else:
                self._painted.append(entry)
        return self.image

    def _fresh(self) -> None:
        assert self.image is not None
        self.image.fill(t.BOARD)


@dataclass(eq=False)
class Canvas(Widget):
    """The whiteboard, 4:3, centred in the widget; the strokes come painted by a BoardPainter."""

    painter: BoardPainter | None = None
    strokes: Sequence[Ink] = ()
    kind = "canvas"
    opaque = True

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "strokes": len(self.strokes)}

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), tuple((len(f), c, w) for f, c, w in self.strokes))

    def board_rect(self) -> pygame.Rect:
        factor = min(self.rect.w / BOARD_SIZE[0], self.rect.h / BOARD_SIZE[1])
        rect = pygame.Rect(0, 0, int(BOARD_SIZE[0] * factor), int(BOARD_SIZE[1] * factor))
        rect.center = self.rect.center
        return rect

    def to_board(self, pos: tuple[int, int]) -> tuple[float, float]:
        area = self.board_rect()
        x = (pos[0] - area.x) / area.w * BOARD_SIZE[0]
        y = (pos[1] - area.y) / area.h * BOARD_SIZE[1]
        return (min(max(x, 0.0), BOARD_SIZE[0]), min(max(y, 0.0), BOARD_SIZE[1]))

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        pygame.draw.rect(surface, t.BACKGROUND, self.rect)
        area = self.board_rect()
        if self.painter is not None:
            surface.blit(self.painter.paint(self.strokes, area.size), area)
        pygame.draw.rect(surface, t.BORDER, area, theme.px(2))


@dataclass(eq=False)
class Countdown(Widget):
    """Seconds left, as a big number in a ring that empties."""

    seconds: float = 0.0
    total: float = 1.0
    kind = "countdown"

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), round(self.seconds * 10))

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        radius = min(self.rect.w, self.rect.h) // 2
        center = self.rect.center
        pygame.draw.circle(surface, t.SECONDARY_DOWN, center, radius)
        share = max(0.0, min(1.0, self.seconds / self.total))
        if share > 0:  # the time left as a slice, emptying clockwise from the top
            steps = max(2, int(72 * share))
            points = [center] + [
                (
                    center[0] + radius * math.sin(2 * math.pi * share * i / steps),
                    center[1] - radius * math.cos(2 * math.pi * share * i / steps),
                )
                for i in range(steps + 1)
            ]
            pygame.draw.polygon(surface, t.ACCENT, points)
        pygame.draw.circle(surface, t.SURFACE, center, radius - theme.px(16))
        blit_center(surface, theme.text(self.text, 64, t.INK, True), center)


@dataclass(eq=False)
class Tile(Widget):
    """A tile of a mini-game: draws its face with `art` (or its back when `art` is None)."""

    art: Icon | None = None
    fill: Color = t.PRIMARY
    kind = "game_tile"

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), self.fill, self.art is None)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        rect = self.rect.inflate(-theme.px(4), -theme.px(4)) if pressed else self.rect
        rounded(surface, rect, self.fill, theme.px(14))
        if self.art is not None:
            self.art(surface, rect.inflate(-rect.w // 4, -rect.h // 4), t.INK)
        else:
            pygame.draw.circle(surface, (255, 255, 255), rect.center, rect.w // 6, theme.px(4))
