"""The kiosk's words, from the hub's own message catalogues (hub/translations), read with the
standard library's gettext so the kiosk never imports Flask. Danish is the default; English is the
msgids themselves. The language can change at any moment (the button on the attract screen), so
screens call `_()` while they build their widgets, never at import time."""

from __future__ import annotations

import gettext
from pathlib import Path

LANGUAGES = ("da", "en")
DEFAULT = "da"

# The hub package's folder, found beside this one without importing it (importing `hub` would
# pull in Flask). Both live in the same checkout or the same site-packages.
CATALOGUES = Path(__file__).resolve().parent.parent / "hub" / "translations"

_loaded: dict[str, gettext.NullTranslations] = {}
_current: gettext.NullTranslations = gettext.NullTranslations()
_lang = "en"


def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of `lang`; English (and a missing file) falls back to the msgids."""
    if lang not in _loaded:
        _loaded[lang] = gettext.translation(
            "messages", localedir=CATALOGUES, languages=[lang], fallback=True
        )
    return _loaded[lang]


def set_language(lang: str) -> None:
    global _current, _lang
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    _current, _lang = translations(lang), lang


def language() -> str:
    return _lang


def _(message: str) -> str:
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.ngettext(singular, plural, n)


set_language(DEFAULT)
