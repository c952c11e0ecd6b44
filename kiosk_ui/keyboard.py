"""The on-screen keyboard: Danish layout (æ, ø, å), big keys, a shift key and a "done" key. It only
produces keys; the focused text field of the screen decides what they do. A physical keyboard
sends the same keys (see `keys_from_event`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pygame

from kiosk_ui.i18n import _
from kiosk_ui.theme import Theme
from kiosk_ui.widgets import Key

BACKSPACE, ENTER, SHIFT, SPACE, HIDE = "backspace", "enter", "shift", "space", "hide"

ROWS = [
    [*"1234567890", BACKSPACE],
    list("qwertyuiopå"),
    list("asdfghjklæø"),
    [SHIFT, *"zxcvbnm,.?"],
    [SPACE, ENTER],
]
HEIGHT = 5 * 64 + 4 * 8  # design pixels


def keyboard(
    theme: Theme,
    area: pygame.Rect,
    on_key: Callable[[str], None],
    shift: bool,
    enter_label: str = "",
    closable: bool = False,
) -> list[Key]:
    """Keys filling `area` (real pixels); `on_key` gets a character or BACKSPACE, ENTER, SHIFT
    (and HIDE, from the key that puts a `closable` keyboard away)."""
    gap = theme.px(8)
    columns = 11
    key_w = (area.w - gap * (columns - 1)) // columns
    key_h = (area.h - gap * (len(ROWS) - 1)) // len(ROWS)
    labels = {
        BACKSPACE: "⌫",
        SHIFT: "⇧",
        SPACE: _("space"),
        ENTER: enter_label or _("Done"),
        HIDE: _("Hide"),
    }
    rows = [*ROWS[:-1], [HIDE, *ROWS[-1]]] if closable else ROWS
    widths = {SPACE: 6 if closable else 8, ENTER: 3, HIDE: 2}
    keys: list[Key] = []
    for r, row in enumerate(rows):
        y = area.y + r * (key_h + gap)
        x = area.x
        for name in row:
            span = widths.get(name, 1)
            width = key_w * span + gap * (span - 1)
            char = " " if name == SPACE else name.upper() if shift and len(name) == 1 else name
            keys.append(
                Key(
                    id=f"key.{name}",
                    rect=pygame.Rect(x, y, width, key_h),
                    text=labels.get(name, char),
                    on_tap=partial(on_key, char),
                    style="primary"
                    if name == ENTER
                    else "secondary"
                    if name == HIDE
                    else "surface",
                    selected=name == SHIFT and shift,
                    size=30,
                )
            )
            x += width + gap
    return keys


def keys_from_event(event: pygame.event.Event) -> list[str]:
    """What a physical keyboard event types, in the on-screen keyboard's terms."""
    if event.type == pygame.TEXTINPUT:
        return [" " if c == " " else c for c in event.text if c.isprintable()]
    if event.type == pygame.KEYDOWN:
        if event.key == pygame.K_BACKSPACE:
            return [BACKSPACE]
        if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            return [ENTER]
    return []
