"""The device configuration `provision install` writes and the kiosk reads: the hub's address, the
site's code (sent with the pairing request, so the hub pre-selects the site), the name offered when
pairing and the kiosk's language. One file, /etc/lektiecafe/kiosk.env, the kiosk unit's
EnvironmentFile; the unit turns it into `lektiecafe kiosk` options (provisioning/units.py). Lines
an administrator added (e.g. `KIOSK_ARGS=--idle-after 120`) are kept when the file is rewritten."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from appliance.texts import _
from provisioning.report import StepFailed
from provisioning.target import Target

KIOSK_ENV = "/etc/lektiecafe/kiosk.env"
KEYS = {
    "hub": "LEKTIECAFE_HUB",
    "site_code": "LEKTIECAFE_SITE_CODE",
    "name": "LEKTIECAFE_NAME",
    "lang": "LEKTIECAFE_LANG",
}
HEADER = (
    "# The kiosk's settings, written by `lektiecafe provision install` (run it again to change\n"
    "# them). Read by lektiecafe-kiosk.service; lines of your own (KIOSK_ARGS=…) are kept.\n"
)
SITE_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Characters systemd's environment files would treat specially inside double quotes.
UNSAFE = re.compile(r'["\\$`\x00-\x1f\x7f]')


@dataclass(frozen=True)
class DeviceConfig:
    hub: str
    site_code: str = ""
    name: str = "Kiosk"
    lang: str = "da"


def checked(hub: str, site_code: str | None, name: str, lang: str) -> DeviceConfig:
    """The configuration from the command line, or StepFailed saying what to type instead."""
    parts = urlsplit(hub.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or UNSAFE.search(hub):
        raise StepFailed(
            _("“{hub}” is not a web address."),
            _(
                "Give the hub's address as it looks in a browser, e.g. --hub "
                "https://lektiecafe.example.dk"
            ),
            hub=hub,
        )
    if parts.query or parts.fragment:
        raise StepFailed(
            _("The hub's address “{hub}” has more than the address in it."),
            _("Give only the start of it, e.g. --hub https://lektiecafe.example.dk"),
            hub=hub,
        )
    if site_code and not SITE_CODE.fullmatch(site_code):
        raise StepFailed(
            _("“{code}” is not a site code."),
            _(
                "Copy the site's code from the hub's Sites page (letters, digits and -), or leave "
                "out --site."
            ),
            code=site_code,
        )
    if not name.strip() or len(name) > 60 or UNSAFE.search(name):
        raise StepFailed(
            _("The kiosk's name “{name}” cannot be used."),
            _(
                "Give a name of at most 60 characters without quotes or \\, e.g. --name "
                '"Biblioteket, 1. sal"'
            ),
            name=name,
        )
    return DeviceConfig(hub.strip().rstrip("/"), site_code or "", name.strip(), lang)


def parse_env(text: str) -> dict[str, str]:
    """KEY=value lines of an environment file (quotes around the value removed)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key.strip()] = value
    return values


def read_device_config(root: Path = Path("/")) -> DeviceConfig | None:
    """The configuration install wrote on the device at `root`, or None (not installed)."""
    text = Target(root).read(KIOSK_ENV)
    values = parse_env(text or "")
    if not values.get(KEYS["hub"]):
        return None
    return DeviceConfig(
        hub=values[KEYS["hub"]],
        site_code=values.get(KEYS["site_code"], ""),
        name=values.get(KEYS["name"]) or "Kiosk",
        lang=values.get(KEYS["lang"]) or "da",
    )


def render(config: DeviceConfig, existing: str | None) -> str:
    """The file's text: ours first, then the administrator's own lines from `existing`."""
    ours = set(KEYS.values())
    kept = [
        line
        for line in (existing or "").splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and line.partition("=")[0].strip() not in ours
    ]
    lines = [f'{KEYS[field]}="{getattr(config, field)}"' for field in KEYS]
    return HEADER + "\n".join(lines + kept) + "\n"


def write_device_config(target: Target, config: DeviceConfig) -> bool:
    return target.write(KIOSK_ENV, render(config, target.read(KIOSK_ENV)))
