"""After the room: how did it go (five faces, an optional comment), then thank you, then the
attract screen again. The visit is finished (and wiped) as the thank-you screen appears."""

from __future__ import annotations

from concurrent.futures import Future
from functools import partial

from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.icons import face
from kiosk_ui.screen import Host, Screen, TextField
from kiosk_ui.screens.common import countdown, error_line, heading, keyboard_for, problem
from kiosk_ui.screens.overlays import report_button
from kiosk_ui.widgets import Button, Label, TextInput, Widget

COMMENT_MAX = 1000


class FeedbackScreen(Screen):
    name = "feedback"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.rating: int | None = None
        self.comment = TextField(limit=COMMENT_MAX)
        self.sending: Future[None] | None = None
        self.error = ""
        self.reported = False

    def fields(self) -> dict[str, TextField]:
        return {"comment": self.comment}

    def submit(self, field_id: str) -> None:
        self.send()

    def send(self) -> None:
        if self.rating is not None and self.sending is None:
            self.sending = self.host.visit.feedback(self.rating, self.comment.text.strip())

    def update(self, dt: float) -> None:
        if self.sending is not None and self.sending.done():
            self.error = problem(self.sending) or ""
            self.sending = None
            if not self.error:
                self.host.show(ThanksScreen(self.host))

    def ended_text(self) -> str:
        view = self.host.view
        if view.room_ended_reason == "peer_gone":
            return _("The connection to %(name)s was lost, so the session has ended.") % {
                "name": view.peer_name
            }
        if view.room_ended_by == "helper":
            return _("%(name)s has ended the session.") % {"name": view.peer_name}
        return _("The session has ended.")

    def widgets(self) -> list[Widget]:
        theme = self.theme
        typing = self.focus is not None
        widgets: list[Widget] = [
            *heading(theme, 24, 900, _("How did it go?"), self.ended_text()),
            Button(
                "skip",
                theme.rect(1036, 24, 220, 80),
                _("Skip"),
                on_tap=lambda: self.host.show(ThanksScreen(self.host)),
                style="secondary",
                size=28,
            ),
        ]
        labels = [_("Very bad"), _("Bad"), _("OK"), _("Good"), _("Very good")]
        size = 140 if typing else 230
        for i, label in enumerate(labels):
            widgets.append(
                Button(
                    f"rating.{i + 1}",
                    theme.rect(24 + i * 250, 124, 232, size + 50),
                    label,
                    on_tap=partial(setattr, self, "rating", i + 1),
                    style="surface",
                    icon=face(i + 1),
                    selected=self.rating == i + 1,
                    size=22,
                )
            )
        top = 124 + size + 76
        widgets += [
            TextInput(
                "comment",
                theme.rect(24, top, 880, 80 if typing else 130),
                self.comment.text,
                on_tap=lambda: setattr(self, "focus", "comment"),
                placeholder=_("Anything else you want to tell us? (optional)"),
                focused=self.focus == "comment",
                multiline=True,
                size=26,
            ),
            Button(
                "send",
                theme.rect(928, top, 328, 80 if typing else 130),
                _("Please wait…") if self.sending else _("Send"),
                on_tap=self.send,
                enabled=self.rating is not None and self.sending is None,
                style="success",
                size=32,
            ),
        ]
        widgets += error_line(theme.rect(24, top - 40, 1232, 36), self.error)
        if typing:
            widgets += keyboard_for(self, _("Send"), closable=True)
        elif self.reported:
            widgets.append(
                Label(
                    "reported",
                    theme.rect(24, 700, 1232, 60),
                    _("Thank you. The staff will look at your report."),
                    size=24,
                    color=t.SUCCESS,
                )
            )
        else:
            widgets.append(
                report_button(self.host, theme.rect(24, 690, 320, 80), self.was_reported)
            )
        return widgets

    def was_reported(self) -> None:
        self.reported = True


class ThanksScreen(Screen):
    """Thank you, and a countdown back to the start. The visit is finished the moment this shows,
    so a student who walks away leaves nothing behind."""

    name = "thanks"
    visit_screen = False
    idle = None

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        host.wipe()
        self.total = self.left = host.settings.thanks_s

    def update(self, dt: float) -> None:
        self.left -= dt
        if self.left <= 0:
            self.host.home()

    def widgets(self) -> list[Widget]:
        theme = self.theme
        return [
            Label(
                "title",
                theme.rect(80, 140, 1120, 90),
                _("Thank you for coming!"),
                size=64,
                bold=True,
                color=t.PRIMARY,
                align="center",
            ),
            Label(
                "text",
                theme.rect(140, 250, 1000, 100),
                _("Good luck with your homework. You are welcome back any time."),
                size=32,
                align="center",
            ),
            countdown("countdown", theme.rect(565, 390, 150, 150), self.left, self.total),
            Button(
                "done",
                theme.rect(440, 590, 400, 110),
                _("Done"),
                on_tap=self.host.home,
                style="primary",
                size=36,
            ),
        ]
