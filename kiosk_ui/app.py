"""The kiosk program: one window, one `appliance.visit.Visit`, the screen and the overlays above it,
the idle timeout, and a 60 fps main loop that redraws only what changed.

The screen follows the visit: each frame takes `visit.snapshot()` and, when the phase changes,
shows the screen for it (asking → subject, waiting → queue and games, in_room → room, ended →
feedback). Screens move along inside a phase themselves (attract → nickname, subject → photo).

Settings site staff push from the hub (the visit's snapshot carries them) apply from the next
frame: timeouts at once, a notice on the attract screen, a new language on the attract screen at
once and otherwise from the next visit."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

import pygame

from appliance.visit import Options, Visit, VisitView
from kiosk_ui import i18n
from kiosk_ui.draft import Draft
from kiosk_ui.driver import Request, TestDriver
from kiosk_ui.screen import Screen
from kiosk_ui.screens.ask import SubjectScreen
from kiosk_ui.screens.attract import AttractScreen
from kiosk_ui.screens.feedback import FeedbackScreen
from kiosk_ui.screens.overlays import ConnectionNotice, IdlePrompt
from kiosk_ui.screens.pairing import PairingScreen
from kiosk_ui.screens.room import RoomScreen
from kiosk_ui.screens.waiting import WaitingScreen
from kiosk_ui.settings import Settings
from kiosk_ui.theme import DESIGN_H, DESIGN_W, Theme
from kiosk_ui.widgets import Widget
from lektiecafe.sdnotify import notify, watchdog_interval_s

log = logging.getLogger(__name__)

FPS = 60
RESTART_EXIT = 75  # "start me again": the unit's Restart=on-failure does (docs/kiosk.md)
INPUT = (
    pygame.MOUSEBUTTONDOWN,
    pygame.MOUSEBUTTONUP,
    pygame.KEYDOWN,
    pygame.TEXTINPUT,
    pygame.FINGERDOWN,
    pygame.MOUSEWHEEL,
)


class App:
    """The screens' `Host` (kiosk_ui.screen): the visit, this frame's view of it, the draft, the
    settings, and which screen and overlays are shown."""

    def __init__(
        self,
        visit: Visit,
        settings: Settings,
        surface: pygame.Surface,
        driver: TestDriver | None = None,
    ) -> None:
        self.visit = visit
        self.own_settings = settings  # from the command line
        self.surface = surface
        self.driver = driver
        self.theme = Theme(surface.get_size())
        self.view: VisitView = visit.snapshot()
        self.settings = settings.pushed(self.view.settings)
        i18n.set_language(self.settings.lang)
        self.phase = self.view.phase
        self.draft = Draft()
        self.overlays: list[Screen] = []
        self.notice = ConnectionNotice(self)
        self.idle_for = 0.0
        self.running = True
        self.exit_code = 0
        self.fps = 0.0
        self.frames_run = 0  # since the start; and those that changed the screen (bench/kiosk.py)
        self.frames_drawn = 0
        self._drawn: list[Any] | None = None  # signatures of what is on the glass
        self.screen: Screen = self._first_screen()

    def stop(self, exit_code: int) -> None:
        """Leave the main loop after this frame (from a signal handler or another thread)."""
        self.exit_code = exit_code
        self.running = False

    # ---- navigation ----------------------------------------------------------------------

    @property
    def layers(self) -> list[Screen]:
        return [self.screen, *self.overlays, self.notice]

    def show(self, screen: Screen) -> None:
        """`screen` instead of the one shown, without the overlays above it; those left are
        freed at once (what the student typed with them)."""
        left, self.screen = [self.screen, *self.overlays], screen
        self.overlays = []
        self.idle_for = 0.0
        for layer in left:
            layer.leave()

    def open(self, overlay: Screen) -> None:
        self.overlays.append(overlay)

    def close(self, overlay: Screen) -> None:
        if overlay in self.overlays:
            self.overlays.remove(overlay)
            overlay.leave()

    def switch_language(self, lang: str) -> None:
        i18n.set_language(lang)
        self.visit.set_language("en" if lang == "en" else "da")

    def wipe(self) -> None:
        """Finish the visit on the hub (its request or room is closed) and forget it here."""
        self.visit.finish()
        self.draft = Draft()

    def home(self) -> None:
        """Back to the attract screen, in the kiosk's own language."""
        self.switch_language(self.settings.lang)
        self.show(AttractScreen(self))

    def end_visit(self) -> None:
        """End the visit from any step: the idle timeout, Stop and Back buttons."""
        self.wipe()
        self.home()

    def _first_screen(self) -> Screen:
        return AttractScreen(self) if self.view.paired else PairingScreen(self)

    def _follow_settings(self) -> None:
        settings = self.own_settings.pushed(self.view.settings)
        if settings == self.settings:
            return
        lang_changed = settings.lang != self.settings.lang
        self.settings = settings
        if lang_changed and isinstance(self.screen, AttractScreen | PairingScreen):
            self.switch_language(settings.lang)  # nobody is in the middle of anything

    def note_in_use(self) -> None:
        """Tell the appliance whether a student is at the screen: from the nickname on (before
        the visit exists on the hub) until the attract screen is back."""
        idle_screen = isinstance(self.screen, AttractScreen | PairingScreen)
        self.visit.set_in_use(not idle_screen or self.view.phase != "idle")

    def _follow_visit(self) -> None:
        """Show the screen that belongs to the visit's phase when it changes."""
        view = self.view
        if not view.paired or view.connection == "unpaired":
            if not isinstance(self.screen, PairingScreen):
                self.draft = Draft()
                self.show(PairingScreen(self))
            self.phase = view.phase
            return
        if isinstance(self.screen, PairingScreen):
            self.show(AttractScreen(self))
        if view.phase == self.phase:
            return
        self.phase = view.phase
        if view.phase == "asking":
            self.show(SubjectScreen(self))
        elif view.phase == "waiting":
            self.show(WaitingScreen(self))
        elif view.phase == "in_room":
            self.show(RoomScreen(self))
        elif view.phase == "ended":
            self.show(FeedbackScreen(self))
        elif self.screen.visit_screen:  # the visit ended under us (e.g. the hub closed it)
            self.end_visit()

    # ---- idle ------------------------------------------------------------------------------

    def activity(self) -> None:
        """Someone is here: restart the idle clock and take the question away."""
        self.idle_for = 0.0
        for overlay in [o for o in self.overlays if isinstance(o, IdlePrompt)]:
            self.close(overlay)

    def _check_idle(self, dt: float) -> None:
        kind = self.screen.idle
        if kind is None or any(isinstance(o, IdlePrompt) for o in self.overlays):
            return
        self.idle_for += dt
        limit = self.settings.room_idle_s if kind == "room" else self.settings.idle_s
        if self.idle_for >= limit:
            self.open(IdlePrompt(self, self.settings.countdown_s))

    # ---- one frame -----------------------------------------------------------------------

    def target(self) -> Screen:
        """The layer that gets input: the top modal overlay, else the screen."""
        modal = [o for o in self.overlays if o.modal]
        return modal[-1] if modal else self.screen

    def frame(self, dt: float, events: list[pygame.event.Event]) -> None:
        for event in events:
            if event.type == pygame.QUIT:
                self.running = False
            elif event.type in (pygame.WINDOWSIZECHANGED, pygame.VIDEORESIZE):
                self.surface = pygame.display.get_surface()
                self.theme = Theme(self.surface.get_size())
                self._drawn = None
            else:
                self.target().handle(event)
                moving = event.type == pygame.MOUSEMOTION and any(event.buttons)
                if event.type in INPUT or moving:
                    self.activity()
        self.view = self.visit.snapshot()
        self._follow_settings()
        self._follow_visit()
        self.note_in_use()
        for layer in list(self.layers):
            layer.update(dt)
        self._check_idle(dt)
        self.draw()

    def draw(self) -> None:
        """Redraw what changed: nothing; only live pictures (video, whiteboard) that nothing
        covers; or everything."""
        layers = self.layers
        trees = [layer.refresh() for layer in layers]
        drawn = [
            (id(layer), layer.pressed, [w.signature() for w in tree])
            for layer, tree in zip(layers, trees, strict=True)
        ]
        before, self._drawn = self._drawn, drawn
        if drawn == before:
            return
        self.frames_drawn += 1
        above = [tree for tree in trees[1:] if tree]
        if (
            before is not None
            and not above
            and before[1:] == drawn[1:]
            and self._redraw_parts(before[0], drawn[0], trees[0])
        ):
            return
        for layer in layers:
            if layer is self.screen or layer.tree:
                layer.draw(self.surface)
        pygame.display.flip()

    def _redraw_parts(self, before: Any, now: Any, tree: list[Widget]) -> bool:
        """Redraw only the changed widgets when each fills its rect (video frames), and those
        drawn above them; False when the whole screen must be drawn."""
        if before[:2] != now[:2] or len(before[2]) != len(now[2]):
            return False
        changed = [i for i, (a, b) in enumerate(zip(before[2], now[2], strict=True)) if a != b]
        movable = [before[2][i][:2] == now[2][i][:2] and tree[i].opaque for i in changed]
        if not changed or not all(movable):
            return False
        rects = [tree[i].rect for i in changed]
        redraw = set(changed)
        for i in range(min(changed), len(tree)):
            if i not in redraw and tree[i].rect.collidelist(rects) >= 0:
                redraw.add(i)
        for i in sorted(redraw):
            tree[i].draw(self.surface, self.theme, tree[i].id == self.screen.pressed)
        pygame.display.update([tree[i].rect for i in sorted(redraw)])
        return True

    # ---- the test driver -------------------------------------------------------------------

    def _find(self, widget_id: str) -> tuple[Screen, Widget] | None:
        for layer in reversed(self.layers):
            for widget in layer.tree:
                if widget.id == widget_id:
                    return layer, widget
        return None

    def before_frame(self, request: Request) -> dict[str, Any] | None:
        """Turn a driver request into input events for this frame; an error answer if it cannot."""
        op = request.op
        kind = op["op"]
        if kind == "tap":
            found = self._find(str(op.get("id")))
            if found is None:
                return {"ok": False, "error": f"no widget {op.get('id')!r} on the screen"}
            layer, widget = found
            if layer is not self.target():
                return {"ok": False, "error": f"{widget.id!r} is covered by {self.target().name}"}
            if not widget.tappable:
                return {"ok": False, "error": f"{widget.id!r} cannot be tapped now"}
            pos = widget.rect.center
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))
        elif kind == "type":
            for char in str(op.get("text", "")):
                if char == "\n":
                    key_event(pygame.K_RETURN)
                elif char == "\b":
                    key_event(pygame.K_BACKSPACE)
                else:
                    pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=char))
        elif kind == "drag":
            found = self._find(str(op.get("id")))
            points = op.get("points") or []
            if found is None or len(points) < 1:
                return {"ok": False, "error": "drag needs a widget id on the screen and points"}
            rect = found[1].rect
            at = [(rect.x + round(fx * rect.w), rect.y + round(fy * rect.h)) for fx, fy in points]
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=at[0], button=1))
            for pos in at[1:]:
                pygame.event.post(
                    pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(1, 0, 0))
                )
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=at[-1], button=1))
        elif kind not in ("tree", "state", "screenshot"):
            return {"ok": False, "error": f"unknown op {kind!r}"}
        return None

    def after_frame(self, request: Request) -> dict[str, Any]:
        op = request.op
        if op["op"] == "tree":
            widgets = []
            for layer in self.layers:
                widgets += [{**w.describe(), "layer": layer.name} for w in layer.tree]
            return {"ok": True, "screen": self.screen.name, "widgets": widgets}
        if op["op"] == "screenshot":
            path = Path(str(op.get("path")))
            pygame.image.save(self.surface, str(path))
            return {"ok": True, "path": str(path)}
        return {"ok": True, **self.state()}

    def state(self) -> dict[str, Any]:
        return {
            "screen": self.screen.name,
            "overlays": [o.name for o in self.overlays],
            "lang": i18n.language(),
            "phase": self.view.phase,
            "connection": self.view.connection,
            "rtc": self.view.rtc_state,
            "remote_frames": self.view.remote_frames,
            "idle_s": round(self.idle_for, 1),
            "settings": {
                "lang": self.settings.lang,
                "idle_s": self.settings.idle_s,
                "countdown_s": self.settings.countdown_s,
                "room_idle_s": self.settings.room_idle_s,
                "notice": self.settings.notice,
            },
            "fps": round(self.fps, 1),
            "frames_run": self.frames_run,
            "frames_drawn": self.frames_drawn,
            "size": list(self.surface.get_size()),
        }

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        clock = pygame.time.Clock()
        ping_every = watchdog_interval_s()
        last_ping = 0.0
        ready = False
        while self.running:
            dt = min(clock.tick(FPS) / 1000, 0.25)  # a stall must not skip the idle countdown
            self.fps = clock.get_fps()
            self.frames_run += 1
            requests = self.driver.take() if self.driver else []
            answers = {id(r): self.before_frame(r) for r in requests}
            self.frame(dt, pygame.event.get())
            for request in requests:
                request.answer(answers[id(request)] or self.after_frame(request))
            if not ready:
                notify("READY=1")
                ready = True
            if ping_every and time.monotonic() - last_ping > ping_every:
                notify("WATCHDOG=1")
                last_ping = time.monotonic()


def key_event(key: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def run(
    options: Options, settings: Settings, windowed: bool, driver_path: Path | None = None
) -> int:
    """`lektiecafe kiosk`: open the window and the visit, run until told to stop."""
    i18n.set_language(settings.lang)
    pygame.display.init()
    pygame.font.init()
    if windowed:
        surface = pygame.display.set_mode((DESIGN_W, DESIGN_H), pygame.RESIZABLE)
    else:
        surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
    pygame.display.set_caption("Lektiecafé")
    driver = TestDriver(driver_path) if driver_path else None
    app: App | None = None

    def restart() -> None:
        """Site staff asked for a restart (the agent waits until no visit is under way)."""
        if app is not None:
            app.stop(RESTART_EXIT)

    visit = Visit(options, on_restart=restart)
    try:
        visit.open()
        app = running = App(visit, settings, surface, driver)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: running.stop(0))
        signal.signal(signal.SIGINT, lambda _signum, _frame: running.stop(0))
        running.run()
        return running.exit_code
    finally:
        notify("STOPPING=1")
        visit.close()
        if driver:
            driver.close()
        pygame.quit()
