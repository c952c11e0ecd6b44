"""The kiosk program's settings: from the command line, with what site staff push from the hub
over them (the visit's snapshot carries those)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from appliance.state import HubSettings
from kiosk_ui import i18n


@dataclass(frozen=True)
class Settings:
    idle_s: float = 90.0  # no touch this long → "Are you still there?"
    countdown_s: float = 15.0  # …shown this long before the visit ends
    room_idle_s: float = (
        600.0  # in a room (the student may just be talking); remote activity counts
    )
    thanks_s: float = 12.0  # the thank-you screen, before the attract screen is back
    lang: str = i18n.DEFAULT  # the language each visit starts in
    kiosk_name: str = "Kiosk"  # offered to the hub when pairing
    notice: str = ""  # on the attract screen (from the hub only)

    def pushed(self, hub: HubSettings) -> Settings:
        """These settings (the command line's) with what site staff set on the hub over them."""
        times = ("idle_s", "countdown_s", "room_idle_s")
        changes: dict[str, Any] = {n: getattr(hub, n) for n in times if getattr(hub, n)}
        return replace(self, **changes, lang=hub.lang or self.lang, notice=hub.notice)
