"""Danish is the default and must be complete: every text the hub shows has a Danish translation,
and the compiled catalogue the hub loads matches the source catalogue."""

from __future__ import annotations

import gettext
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "hub" / "translations" / "da" / "LC_MESSAGES"


def texts_in_code() -> set[str]:
    """Every text in the code `babel.cfg` names: the hub, the kiosk and the provisioning tool."""
    with (ROOT / "babel.cfg").open() as f:
        methods, _options = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT), methods):
        found.add(message if isinstance(message, str) else message[0])
    return found


def translated(string: str | tuple[str, ...]) -> bool:
    """A text, or every plural form of one, has its Danish words."""
    return all(string) if isinstance(string, tuple) else bool(string)


def test_every_text_has_a_danish_translation():
    with (CATALOGUE / "messages.po").open("rb") as f:
        catalogue = read_po(f)
    missing = sorted(
        m
        for m in texts_in_code()
        if m not in catalogue or not translated(catalogue[m].string) or catalogue[m].fuzzy
    )
    assert missing == [], f"run `make translations` and translate: {missing}"


def test_the_compiled_danish_catalogue_is_up_to_date():
    with (CATALOGUE / "messages.po").open("rb") as f:
        catalogue = read_po(f)
    with (CATALOGUE / "messages.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    stale = [
        m.id
        for m in catalogue
        if m.id and isinstance(m.id, str) and m.string and compiled.gettext(m.id) != m.string
    ]
    assert stale == [], "run `make translations` (pybabel compile)"
