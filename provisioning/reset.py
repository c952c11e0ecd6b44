"""`lektiecafe provision reset`: make the kiosk forget its pairing and everything it keeps (its
TinyDB state: identity and token, the hub's pushed settings, an outbox not yet delivered), to move
it to another site. The hub's address stays unless --hub gives a new one; --site sets the new
site's code. With the kiosk stopped meanwhile, it comes back with a new pairing code."""

from __future__ import annotations

import argparse
import shutil
from typing import TYPE_CHECKING

from appliance.texts import _
from provisioning import units
from provisioning.config import KIOSK_ENV, checked, read_device_config, write_device_config
from provisioning.report import Progress, Skipped, Step, StepFailed
from provisioning.target import Target, run, tail
from provisioning.update import not_in_use

if TYPE_CHECKING:
    from appliance.state import Identity

SERVICE = "lektiecafe-kiosk.service"


def run_reset(args: argparse.Namespace) -> int:
    target = Target(args.root)
    progress = Progress(args.lang)
    was_running = (
        target.live and run(["systemctl", "is-active", "--quiet", SERVICE]).returncode == 0
    )

    def stop(step: Step) -> None:
        if not was_running:
            raise Skipped(_("not running"))
        systemctl(["stop", SERVICE])
        step.changed(_("stopped"))

    def wipe(step: Step) -> None:
        data_dir = target.path(units.DATA_DIR)
        identity, waiting = _what_is_kept(target)
        entries = sorted(data_dir.iterdir()) if data_dir.is_dir() else []
        for entry in entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        if not entries:
            return
        step.changed(_("emptied {path}"), path=units.DATA_DIR)
        if waiting:
            step.note(_("{count} reports or feedback not yet sent were deleted"), count=waiting)
        if identity is not None:
            step.note(
                _("on the hub's Kiosks page, unpair the old entry (kiosk {device} at {site})"),
                device=identity.device_id,
                site=identity.site_name,
            )

    def settings(step: Step) -> None:
        config = read_device_config(target.root)
        if config is None and not args.hub:
            raise Skipped(
                _("no {path}: the hub's address comes from the kiosk's --hub"), path=KIOSK_ENV
            )
        hub = args.hub or (config.hub if config else "")
        site = args.site if args.site is not None else (config.site_code if config else "")
        name = config.name if config else "Kiosk"
        new = checked(hub, site, name, config.lang if config else "da")
        if write_device_config(target, new):
            step.changed(_("wrote {path}"), path=KIOSK_ENV)
        step.note(_("hub {hub}, site code {site}"), hub=new.hub, site=new.site_code or "–")

    def start(step: Step) -> None:
        if not was_running:
            raise Skipped(_("starts at the next boot"))
        systemctl(["start", SERVICE])
        step.changed(_("started"))

    steps = [
        (_("Kiosk not in use"), lambda step: not_in_use(target, step)),
        (_("Stop the kiosk"), stop),
        (_("Wipe the kiosk's memory"), wipe),
        (_("Settings"), settings),
        (_("Start the kiosk"), start),
    ]
    for title, step in steps:
        if not progress.run(title, step):
            return 1
    progress.say(
        _(
            "Done. The kiosk shows a new pairing code: type it on the hub's Kiosks page "
            "(/admin/devices) and choose the new site."
        )
    )
    return 0


def _what_is_kept(target: Target) -> tuple[Identity | None, int]:
    """The identity and the number of waiting outbox entries, for the staff's note."""
    from appliance.state import STATE_FILE, KioskState  # tinydb: installed with the kiosk

    if not target.path(f"{units.DATA_DIR}/{STATE_FILE}").exists():
        return None, 0
    state = KioskState(target.path(units.DATA_DIR))
    try:
        return state.identity, len(state.outbox())
    finally:
        state.close()


def systemctl(command: list[str]) -> None:
    result = run(["systemctl", *command], timeout=120)
    if result.returncode != 0:
        raise StepFailed(
            _("systemctl {command} failed:\n{output}"),
            _("Restart the device (sudo reboot) and run the same command again."),
            command=" ".join(command),
            output=tail(result),
        )
