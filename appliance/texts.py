"""The few sentences the appliance writes itself (most come from the hub, already translated), read
from the hub's message catalogues with the standard library's gettext, so a kiosk never imports
Flask. Danish by default; English is the msgids."""

from __future__ import annotations

import gettext
from pathlib import Path

# The hub package's folder beside this one, found without importing it (that would pull Flask).
CATALOGUES = Path(__file__).resolve().parent.parent / "hub" / "translations"


def _(message: str) -> str:
    """Marks a msgid for extraction; translate it later with `translate`."""
    return message


def translate(message: str, lang: str) -> str:
    catalogue = gettext.translation(
        "messages", localedir=CATALOGUES, languages=[lang], fallback=True
    )
    return catalogue.gettext(message)
