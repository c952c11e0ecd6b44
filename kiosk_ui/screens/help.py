"""The help overlay: a student (or site staff) tells the helpdesk what is wrong with the kiosk,
with a few big choices and an optional line of text. The appliance keeps it until the hub has
it (appliance.visit.helpdesk); the hub attaches the kiosk and its site."""

from __future__ import annotations

from concurrent.futures import Future

import pygame

from appliance.visit import Problem
from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.screen import Host, TextField
from kiosk_ui.screens.common import keyboard_area, keyboard_for, problem
from kiosk_ui.screens.overlays import Overlay
from kiosk_ui.widgets import Box, Button, Label, TextInput, Widget

TEXT_MAX = 500


def help_button(host: Host, rect: pygame.Rect) -> Button:
    """The big "Problem?" button that opens the help overlay (attract and ask screens)."""
    return Button(
        "help",
        rect,
        _("Problem?"),
        on_tap=lambda: host.open(HelpOverlay(host)),
        style="secondary",
        size=28,
    )


class HelpOverlay(Overlay):
    """Choose what is wrong, maybe write a line, send; then a thank-you until closed."""

    name = "help"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.choice: Problem | None = None
        self.text = TextField(limit=TEXT_MAX)
        self.focus = "help.text"
        self.sending: Future[None] | None = None
        self.sent = False
        self.error = ""

    def fields(self) -> dict[str, TextField]:
        return {} if self.sent else {"help.text": self.text}

    def submit(self, field_id: str) -> None:
        self.send()

    def choose(self, choice: Problem) -> None:
        self.choice = choice

    def send(self) -> None:
        if self.choice is not None and self.sending is None and not self.sent:
            self.error = ""
            self.sending = self.host.visit.ask_helpdesk(self.choice, self.text.text.strip())

    def update(self, dt: float) -> None:
        if self.sending is not None and self.sending.done():
            self.error = problem(self.sending) or ""
            self.sending = None
            self.sent = not self.error
            if self.sent:
                self.text = TextField(limit=TEXT_MAX)  # nothing typed stays on the screen
                self.focus = None

    def widgets(self) -> list[Widget]:
        return self._thanks() if self.sent else self._form()

    def _thanks(self) -> list[Widget]:
        theme = self.theme
        return [
            Box("help.box", theme.rect(240, 200, 800, 360), border=t.ACCENT),
            Label(
                "help.thanks",
                theme.rect(280, 240, 720, 160),
                _("Thank you! The staff have been told."),
                size=40,
                bold=True,
                align="center",
            ),
            Button(
                "help.close",
                theme.rect(490, 430, 300, 100),
                _("OK"),
                on_tap=lambda: self.host.close(self),
                style="success",
                size=32,
            ),
        ]

    def _form(self) -> list[Widget]:
        theme = self.theme
        top = keyboard_area(theme).y - theme.px(400)

        def at(x: float, y: float, w: float, h: float) -> pygame.Rect:
            return pygame.Rect(theme.px(x), top + theme.px(y), theme.px(w), theme.px(h))

        choices: list[tuple[Problem, str]] = [
            ("camera", _("The camera does not work")),
            ("sound", _("The sound does not work")),
            ("other", _("Something else")),
        ]
        widgets: list[Widget] = [
            Box("help.box", at(24, 0, 1232, 392)),
            Label("help.title", at(48, 12, 1184, 48), _("What is wrong?"), size=34, bold=True),
        ]
        for i, (value, label) in enumerate(choices):
            widgets.append(
                Button(
                    f"help.{value}",
                    at(48 + i * 400, 68, 384, 100),
                    label,
                    on_tap=lambda value=value: self.choose(value),  # type: ignore[misc]
                    style="secondary",
                    selected=self.choice == value,
                    size=26,
                )
            )
        widgets += [
            TextInput(
                "help.text",
                at(48, 184, 1184, 80),
                self.text.text,
                on_tap=lambda: setattr(self, "focus", "help.text"),
                placeholder=_("Tell us more (you may skip this)"),
                focused=self.focus == "help.text",
                size=26,
            ),
            Button(
                "help.cancel",
                at(48, 284, 300, 88),
                _("Cancel"),
                on_tap=lambda: self.host.close(self),
                style="secondary",
                size=28,
            ),
            Button(
                "help.send",
                at(932, 284, 300, 88),
                _("Please wait…") if self.sending else _("Send"),
                on_tap=self.send,
                enabled=self.choice is not None and self.sending is None,
                style="success",
                size=28,
            ),
        ]
        if self.error:
            widgets.append(
                Label("help.error", at(370, 294, 540, 70), self.error, size=22, color=t.DANGER)
            )
        widgets += keyboard_for(self, _("Send"))
        return widgets
