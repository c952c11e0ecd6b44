"""The room: the helper's video large, the kiosk's own small, the chat, and the shared document
(a whiteboard to draw on with a finger, and the shared text), with End and Report. On the
helper's video, a big "Audio only" toggle; in the status line, in plain words, when either
side's video was lowered or turned off for the network, or the helper chose audio only (the
same words as the browser's room page, hub/static/js/room.js)."""

from __future__ import annotations

import math
from concurrent.futures import Future
from functools import partial
from typing import Literal

import pygame

from appliance.visit import Stroke
from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.keyboard import HIDE, SHIFT
from kiosk_ui.screen import DragPhase, Host, Screen, TextField
from kiosk_ui.screens.common import chat_items, chat_panel, keyboard_for, problem
from kiosk_ui.screens.overlays import Confirm, report_button
from kiosk_ui.theme import Color
from kiosk_ui.widgets import (
    BoardPainter,
    Button,
    Canvas,
    Icon,
    Ink,
    Label,
    TextInput,
    Video,
    Widget,
)

CHAT_MAX = 1000
DOC_MAX = 20000
PEN_WIDTH, ERASER_WIDTH = 6, 48  # board units, as in the browser's whiteboard
MIN_STEP = 3  # board units between stored points
PENS = [("black", "#1b1d21"), ("blue", "#0b5cad"), ("red", "#b3261e"), ("green", "#1d6b33")]
NOTICE_S = 6.0
DOC_SETTLE_S = 0.5  # how long our own edit may take to show in the replica
NO_PICTURE_S = 5.0  # connected this long without a picture: the helper has no camera on


def rgb(color: str) -> Color:
    try:
        return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    except ValueError:
        return t.INK


