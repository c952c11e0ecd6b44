"""Waiting for a helper: the place in the queue and an honest estimate, updated live; the memory
game; and the break room ("frikvarter"), the moderated chat of students who are waiting."""

from __future__ import annotations

from concurrent.futures import Future

from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.memory import MemoryGame
from kiosk_ui.screen import Host, Screen, TextField
from kiosk_ui.screens.common import (
    chat_items,
    chat_panel,
    error_line,
    keyboard_for,
    notice_box,
    place_text,
    problem,
    wait_text,
    when_text,
)
from kiosk_ui.widgets import Box, Button, Label, Widget

BREAKROOM_MAX = 300  # the hub's limit


class WaitingScreen(Screen):
    name = "waiting"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.game = MemoryGame()
        self.message = TextField(limit=BREAKROOM_MAX)
        self.stopping: Future[None] | None = None
        self.error = ""

    def fields(self) -> dict[str, TextField]:
        return {"breakroom.input": self.message}

    def submit(self, field_id: str) -> None:
        self.send()

    def send(self) -> None:
        text = self.message.text.strip()
        if text:
            self.host.visit.send_breakroom(text)
            self.message.text = ""

    def stop(self) -> None:
        self.stopping = self.host.visit.cancel()

    def update(self, dt: float) -> None:
        self.game.update(dt)
        if self.stopping is not None and self.stopping.done():
            self.error = problem(self.stopping) or ""
            self.stopping = None  # success: the app goes back to the subjects

    def status(self) -> list[Widget]:
        theme, view = self.theme, self.host.view
        area = theme.rect(24, 16, 880, 104)
        if view.no_helper:
            text = _("Nobody who can help with this subject is on duty right now.")
            if view.next_shift:
                text += " " + _("The next helper comes %(when)s.") % {
                    "when": when_text(view.next_shift)
                }
            text += " " + _("You can keep waiting here, or stop and come back later.")
            return notice_box(theme, "queue.no_helper", area, text, size=24)
        return [
            Box("queue.box", area, border=t.PRIMARY),
            Label(
                "queue.position",
                theme.rect(48, 26, 840, 48),
                place_text(view.queue_position),
                size=36,
                bold=True,
                color=t.PRIMARY,
            ),
            Label("queue.eta", theme.rect(48, 76, 840, 36), wait_text(view.eta_s), size=26),
        ]

    def widgets(self) -> list[Widget]:
        theme = self.theme
        widgets = self.status()
        widgets.append(
            Button(
                "stop",
                theme.rect(928, 16, 328, 104),
                _("Please wait…") if self.stopping else _("Stop waiting"),
                on_tap=self.stop,
                enabled=self.stopping is None,
                style="secondary",
                size=28,
            )
        )
        widgets += error_line(theme.rect(24, 124, 1232, 32), self.error)
        typing = self.focus is not None
        chat_area = theme.rect(24, 160, 1232, 256) if typing else theme.rect(688, 196, 568, 588)
        if not typing:
            widgets += [
                Label(
                    "game.title",
                    theme.rect(24, 150, 640, 40),
                    _("Find the pairs"),
                    size=28,
                    bold=True,
                ),
                *self.game.widgets(theme, theme.rect(24, 196, 640, 588)),
                Label(
                    "breakroom.title",
                    theme.rect(688, 150, 568, 40),
                    _("Break room"),
                    size=28,
                    bold=True,
                ),
            ]
        widgets += chat_panel(
            self,
            "breakroom",
            chat_area,
            chat_items(self.host.view.breakroom, _("You")),
            self.message.text,
            self.send,
            _("Write to the others"),
        )
        if typing:
            widgets += keyboard_for(self, _("Send"), closable=True)
        return widgets
