"""The base of every screen and overlay, and `Host`, all a screen may use of the program around
it. Screens are small classes with `handle(event)`, `update(dt)`, `draw(surface)` and `widgets()`,
the declared widget tree. The base turns pointer events into taps on buttons and drags on canvases,
and keyboard input (on-screen or physical) into edits of the focused text field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import pygame

from appliance.visit import Visit, VisitView
from kiosk_ui import theme as t
from kiosk_ui.draft import Draft
from kiosk_ui.keyboard import BACKSPACE, ENTER, HIDE, SHIFT, keys_from_event
from kiosk_ui.settings import Settings
from kiosk_ui.theme import Theme
from kiosk_ui.widgets import Canvas, Widget

DragPhase = Literal["down", "move", "up"]


@dataclass
class TextField:
    """The text of one field, edited at its end (where a finger on a small screen expects it)."""

    text: str = ""
    limit: int = 200
    multiline: bool = False

    def apply(self, key: str) -> bool:
        """Apply one key; True when it was ENTER on a one-line field (the field's action)."""
        if key == BACKSPACE:
            self.text = self.text[:-1]
        elif key == ENTER:
            if not self.multiline:
                return True
            if len(self.text) < self.limit:
                self.text += "\n"
        elif len(self.text) < self.limit:
            self.text += key
        return False


class Host(Protocol):
    """What a screen may use of the program around it (kiosk_ui.app.App is the one there is).
    Screens show the next screen themselves; the host shows the one a new phase of the visit
    needs."""

    @property
    def visit(self) -> Visit:
        """The student's visit: the screens' requests go to it (appliance.visit)."""

    @property
    def view(self) -> VisitView:
        """The visit as of this frame."""

    @property
    def draft(self) -> Draft:
        """What the student has chosen so far in this visit."""

    @property
    def settings(self) -> Settings: ...

    @property
    def theme(self) -> Theme: ...

    @property
    def screen(self) -> Screen:
        """The screen shown (under the overlays)."""

    def show(self, screen: Screen) -> None:
        """Show `screen` instead of the one shown (and without the overlays)."""

    def open(self, overlay: Screen) -> None: ...

    def close(self, overlay: Screen) -> None: ...

    def activity(self) -> None:
        """Someone is here: restart the idle clock and take "Are you still there?" away."""

    def switch_language(self, lang: str) -> None: ...

    def wipe(self) -> None:
        """Finish the visit on the hub and forget it here (the draft too)."""

    def home(self) -> None:
        """The attract screen, in the kiosk's own language."""

    def end_visit(self) -> None:
        """`wipe()`, then `home()`."""


class Screen:
    """One screen (or an overlay above it). Subclasses declare `widgets()` from their state."""

    name = "screen"
    # True when the screen shows a visit's data: the app leaves it when the visit ends.
    visit_screen = True
    # Which idle timeout applies: "normal", "room" (longer, remote activity counts), or None.
    idle: str | None = "normal"
    modal = True  # an overlay that takes every event (the screen under it gets none)

    def __init__(self, host: Host) -> None:
        self.host = host
        self.tree: list[Widget] = []  # what was last drawn: taps are tested against it
        self.pressed: str | None = None
        self.dragging: Canvas | None = None
        self.focus: str | None = None  # the id of the focused text field
        self.shift = False

    @property
    def theme(self) -> Theme:
        return self.host.theme

    def widgets(self) -> list[Widget]:
        return []

    def refresh(self) -> list[Widget]:
        self.tree = self.widgets()
        return self.tree

    def leave(self) -> None:
        """No longer shown: drop the widgets, whose taps refer back to the screen, so the screen
        and what the student typed on it are freed at once, not by a later garbage collection."""
        self.tree = []
        self.pressed = self.dragging = self.focus = None

    def widget_at(self, pos: tuple[int, int]) -> Widget | None:
        for widget in reversed(self.tree):
            if widget.rect.collidepoint(pos) and (widget.tappable or isinstance(widget, Canvas)):
                return widget
        return None

    def handle(self, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            target = self.widget_at(event.pos)
            if isinstance(target, Canvas):
                self.dragging = target
                self.drag(target, "down", event.pos)
            elif target is not None:
                self.pressed = target.id
        elif event.type == pygame.MOUSEMOTION and self.dragging is not None:
            self.drag(self.dragging, "move", event.pos)
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            if self.dragging is not None:
                self.drag(self.dragging, "up", event.pos)
                self.dragging = None
            target = self.widget_at(event.pos)
            if target is not None and target.id == self.pressed and target.on_tap is not None:
                self.pressed = None
                target.on_tap()
            self.pressed = None
        else:
            for key in keys_from_event(event):
                self.key(key)

    def key(self, key: str) -> None:
        """A key from the on-screen keyboard or a physical one."""
        if key == SHIFT:
            self.shift = not self.shift
            return
        if key == HIDE:
            self.focus = None
            return
        field = self.fields().get(self.focus or "")
        if field is None:
            return
        if field.apply(key):
            self.submit(self.focus or "")
        if len(key) == 1 and key.isalpha():
            self.shift = False

    def fields(self) -> dict[str, TextField]:
        """The screen's text fields by widget id."""
        return {}

    def submit(self, field_id: str) -> None:
        """ENTER in a one-line field."""

    def drag(self, canvas: Canvas, phase: DragPhase, pos: tuple[int, int]) -> None:
        """A finger or mouse drawing on a canvas."""

    def update(self, dt: float) -> None:
        """Advance time by `dt` seconds (animations, polling the visit's futures)."""

    def draw(self, surface: pygame.Surface) -> None:
        surface.fill(t.BACKGROUND)
        self.draw_widgets(surface)

    def draw_widgets(self, surface: pygame.Surface) -> None:
        for widget in self.tree:
            widget.draw(surface, self.theme, widget.id == self.pressed)
