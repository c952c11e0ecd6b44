"""The screen between visits, and the first step of a visit: the student's nickname and grade."""

from __future__ import annotations

import math
from concurrent.futures import Future
from functools import partial

import pygame

from appliance.visit import Catalog, Lang
from kiosk_ui import i18n
from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.icons import face, speech
from kiosk_ui.screen import Host, Screen, TextField
from kiosk_ui.screens.common import (
    corner_button,
    error_line,
    heading,
    keyboard_for,
    notice_box,
    problem,
)
from kiosk_ui.screens.help import help_button
from kiosk_ui.widgets import Button, Label, TextInput, Widget

NICKNAME_MAX = 30  # the hub's limit (visit:start)


class AttractScreen(Screen):
    """Invites a passer-by to start; says so plainly when the hub cannot be reached; shows the
    notice site staff set on the hub."""

    name = "attract"
    visit_screen = False
    idle = None

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.clock = 0.0

    def widgets(self) -> list[Widget]:
        theme = self.theme
        online = self.host.view.connection == "connected"
        other = "en" if i18n.language() == "da" else "da"
        widgets: list[Widget] = [
            # Each language's name in itself: whoever needs it can read it.
            Button(
                "lang",
                theme.rect(1056, 24, 200, 72),
                {"en": "English", "da": "Dansk"}[other],
                on_tap=lambda: self.host.switch_language(other),
                style="secondary",
                size=28,
            ),
            help_button(self.host, theme.rect(24, 24, 200, 72)),
            Label(
                "title",
                theme.rect(80, 130, 1120, 110),
                "Lektiecafé",
                size=88,
                bold=True,
                color=t.PRIMARY,
                align="center",
            ),
            Label(
                "tagline",
                theme.rect(140, 250, 1000, 100),
                _(
                    "Free help with your homework from a volunteer. "
                    "You talk face to face on the screen."
                ),
                size=32,
                align="center",
            ),
        ]
        steps = [_("1. Write your name"), _("2. Choose a subject"), _("3. Talk with a helper")]
        for i, step in enumerate(steps):
            widgets.append(
                Label(
                    f"step.{i + 1}",
                    theme.rect(100 + i * 370, 370, 340, 44),
                    step,
                    size=26,
                    bold=True,
                    color=t.MUTED,
                    align="center",
                )
            )
        if online:
            widgets.append(
                Button(
                    "start",
                    theme.rect(440, 470, 400, 140),
                    _("Start"),
                    on_tap=self.start,
                    style="success",
                    size=52,
                )
            )
        else:
            text = _(
                "We cannot reach Lektiecafé right now. We keep trying, so please wait a moment "
                "or ask the staff for help."
            )
            widgets += notice_box(theme, "offline", theme.rect(190, 450, 900, 150), text)
        if self.host.settings.notice:  # site staff's word, e.g. opening hours
            widgets += notice_box(
                theme, "notice", theme.rect(360, 636, 600, 136), self.host.settings.notice, size=24
            )
        return widgets

    def start(self) -> None:
        self.host.show(NicknameScreen(self.host))

    def update(self, dt: float) -> None:
        self.clock += dt

    def draw(self, surface: pygame.Surface) -> None:
        surface.fill(t.BACKGROUND)
        theme = self.theme
        # A few soft circles and two faces talking: friendly, and nothing to read.
        for x, y, r, color in [
            (120, 700, 180, (250, 226, 190)),
            (1180, 150, 150, (214, 228, 245)),
            (1150, 760, 110, (214, 236, 218)),
        ]:
            pygame.draw.circle(surface, color, (theme.px(x), theme.px(y)), theme.px(r))
        bob = math.sin(self.clock * 2) * 4
        face(5)(surface, theme.rect(150, 640 + bob, 110, 110), t.INK)
        face(4)(surface, theme.rect(1010, 650 - bob, 100, 100), t.INK)
        speech(surface, theme.rect(250, 600 - bob, 90, 90), t.PRIMARY)
        self.draw_widgets(surface)


class NicknameScreen(Screen):
    """ "What should the helper call you?" and the grade. Starting the visit on the hub happens
    when the student presses Next; until then nothing has left the kiosk."""

    name = "nickname"
    visit_screen = False

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.nickname = TextField(host.draft.nickname, limit=NICKNAME_MAX)
        self.focus = "nickname"
        self.shift = not self.nickname.text  # a name starts with a capital
        self.catalog: Future[Catalog] = host.visit.catalog()
        self.starting: Future[None] | None = None
        self.error = ""

    def fields(self) -> dict[str, TextField]:
        return {"nickname": self.nickname}

    def submit(self, field_id: str) -> None:
        if self.ready:
            self.next()

    @property
    def grades(self) -> tuple[int, ...]:
        return (
            self.catalog.result().grades
            if self.catalog.done() and not self.catalog.exception()
            else ()
        )

    @property
    def ready(self) -> bool:
        return (
            bool(self.nickname.text.strip())
            and self.host.draft.grade is not None
            and self.starting is None
        )

    def choose_grade(self, grade: int) -> None:
        self.host.draft.grade = grade

    def next(self) -> None:
        draft = self.host.draft
        draft.nickname = self.nickname.text.strip()
        assert draft.grade is not None
        lang: Lang = "en" if i18n.language() == "en" else "da"
        self.error = ""
        self.starting = self.host.visit.start(draft.nickname, draft.grade, lang)

    def update(self, dt: float) -> None:
        if self.starting is not None and self.starting.done():
            self.error = problem(self.starting) or ""
            self.starting = None  # success: the app shows the subjects when the phase changes
        if self.catalog.done() and self.catalog.exception() is not None:
            self.catalog = self.host.visit.catalog()  # offline for a moment: ask again

    def widgets(self) -> list[Widget]:
        theme = self.theme
        widgets: list[Widget] = [
            corner_button(theme, "back", _("Back"), self.host.end_visit),
            *heading(
                theme,
                208,
                1048,
                _("What should the helper call you?"),
                _("Your first name or a nickname is enough. No last name."),
            ),
            TextInput(
                "nickname",
                theme.rect(24, 124, 800, 88),
                self.nickname.text,
                on_tap=lambda: setattr(self, "focus", "nickname"),
                placeholder=_("Your name"),
                focused=True,
                size=40,
            ),
            Button(
                "next",
                theme.rect(856, 124, 400, 88),
                _("Please wait…") if self.starting else _("Next"),
                on_tap=self.next,
                enabled=self.ready,
                style="success",
                size=34,
            ),
            Label(
                "grade.label",
                theme.rect(24, 250, 420, 48),
                _("Which grade are you in?"),
                size=26,
                bold=True,
            ),
        ]
        for i, grade in enumerate(self.grades):
            widgets.append(
                Button(
                    f"grade.{grade}",
                    theme.rect(460 + i * 196, 232, 180, 80),
                    _("Grade %(grade)d") % {"grade": grade},
                    on_tap=partial(self.choose_grade, grade),
                    style="secondary",
                    selected=self.host.draft.grade == grade,
                    size=28,
                )
            )
        widgets += error_line(theme.rect(24, 326, 1232, 70), self.error, size=26)
        widgets += keyboard_for(self, _("Next"))
        return widgets