def swatch(color: Color) -> Icon:
    def draw(surface: pygame.Surface, rect: pygame.Rect, _ink: Color) -> None:
        pygame.draw.circle(surface, color, rect.center, rect.w // 2)

    return draw


def ink(stroke: Stroke) -> Ink:
    """What to paint for a stroke: erasing paints the board's own white."""
    color = t.BOARD if stroke.mode == "erase" else rgb(stroke.color)
    return (stroke.points, color, stroke.width)


class RoomScreen(Screen):
    name = "room"
    idle = "room"

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.tab: Literal["board", "text"] = "board"
        self.message = TextField(limit=CHAT_MAX)
        self.pen = PENS[0][1]
        self.erasing = False
        self.painter = BoardPainter()
        self.stroke: int | None = None  # the handle of the stroke being drawn
        self.last: tuple[float, float] = (0.0, 0.0)
        self.new_points: list[float] = []
        self.doc_pending: str | None = None  # our newest edit, until the replica shows it
        self.doc_age = 0.0
        self.ending: Future[None] | None = None
        self.notice = ""
        self.notice_left = 0.0
        self.dark_s = 0.0  # how long the call has been connected without the helper's picture
        self.seen = self.activity_mark()

    # ---- typing ----------------------------------------------------------------------------

    def fields(self) -> dict[str, TextField]:
        return {"chat.input": self.message}

    def submit(self, field_id: str) -> None:
        self.send()

    def send(self) -> None:
        text = self.message.text.strip()
        if text:
            self.host.visit.send_chat(text)
            self.message.text = ""

    def key(self, key: str) -> None:
        if self.focus != "doc" or key in (SHIFT, HIDE):
            super().key(key)
            return
        # Edit the newest text (ours if the replica has not shown it yet), then hand it over.
        field = TextField(self.doc_text(), limit=DOC_MAX, multiline=True)
        field.apply(key)
        self.host.visit.set_text(field.text)
        self.doc_pending, self.doc_age = field.text, 0.0
        if len(key) == 1 and key.isalpha():
            self.shift = False

    def doc_text(self) -> str:
        return self.doc_pending if self.doc_pending is not None else self.host.view.doc_text

    # ---- drawing ---------------------------------------------------------------------------

    def choose_pen(self, color: str) -> None:
        self.pen, self.erasing = color, False

    def drag(self, canvas: Canvas, phase: DragPhase, pos: tuple[int, int]) -> None:
        x, y = canvas.to_board(pos)
        if phase == "down":
            width = ERASER_WIDTH if self.erasing else PEN_WIDTH
            mode: Literal["pen", "erase"] = "erase" if self.erasing else "pen"
            self.stroke = self.host.visit.add_stroke([x, y], self.pen, width, mode)
            self.last = (x, y)
        elif self.stroke is not None and math.dist(self.last, (x, y)) >= MIN_STEP:
            self.new_points += [x, y]
            self.last = (x, y)
        if phase == "up":
            self.flush_stroke()
            self.stroke = None

    def flush_stroke(self) -> None:
        """Hand the points drawn since the last frame to the document in one go."""
        if self.stroke is not None and self.new_points:
            self.host.visit.extend_stroke(self.stroke, self.new_points)
        self.new_points = []

    # ---- ending and reporting --------------------------------------------------------------

    def ask_end(self) -> None:
        self.host.open(
            Confirm(self.host, _("End the session?"), _("Yes, end it"), _("No, go back"), self.end)
        )

    def end(self) -> None:
        self.ending = self.host.visit.end_session()

    def reported(self) -> None:
        self.notice, self.notice_left = (
            _("Thank you. The staff will look at your report."),
            NOTICE_S,
        )

    # ---- time ------------------------------------------------------------------------------

    def activity_mark(self) -> tuple[object, ...]:
        view = self.host.view
        return (len(view.chat), view.doc_text, len(view.strokes), view.peer_present)

    def update(self, dt: float) -> None:
        self.flush_stroke()
        connected = self.host.view.rtc_state == "connected"
        dark = connected and self.host.visit.remote_frame() is None
        self.dark_s = self.dark_s + dt if dark else 0.0
        mark = self.activity_mark()
        if mark != self.seen:  # the helper is chatting, writing or drawing: the visit is alive
            self.seen = mark
            self.host.activity()
        if self.doc_pending is not None:
            self.doc_age += dt
            if self.host.view.doc_text == self.doc_pending or self.doc_age > DOC_SETTLE_S:
                self.doc_pending = None
        if self.notice_left > 0:
            self.notice_left -= dt
            if self.notice_left <= 0:
                self.notice = ""
        if self.ending is not None and self.ending.done():
            self.notice = problem(self.ending) or ""
            self.ending = None

    # ---- the tree --------------------------------------------------------------------------

    def status(self) -> str:
        view = self.host.view
        if self.notice:
            return self.notice
        if not view.peer_present:
            return _("%(name)s has lost the connection. Waiting for them to come back…") % {
                "name": view.peer_name
            }
        if view.rtc_state in ("connecting", "idle"):
            return _("Starting the video…")
        if view.rtc_state == "reconnecting":
            return _("The video is reconnecting…")
        return self.quality()

    def quality(self) -> str:
        """How the video adapted, as room.js says it: the worse of the two sides' levels for the
        network, else that the helper chose audio only."""
        view = self.host.view
        network = {
            level
            for level, reason in (
                (view.video, view.video_reason),
                (view.peer_video, view.peer_video_reason),
            )
            if reason == "network"
        }
        if "off" in network:
            return _("Poor connection — we turned video off so you can still hear each other")
        if "low" in network:
            return _("Weak connection — we lowered the picture quality so the call keeps going")
        if view.peer_video == "off" and view.peer_video_reason == "choice":
            return _("%(name)s chose audio only.") % {"name": view.peer_name}
        return ""

    def toggle_audio_only(self) -> None:
        self.host.visit.set_audio_only(not self.host.view.audio_only)

    def saved_label(self, rect: pygame.Rect) -> Label:
        """Whether the hub has stored the shared notes and drawing: a student on a flaky network
        sees that what they wrote is not lost, only not stored yet."""
        view = self.host.view
        if view.doc_unsaved > 0 or view.connection != "connected":
            text, color = _("Not saved yet"), t.MUTED
        else:
            text, color = _("Saved"), t.SUCCESS
        return Label("doc.saved", rect, text, size=26, color=color, bold=True, align="center")

    def widgets(self) -> list[Widget]:
        theme, view = self.theme, self.host.view
        widgets: list[Widget] = [
            Label(
                "peer",
                theme.rect(24, 14, 700, 48),
                _("You are talking with %(name)s") % {"name": view.peer_name},
                size=32,
                bold=True,
            ),
            Label(
                "status",
                theme.rect(24, 58, 720, 50),  # two lines of the longest notice
                self.status(),
                size=20,
                color=t.SUCCESS if self.notice else t.MUTED,
            ),
            report_button(self.host, theme.rect(760, 14, 260, 80), self.reported),
            Button(
                "end",
                theme.rect(1036, 14, 220, 80),
                _("Please wait…") if self.ending else _("End"),
                on_tap=self.ask_end,
                enabled=self.ending is None,
                style="danger",
                size=30,
            ),
        ]
        typing = self.focus is not None
        remote = theme.rect(24, 108, 400, 300) if typing else theme.rect(24, 108, 520, 390)
        own = pygame.Rect(0, 0, remote.w * 3 // 10, remote.h * 3 // 10)
        own.bottomright = (remote.right - theme.px(8), remote.bottom - theme.px(8))
        if not view.peer_present:
            no_picture = _("%(name)s is not here right now.") % {"name": view.peer_name}
        elif self.dark_s > NO_PICTURE_S:
            no_picture = _("No camera")  # a helper whose camera is missing or refused
        else:
            no_picture = _("Starting the video…")
        widgets += [
            Video(
                "video.remote",
                remote,
                no_picture,
                frame=self.host.visit.remote_frame(),
            ),
            Video(
                "video.local",
                own,
                "" if view.camera_ok else _("No camera"),
                frame=self.host.visit.local_frame() if view.camera_ok else None,
                mirror=True,
            ),
            Button(
                "audio_only",
                pygame.Rect(
                    remote.x + theme.px(8), remote.y + theme.px(8), theme.px(200), theme.px(72)
                ),
                _("Audio only"),
                on_tap=self.toggle_audio_only,
                style="secondary",
                selected=view.audio_only,
                size=26,
            ),
        ]
        items = chat_items(view.chat, _("You"))
        if typing:
            side = theme.rect(448, 108, 808, 300)
            if self.focus == "doc":
                widgets.append(self.saved_label(theme.rect(448, 108, 808, 40)))
                widgets.append(self.doc_input(theme.rect(448, 152, 808, 256)))
            else:
                widgets += chat_panel(
                    self,
                    "chat",
                    side,
                    items,
                    self.message.text,
                    self.send,
                    _("Write to %(name)s") % {"name": view.peer_name},
                )
            widgets += keyboard_for(
                self, _("Send") if self.focus == "chat.input" else _("New line"), closable=True
            )
            return widgets
        widgets += chat_panel(
            self,
            "chat",
            theme.rect(24, 510, 520, 274),
            items,
            self.message.text,
            self.send,
            _("Write to %(name)s") % {"name": view.peer_name},
        )
        for i, (tab, label) in enumerate([("board", _("Whiteboard")), ("text", _("Text"))]):
            widgets.append(
                Button(
                    f"tab.{tab}",
                    theme.rect(568 + i * 232, 108, 220, 64),
                    label,
                    on_tap=partial(setattr, self, "tab", tab),
                    style="secondary",
                    selected=self.tab == tab,
                    size=26,
                )
            )
        widgets.append(self.saved_label(theme.rect(1036, 108, 220, 64)))
        if self.tab == "text":
            widgets.append(self.doc_input(theme.rect(568, 184, 688, 600)))
            return widgets
        tools = [
            (f"pen.{name}", label, color)
            for (name, color), label in zip(
                PENS, [_("Black"), _("Blue"), _("Red"), _("Green")], strict=True
            )
        ]
        for i, (tool_id, label, color) in enumerate(tools):
            widgets.append(
                Button(
                    tool_id,
                    theme.rect(568 + i * 92, 184, 84, 72),
                    label,
                    on_tap=partial(self.choose_pen, color),
                    style="surface",
                    icon=swatch(rgb(color)),
                    caption=False,
                    selected=not self.erasing and self.pen == color,
                )
            )
        widgets += [
            Button(
                "eraser",
                theme.rect(936, 184, 160, 72),
                _("Eraser"),
                on_tap=lambda: setattr(self, "erasing", True),
                style="surface",
                selected=self.erasing,
                size=20,
            ),
            Button(
                "board.clear",
                theme.rect(1104, 184, 152, 72),
                _("Clear"),
                on_tap=self.host.visit.clear_board,
                style="secondary",
                size=20,
            ),
            Canvas(
                "board",
                theme.rect(568, 268, 688, 516),
                painter=self.painter,
                strokes=[ink(s) for s in view.strokes],
            ),
        ]
        return widgets

    def doc_input(self, rect: pygame.Rect) -> TextInput:
        return TextInput(
            "doc",
            rect,
            self.doc_text(),
            on_tap=lambda: setattr(self, "focus", "doc"),
            placeholder=_("Write here. You both see the text."),
            focused=self.focus == "doc",
            multiline=True,
            size=26,
        )
