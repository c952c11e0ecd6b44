"""Asking for help: the subject (and a language the helper should speak, if the student wants
one), a photo of the assignment, and a line about the problem. The hub hears of it only when the
student presses "Ask for help"."""

from __future__ import annotations

import io
from concurrent.futures import Future
from functools import partial

import numpy as np
import pygame

from appliance.visit import Catalog
from kiosk_ui import i18n, outline
from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.icons import subject_icon
from kiosk_ui.screen import Host, Screen, TextField
from kiosk_ui.screens.common import (
    corner_button,
    error_line,
    heading,
    keyboard_for,
    notice_box,
    problem,
)
from kiosk_ui.widgets import (
    Button,
    Icon,
    Label,
    Picture,
    TextInput,
    Video,
    Widget,
    frame_surface,
)

NOTE_MAX = 500


def name_in(names: dict[str, str]) -> str:
    return names.get(i18n.language()) or next(iter(names.values()), "")


def tinted(icon: Icon, color: t.Color) -> Icon:
    """The icon in its subject's own colour, whatever the button's text colour."""
    return lambda surface, rect, _ink: icon(surface, rect, color)


class SubjectScreen(Screen):
    name = "subject"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.catalog: Future[Catalog] = host.visit.catalog()

    def update(self, dt: float) -> None:
        if self.catalog.done() and self.catalog.exception() is not None:
            self.catalog = self.host.visit.catalog()

    def widgets(self) -> list[Widget]:
        theme, draft = self.theme, self.host.draft
        widgets: list[Widget] = [
            corner_button(theme, "stop", _("Stop"), self.host.end_visit),
            *heading(theme, 208, 760, _("What do you need help with?"), _("Tap a subject.")),
            Button(
                "next",
                theme.rect(996, 24, 260, 88),
                _("Next"),
                on_tap=self.next,
                enabled=draft.subject_id is not None,
                style="success",
                size=34,
            ),
        ]
        if not self.catalog.done():
            widgets.append(
                Label(
                    "loading",
                    theme.rect(24, 300, 1232, 60),
                    _("Getting the subjects…"),
                    size=30,
                    align="center",
                )
            )
            return widgets
        catalog = self.catalog.result() if self.catalog.exception() is None else None
        if catalog is None:
            return widgets
        columns = 5
        rows = max(1, -(-len(catalog.subjects) // columns))
        height = min(200, (420 - (rows - 1) * 16) // rows)
        width = (1232 - (columns - 1) * 16) / columns
        for i, subject in enumerate(catalog.subjects):
            icon, color = subject_icon(subject.key)
            widgets.append(
                Button(
                    f"subject.{subject.id}",
                    theme.rect(
                        24 + (i % columns) * (width + 16),
                        128 + (i // columns) * (height + 16),
                        width,
                        height,
                    ),
                    name_in(subject.names),
                    on_tap=partial(setattr, self.host.draft, "subject_id", subject.id),
                    style="surface",
                    icon=tinted(icon, color),
                    selected=draft.subject_id == subject.id,
                    size=24,
                )
            )
        widgets.append(
            Label(
                "language.label",
                theme.rect(24, 568, 1232, 40),
                _("Should the helper also speak another language? You can skip this."),
                size=24,
                bold=True,
            )
        )
        choices: list[tuple[str | None, str]] = [(None, _("No wish"))]
        choices += [(lang.code, name_in(lang.names)) for lang in catalog.languages]
        per_row = -(-len(choices) // 2)
        chip_w = (1232 - (per_row - 1) * 12) / per_row
        for i, (code, label) in enumerate(choices):
            widgets.append(
                Button(
                    f"language.{code or 'none'}",
                    theme.rect(
                        24 + (i % per_row) * (chip_w + 12), 616 + (i // per_row) * 80, chip_w, 68
                    ),
                    label,
                    on_tap=partial(setattr, self.host.draft, "language", code),
                    style="secondary",
                    selected=draft.language == code,
                    size=22,
                )
            )
        return widgets

    def next(self) -> None:
        self.host.show(PhotoScreen(self.host))


class PhotoScreen(Screen):
    """Photograph the assignment: a live preview with the page's outline drawn over it, then the
    scan of the page (flattened, evened out) to send, take again, or send as the photo it was."""

    name = "photo"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.error = ""
        self.outline = outline.PageOutline()
        self.scanning: Future[np.ndarray | None] | None = None

    def update(self, dt: float) -> None:
        draft = self.host.draft
        if draft.photo is None:
            camera = self.host.view.camera_ok
            self.outline.follow(self.host.visit.local_frame() if camera else None, dt)
        if self.scanning is not None and self.scanning.done():
            scanned = outline.scan_result(self.scanning)
            self.scanning = None
            if scanned is not None and draft.photo is not None:
                draft.scan_image = frame_surface(scanned).convert()

    def take(self) -> None:
        jpeg = self.host.visit.snapshot_jpeg()
        if jpeg is None:
            self.error = _(
                "The camera did not give us a picture. Try again, or go on without a photo."
            )
            return
        self.error = ""
        draft = self.host.draft
        draft.photo, draft.keep_original = jpeg, False
        draft.photo_image = pygame.image.load(io.BytesIO(jpeg), "photo.jpg").convert()
        # The scan is made from the JPEG the hub gets, so the student sees what the helper will.
        rgb = np.ascontiguousarray(pygame.surfarray.array3d(draft.photo_image).swapaxes(0, 1))
        self.scanning = outline.scan(rgb)

    def retake(self) -> None:
        draft = self.host.draft
        draft.photo = draft.photo_image = draft.scan_image = None
        draft.keep_original = False
        self.scanning = None
        self.outline.corners = None

    def send(self, keep_original: bool = False) -> None:
        self.host.draft.keep_original = keep_original
        self.next()

    def without_photo(self) -> None:
        self.retake()
        self.next()

    def next(self) -> None:
        self.host.show(QuestionScreen(self.host))

    def widgets(self) -> list[Widget]:
        theme, draft = self.theme, self.host.draft
        widgets: list[Widget] = [
            corner_button(
                theme, "back", _("Back"), lambda: self.host.show(SubjectScreen(self.host))
            ),
        ]
        if draft.photo_image is not None:
            widgets += self.result(theme)
        else:
            widgets += self.preview(theme)
        if self.error:
            widgets += notice_box(theme, "error", theme.rect(888, 410, 368, 190), self.error)
        return widgets

    def preview(self, theme: t.Theme) -> list[Widget]:
        # Without a webcam the appliance still sends a test picture; the student is told instead.
        camera = self.host.view.camera_ok
        frame = self.host.visit.local_frame() if camera else None
        no_camera = _(
            "The camera is not working right now. You can still ask for help without a photo."
        )
        return [
            *heading(
                theme,
                208,
                1048,
                _("Take a photo of your assignment"),
                _("Hold the paper up to the camera. The helper will see the photo."),
            ),
            Video(
                "preview",
                theme.rect(24, 124, 840, 630),
                "" if camera else no_camera,
                frame=frame,
                outline=self.outline.corners if frame is not None else None,
            ),
            Button(
                "take",
                theme.rect(888, 124, 368, 140),
                _("Take photo"),
                on_tap=self.take,
                enabled=camera and frame is not None,
                style="success",
                size=34,
            ),
            Button(
                "skip",
                theme.rect(888, 624, 368, 130),
                _("Continue without a photo"),
                on_tap=self.without_photo,
                style="secondary" if camera else "primary",
                size=28,
            ),
        ]

    def result(self, theme: t.Theme) -> list[Widget]:
        """The scan big (or the photo, when no page was found), and what to do with it."""
        draft = self.host.draft
        picture = theme.rect(24, 124, 840, 630)
        if draft.scan_image is not None:
            shown = Picture("scan", picture, _("Your page, scanned"), image=draft.scan_image)
            hint = _("This is what the helper will see. Is the whole page there?")
        else:
            shown = Picture("photo", picture, _("Your photo"), image=draft.photo_image)
            hint = _("This is what the helper will see. Can you read it?")
        widgets: list[Widget] = [
            *heading(theme, 208, 1048, _("Your photo"), hint),
            shown,
            Button(
                "use",
                theme.rect(888, 124, 368, 140),
                _("Send"),
                on_tap=self.send,
                style="success",
                size=34,
            ),
            Button(
                "retake",
                theme.rect(888, 288, 368, 120),
                _("Retake"),
                on_tap=self.retake,
                style="secondary",
                size=30,
            ),
        ]
        if draft.scan_image is not None:
            widgets.append(
                Button(
                    "original",
                    theme.rect(888, 624, 368, 130),
                    _("Use the original"),
                    on_tap=partial(self.send, True),
                    style="secondary",
                    size=28,
                )
            )
        return widgets


class QuestionScreen(Screen):
    """A line about the problem (optional), and the button that asks the hub for a helper."""

    name = "question"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.note = TextField(host.draft.note, limit=NOTE_MAX)  # shown wrapped; Enter asks
        self.focus = "note"
        self.asking: Future[None] | None = None
        self.error = ""

    def fields(self) -> dict[str, TextField]:
        return {"note": self.note}

    def submit(self, field_id: str) -> None:
        if self.asking is None:
            self.ask()

    def ask(self) -> None:
        draft = self.host.draft
        if draft.subject_id is None:
            self.host.show(SubjectScreen(self.host))
            return
        draft.note = self.note.text.strip()
        self.error = ""
        self.asking = self.host.visit.ask(
            draft.subject_id,
            draft.language,
            draft.note,
            draft.photo,
            scan=not draft.keep_original,
        )

    def update(self, dt: float) -> None:
        if self.asking is not None and self.asking.done():
            self.error = problem(self.asking) or ""
            self.asking = None  # success: the app shows the waiting screen

    def back(self) -> None:
        self.host.draft.note = self.note.text
        self.host.show(PhotoScreen(self.host))

    def summary(self) -> str:
        draft = self.host.draft
        future = self.host.visit.catalog()
        if not future.done() or future.exception() is not None:
            return ""
        catalog = future.result()
        parts = [name_in(s.names) for s in catalog.subjects if s.id == draft.subject_id]
        if draft.grade is not None:
            parts.append(_("Grade %(grade)d") % {"grade": draft.grade})
        parts += [
            _("Language: %(language)s") % {"language": name_in(lang.names)}
            for lang in catalog.languages
            if lang.code == draft.language
        ]
        return " · ".join(parts)

    def widgets(self) -> list[Widget]:
        theme, draft = self.theme, self.host.draft
        widgets: list[Widget] = [
            corner_button(theme, "back", _("Back"), self.back),
            *heading(
                theme,
                208,
                700,
                _("Anything the helper should know?"),
                _("Write a line about the problem if you like."),
            ),
            Button(
                "ask",
                theme.rect(936, 24, 320, 88),
                _("Please wait…") if self.asking else _("Ask for help"),
                on_tap=self.ask,
                enabled=self.asking is None,
                style="success",
                size=32,
            ),
            Label("summary", theme.rect(328, 124, 928, 40), self.summary(), size=26, bold=True),
            TextInput(
                "note",
                theme.rect(328, 170, 928, 180),
                self.note.text,
                on_tap=lambda: setattr(self, "focus", "note"),
                placeholder=_("For example: I don't understand exercise 3 about fractions."),
                focused=True,
                multiline=True,
                size=28,
            ),
        ]
        if draft.photo_image is not None:
            widgets.append(
                Picture(
                    "photo", theme.rect(24, 124, 280, 210), _("Your photo"), image=draft.shown()
                )
            )
        else:
            widgets.append(
                Label(
                    "photo",
                    theme.rect(24, 124, 280, 210),
                    _("No photo"),
                    size=26,
                    color=t.MUTED,
                    align="center",
                )
            )
        widgets += error_line(theme.rect(328, 356, 928, 64), self.error)
        widgets += keyboard_for(self, _("Ask for help"))
        return widgets
