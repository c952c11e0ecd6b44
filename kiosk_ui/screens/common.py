"""Pieces several screens share: the chat panel, friendly times, and error texts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import pygame

from appliance.visit import ChatLine
from kiosk_ui import theme as t
from kiosk_ui.i18n import _, ngettext
from kiosk_ui.keyboard import HEIGHT as KEYBOARD_H
from kiosk_ui.keyboard import keyboard
from kiosk_ui.screen import Screen
from kiosk_ui.theme import Theme
from kiosk_ui.widgets import Box, Button, ChatList, Countdown, Item, Label, TextInput, Widget


def problem(future: Future[Any]) -> str | None:
    """The words to show for a finished call that failed, or None when it went well."""
    error = future.exception()
    if error is None:
        return None
    message = getattr(error, "message", "")
    return str(message) if message else _("Something went wrong. Please try again.")


def chat_items(lines: Sequence[ChatLine], me: str) -> list[Item]:
    items: list[Item] = []
    for line in lines:
        sender = me if line.mine else line.sender
        text = f"{sender}: {line.text}"
        items.append(Item(f"msg.{line.key}", text, mine=line.mine, pending=line.pending))
        if line.blocked_reason:
            note = line.blocked_message or _("This message was not sent.")
            items.append(Item(f"blocked.{line.key}", note, mine=True, note=True))
    return items


# The hub tells places beyond this rounded up (docs/protocol.md, queue:update).
EXACT_PLACES = 20


def place_text(position: int | None) -> str:
    if position is None:
        return _("Finding a helper for you…")
    if position <= 1:
        return _("You are next in line!")
    if position <= EXACT_PLACES:
        return _("You are number %(n)d in line") % {"n": position}
    return _("You are about number %(n)d in line") % {"n": position}


def wait_text(eta_s: int | None) -> str:
    if eta_s is None:
        return ""
    if eta_s < 60:
        return _("Less than a minute")
    minutes = round(eta_s / 60)
    return ngettext("About %(n)d minute", "About %(n)d minutes", minutes) % {"n": minutes}


def when_text(iso: str, now: datetime | None = None) -> str:
    """ "today at 16:00", "tomorrow at 16:00", "on Tuesday at 16:00" in the kiosk's time zone."""
    try:
        moment = datetime.fromisoformat(iso).astimezone()
    except ValueError:
        return ""
    today = (now or datetime.now().astimezone()).date()
    clock = moment.strftime("%H:%M")
    days = (moment.date() - today).days
    if days <= 0:
        return _("today at %(time)s") % {"time": clock}
    if days == 1:
        return _("tomorrow at %(time)s") % {"time": clock}
    weekdays = [
        _("on Monday"),
        _("on Tuesday"),
        _("on Wednesday"),
        _("on Thursday"),
        _("on Friday"),
        _("on Saturday"),
        _("on Sunday"),
    ]
    day = weekdays[moment.weekday()]
    if days >= 7:
        day = _("on %(date)s") % {"date": moment.strftime("%d/%m")}
    return _("%(day)s at %(time)s") % {"day": day, "time": clock}


def keyboard_area(theme: Theme) -> pygame.Rect:
    return theme.rect(24, 800 - 24 - KEYBOARD_H, 1232, KEYBOARD_H)


def keyboard_for(screen: Screen, enter_label: str = "", closable: bool = False) -> list[Widget]:
    area = keyboard_area(screen.theme)
    return list(keyboard(screen.theme, area, screen.key, screen.shift, enter_label, closable))


def chat_panel(
    screen: Screen,
    prefix: str,
    area: pygame.Rect,
    items: Sequence[Item],
    draft: str,
    on_send: Callable[[], None],
    placeholder: str,
) -> list[Widget]:
    """A chat: messages above, the text field and Send below, in `area` (real pixels). A tap on
    the field focuses it (the screen then shows the keyboard)."""
    theme = screen.theme
    row = theme.px(80)
    gap = theme.px(12)
    send_w = theme.px(150)
    field = pygame.Rect(area.x, area.bottom - row, area.w - send_w - gap, row)
    focused = screen.focus == f"{prefix}.input"
    return [
        ChatList(
            f"{prefix}.messages",
            pygame.Rect(area.x, area.y, area.w, area.h - row - gap),
            items=list(items),
        ),
        TextInput(
            f"{prefix}.input",
            field,
            draft,
            on_tap=lambda: setattr(screen, "focus", f"{prefix}.input"),
            placeholder=placeholder,
            focused=focused,
            size=26,
        ),
        Button(
            f"{prefix}.send",
            pygame.Rect(field.right + gap, field.y, send_w, row),
            _("Send"),
            on_tap=on_send,
            enabled=bool(draft.strip()),
            size=28,
        ),
    ]


def corner_button(theme: Theme, widget_id: str, text: str, on_tap: Callable[[], None]) -> Button:
    """The way back (Back, Stop) in the top left corner, in the same place on every step."""
    return Button(
        widget_id, theme.rect(24, 24, 160, 72), text, on_tap=on_tap, style="secondary", size=28
    )


def countdown(widget_id: str, rect: pygame.Rect, left: float, total: float) -> Countdown:
    """The ring that empties over `total` seconds, with the whole seconds left (rounded up)."""
    return Countdown(widget_id, rect, str(max(0, round(left + 0.49))), seconds=left, total=total)


def heading(theme: Theme, x: float, width: float, title: str, hint: str = "") -> list[Widget]:
    """The screen's title (and a line under it) at the top, from design x over `width`."""
    if not hint:
        return [Label("title", theme.rect(x, 34, width, 52), title, size=36, bold=True)]
    return [
        Label("title", theme.rect(x, 18, width, 52), title, size=36, bold=True),
        Label("hint", theme.rect(x, 68, width, 36), hint, size=22, color=t.MUTED),
    ]


def error_line(rect: pygame.Rect, text: str, size: int = 22) -> list[Widget]:
    """Why the screen's last call failed, in red (nothing when `text` is empty)."""
    if not text:
        return []
    return [Label("error", rect, text, size=size, color=t.DANGER, bold=True)]


def notice_box(
    theme: Theme, widget_id: str, rect: pygame.Rect, text: str, size: int = 26
) -> list[Widget]:
    """A yellow card with a message (no helper on duty, a failed call, no camera)."""
    inner = rect.inflate(-theme.px(32), -theme.px(20))
    return [
        Box(f"{widget_id}.box", rect, fill=t.WARNING_FILL, border=t.ACCENT),
        Label(widget_id, inner, text, size=size, align="center"),
    ]
