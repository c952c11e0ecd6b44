"""Colours, fonts and sizes. The layout is designed for 1280×800 and scales with the window, so
touch targets stay at least 64 design pixels on any screen. Fonts come from Debian's DejaVu files
when installed (they cover æ, ø, å and more), else pygame's built-in font; never downloaded."""

from __future__ import annotations

from pathlib import Path

import pygame

DESIGN_W, DESIGN_H = 1280, 800

FONT_FILES = {
    False: Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    True: Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
}

# High contrast on a warm, friendly background; every text colour passes WCAG AA on its fill.
BACKGROUND = (253, 248, 239)
SURFACE = (255, 255, 255)
INK = (27, 29, 33)
MUTED = (84, 90, 99)
PRIMARY = (11, 92, 173)
PRIMARY_INK = (255, 255, 255)
PRIMARY_DOWN = (8, 66, 125)
SECONDARY = (232, 238, 246)
SECONDARY_DOWN = (201, 214, 232)
DANGER = (179, 38, 30)
SUCCESS = (29, 107, 51)
WARNING_FILL = (255, 240, 200)
ACCENT = (246, 174, 45)
BORDER = (150, 158, 170)
FOCUS = (246, 174, 45)
DISABLED = (205, 208, 214)
OVERLAY = (20, 24, 32, 190)
VIDEO_BACK = (33, 37, 45)
BOARD = (255, 255, 255)

Color = tuple[int, int, int]


class Theme:
    """Sizes in real pixels for the current window, and cached fonts and rendered text."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.scale = min(size[0] / DESIGN_W, size[1] / DESIGN_H)
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._texts: dict[tuple[str, int, bool, Color], pygame.Surface] = {}

    def px(self, design: float) -> int:
        return max(1, round(design * self.scale))

    def rect(self, x: float, y: float, w: float, h: float) -> pygame.Rect:
        """A rectangle given in design pixels."""
        return pygame.Rect(self.px(x), self.px(y), self.px(w), self.px(h))

    def font(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (self.px(size), bold)
        if key not in self._fonts:
            path = FONT_FILES[bold]
            font = pygame.font.Font(str(path) if path.exists() else None, key[0])
            if not path.exists():
                font.set_bold(bold)
            self._fonts[key] = font
        return self._fonts[key]

    def text(self, text: str, size: int, color: Color = INK, bold: bool = False) -> pygame.Surface:
        """Rendered text, cached: the same words are drawn again every frame."""
        key = (text, size, bold, color)
        cached = self._texts.get(key)
        if cached is None:
            if len(self._texts) > 2000:
                self._texts.clear()
            cached = self.font(size, bold).render(text, True, color)
            self._texts[key] = cached
        return cached

    def wrap(self, text: str, size: int, width: int, bold: bool = False) -> list[str]:
        """Lines of `text` that fit `width` pixels, breaking at spaces (and inside long words)."""
        font = self.font(size, bold)
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if font.size(candidate)[0] <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                line = word
                while font.size(line)[0] > width and len(line) > 1:
                    cut = len(line) - 1
                    while cut > 1 and font.size(line[:cut])[0] > width:
                        cut -= 1
                    lines.append(line[:cut])
                    line = line[cut:]
            lines.append(line)
        return lines
