"""First start (or after the kiosk was unpaired): the pairing code, very large, and a QR code for
site staff, who confirm it on the hub's kiosks page. The appliance polls the hub; this screen only
shows where it stands and asks for a new code when one runs out."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pygame

from appliance.visit import PairingView
from kiosk_ui import theme as t
from kiosk_ui.i18n import _
from kiosk_ui.screen import Host, Screen
from kiosk_ui.screens.common import notice_box
from kiosk_ui.theme import Theme
from kiosk_ui.widgets import Box, Label, Widget

RETRY_S = 5.0  # after a failed or expired pairing, ask for a new code this much later


@dataclass(eq=False)
class QrCode(Widget):
    """QR modules (True = dark, quiet zone included) drawn as crisp squares."""

    modules: tuple[tuple[bool, ...], ...] = ()
    kind = "image"
    opaque = True

    def signature(self) -> tuple[Any, ...]:
        return (*super().signature(), self.modules)

    def draw(self, surface: pygame.Surface, theme: Theme, pressed: bool) -> None:
        pygame.draw.rect(surface, (255, 255, 255), self.rect)
        if not self.modules:
            return
        count = len(self.modules)
        cell = min(self.rect.w, self.rect.h) // count
        left = self.rect.centerx - cell * count // 2
        top = self.rect.centery - cell * count // 2
        for y, row in enumerate(self.modules):
            for x, dark in enumerate(row):
                if dark:
                    pygame.draw.rect(
                        surface, (0, 0, 0), (left + x * cell, top + y * cell, cell, cell)
                    )


class PairingScreen(Screen):
    name = "pairing"
    visit_screen = False
    idle = None

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.pairing: Future[None] = host.visit.pair(host.settings.kiosk_name)
        self.waited = 0.0  # since the last pairing attempt ended without success

    def update(self, dt: float) -> None:
        if not self.pairing.done() or self.host.view.paired:
            return
        self.waited += dt
        if self.waited >= RETRY_S:
            self.pairing = self.host.visit.pair(self.host.settings.kiosk_name)
            self.waited = 0.0

    def widgets(self) -> list[Widget]:
        theme = self.theme
        view = self.host.view.pairing or PairingView(status="requesting")
        widgets: list[Widget] = [
            Label(
                "title",
                theme.rect(40, 30, 1200, 60),
                _("This kiosk is not connected yet"),
                size=44,
                bold=True,
                align="center",
            ),
            Label(
                "hint",
                theme.rect(40, 96, 1200, 44),
                _("Please ask the staff to confirm this code."),
                size=30,
                align="center",
            ),
        ]
        if view.status in ("waiting", "paired") and view.user_code:
            widgets += [
                Box("code.box", theme.rect(40, 170, 700, 250), border=t.PRIMARY),
                Label(
                    "pairing.code",
                    theme.rect(60, 200, 660, 190),
                    view.user_code,
                    size=96,
                    bold=True,
                    color=t.PRIMARY,
                    align="center",
                ),
                QrCode(
                    "pairing.qr",
                    theme.rect(800, 160, 400, 400),
                    view.verification_uri_complete,
                    modules=view.qr,
                ),
                Label("steps", theme.rect(40, 450, 720, 200), self.steps(view), size=26),
            ]
            minutes = max(1, round(view.expires_in_s / 60))
            widgets.append(
                Label(
                    "expires",
                    theme.rect(40, 680, 1200, 40),
                    _("The code works for %(minutes)d more minutes. Then a new one appears.")
                    % {"minutes": minutes},
                    size=24,
                    color=t.MUTED,
                )
            )
        elif view.status in ("expired", "denied", "failed"):
            text = {
                "expired": _("The code ran out. A new code is on its way."),
                "denied": _("The staff turned this code down. A new code is on its way."),
                "failed": _("We cannot reach Lektiecafé right now. We keep trying."),
            }[view.status]
            if view.message:
                text = f"{text}\n{view.message}"
            widgets += notice_box(theme, "pairing.status", theme.rect(190, 260, 900, 220), text)
        else:
            widgets.append(
                Label(
                    "pairing.status",
                    theme.rect(40, 300, 1200, 60),
                    _("Getting a code…"),
                    size=34,
                    align="center",
                )
            )
        return widgets

    @staticmethod
    def steps(view: PairingView) -> str:
        return "\n".join(
            [
                _("For the staff:"),
                _("1. Scan the QR code, or open %(address)s") % {"address": view.verification_uri},
                _("2. Log in and confirm the code shown here."),
                _("3. The kiosk starts by itself."),
            ]
        )
