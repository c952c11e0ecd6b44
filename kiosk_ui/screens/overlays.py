"""Layers above a screen: "Are you still there?", the notice that the hub cannot be reached, a
yes/no question, and the problem report."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import pygame

from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.screen import Host, Screen, TextField
from kiosk_ui.screens.common import countdown, keyboard_area, keyboard_for, problem
from kiosk_ui.widgets import Box, Button, Label, TextInput, Widget

REPORT_MAX = 2000


class Overlay(Screen):
    """A modal layer: dims the screen under it and takes every event."""

    visit_screen = False
    idle = None

    def draw(self, surface: pygame.Surface) -> None:
        dim = pygame.Surface(surface.get_size(), pygame.SRCALPHA)
        dim.fill(t.OVERLAY)
        surface.blit(dim, (0, 0))
        self.draw_widgets(surface)


class IdlePrompt(Overlay):
    """The visible countdown before the idle timeout ends the visit and clears the screen."""

    name = "idle"

    def __init__(self, host: Host, seconds: float) -> None:
        super().__init__(host)
        self.total = self.left = seconds

    def update(self, dt: float) -> None:
        self.left -= dt
        if self.left <= 0:
            self.host.end_visit()

    def widgets(self) -> list[Widget]:
        theme = self.theme
        return [
            Box("idle.box", theme.rect(240, 110, 800, 580), border=t.ACCENT),
            Label(
                "idle.title",
                theme.rect(280, 140, 720, 60),
                _("Are you still there?"),
                size=44,
                bold=True,
                align="center",
            ),
            Label(
                "idle.text",
                theme.rect(290, 210, 700, 90),
                _(
                    "Tap the screen to go on. "
                    "If nobody does, we end the visit and clear the screen."
                ),
                size=26,
                align="center",
            ),
            countdown("idle.countdown", theme.rect(540, 320, 200, 200), self.left, self.total),
            Button(
                "idle.here",
                theme.rect(420, 560, 440, 100),
                _("Yes, I'm here"),
                on_tap=self.host.activity,
                style="success",
                size=34,
            ),
        ]


class ConnectionNotice(Screen):
    """A strip at the bottom while the hub cannot be reached during a visit. It covers nothing
    that can be tapped and takes no events: the student can go on playing and typing."""

    name = "connection"
    visit_screen = False
    idle = None
    modal = False

    def widgets(self) -> list[Widget]:
        if self.host.view.connection == "connected" or not self.host.screen.visit_screen:
            return []
        theme = self.theme
        text = _("No connection to Lektiecafé right now. We keep trying…")
        return [
            Box(
                "connection.box",
                theme.rect(290, 730, 700, 56),
                fill=t.WARNING_FILL,
                border=t.ACCENT,
            ),
            Label(
                "connection.text",
                theme.rect(300, 740, 680, 40),
                text,
                size=24,
                bold=True,
                align="center",
            ),
        ]

    def draw(self, surface: pygame.Surface) -> None:
        self.draw_widgets(surface)


class Confirm(Overlay):
    """A yes/no question (e.g. "End the session?")."""

    name = "confirm"

    def __init__(
        self, host: Host, question: str, yes: str, no: str, on_yes: Callable[[], None]
    ) -> None:
        super().__init__(host)
        self.question, self.yes, self.no, self.on_yes = question, yes, no, on_yes

    def answer_yes(self) -> None:
        self.host.close(self)
        self.on_yes()

    def widgets(self) -> list[Widget]:
        theme = self.theme
        return [
            Box("confirm.box", theme.rect(290, 220, 700, 340)),
            Label(
                "confirm.text",
                theme.rect(330, 250, 620, 150),
                self.question,
                size=36,
                bold=True,
                align="center",
            ),
            Button(
                "confirm.no",
                theme.rect(330, 430, 300, 100),
                self.no,
                on_tap=lambda: self.host.close(self),
                style="secondary",
                size=28,
            ),
            Button(
                "confirm.yes",
                theme.rect(650, 430, 300, 100),
                self.yes,
                on_tap=self.answer_yes,
                style="danger",
                size=28,
            ),
        ]


def report_button(host: Host, rect: pygame.Rect, on_sent: Callable[[], None]) -> Button:
    """The button that opens the problem report; `on_sent` runs once the report is sent."""
    return Button(
        "report",
        rect,
        _("Report a problem"),
        on_tap=lambda: host.open(ReportDialog(host, on_sent)),
        style="secondary",
        size=24,
    )


class ReportDialog(Overlay):
    """Tell the staff about a problem in the room; the appliance keeps it until the hub has it."""

    name = "report"

    def __init__(self, host: Host, on_sent: Callable[[], None]) -> None:
        super().__init__(host)
        self.text = TextField(limit=REPORT_MAX)
        self.focus = "report.text"
        self.on_sent = on_sent
        self.sending: Future[None] | None = None
        self.error = ""

    def fields(self) -> dict[str, TextField]:
        return {"report.text": self.text}

    def submit(self, field_id: str) -> None:
        self.send()

    def send(self) -> None:
        if self.text.text.strip() and self.sending is None:
            self.error = ""
            self.sending = self.host.visit.report(self.text.text.strip())

    def update(self, dt: float) -> None:
        if self.sending is not None and self.sending.done():
            self.error = problem(self.sending) or ""
            self.sending = None
            if not self.error:
                self.host.close(self)
                self.on_sent()

    def widgets(self) -> list[Widget]:
        theme = self.theme
        top = keyboard_area(theme).y - theme.px(400)
        widgets: list[Widget] = [
            Box("report.box", pygame.Rect(theme.px(24), top, theme.px(1232), theme.px(384))),
            Label(
                "report.title",
                pygame.Rect(theme.px(48), top + theme.px(16), theme.px(800), theme.px(48)),
                _("Report a problem"),
                size=34,
                bold=True,
            ),
            Label(
                "report.hint",
                pygame.Rect(theme.px(48), top + theme.px(66), theme.px(1184), theme.px(36)),
                _("Tell the staff what happened. Only the staff read it."),
                size=24,
                color=t.MUTED,
            ),
            TextInput(
                "report.text",
                pygame.Rect(theme.px(48), top + theme.px(110), theme.px(1184), theme.px(150)),
                self.text.text,
                on_tap=lambda: setattr(self, "focus", "report.text"),
                placeholder=_("What happened?"),
                focused=True,
                multiline=True,
                size=26,
            ),
            Button(
                "report.cancel",
                pygame.Rect(theme.px(48), top + theme.px(280), theme.px(300), theme.px(88)),
                _("Cancel"),
                on_tap=lambda: self.host.close(self),
                style="secondary",
                size=28,
            ),
            Button(
                "report.send",
                pygame.Rect(theme.px(932), top + theme.px(280), theme.px(300), theme.px(88)),
                _("Please wait…") if self.sending else _("Send"),
                on_tap=self.send,
                enabled=bool(self.text.text.strip()) and self.sending is None,
                style="success",
                size=28,
            ),
        ]
        if self.error:
            widgets.append(
                Label(
                    "report.error",
                    pygame.Rect(theme.px(370), top + theme.px(290), theme.px(540), theme.px(70)),
                    self.error,
                    size=22,
                    color=t.DANGER,
                )
            )
        widgets += keyboard_for(self, _("Send"))
        return widgets
