"""`lektiecafe provision reset`: make the kiosk forget its pairing and everything it keeps (its
TinyDB state: identity and token, the hub's pushed settings, an outbox not yet delivered), to move
it to another site. The hub is told first (`POST /api/devices/unpair` with the kiosk's token), so
the old site's Kiosks page shows it unpaired; when the hub cannot be reached, the wipe goes ahead
and the output says which entry to unpair there. The hub's address stays unless --hub gives a new
one; --site sets the new site's code. The kiosk is stopped meanwhile and comes back with a new
pairing code."""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass

from appliance.texts import _
from provisioning import units
from provisioning.config import KIOSK_ENV, checked, read_device_config, write_device_config
from provisioning.report import Progress, Skipped, Step, StepFailed
from provisioning.target import Target, run, tail
from provisioning.update import not_in_use

SERVICE = "lektiecafe-kiosk.service"


@dataclass(frozen=True)
class Kept:
    """What the kiosk's state holds that reset is about to delete."""

    hub_url: str | None
    device_token: str | None
    device_id: int | None
    site_name: str
    waiting: int  # outbox entries not yet delivered


def run_reset(args: argparse.Namespace) -> int:
    target = Target(args.root)
    progress = Progress(args.lang)
    was_running = (
        target.live and run(["systemctl", "is-active", "--quiet", SERVICE]).returncode == 0
    )
    kept = what_is_kept(target)

    def stop(step: Step) -> None:
        if not was_running:
            raise Skipped(_("not running"))
        systemctl(["stop", SERVICE])
        step.changed(_("stopped"))

    def tell_hub(step: Step) -> None:
        from appliance.hub import HubCallError, request_json

        config = read_device_config(target.root)
        hub = kept.hub_url or (config.hub if config else None)
        if kept.device_token is None or hub is None:
            raise Skipped(_("the kiosk is not paired"))
        try:
            request_json("POST", hub + "/api/devices/unpair", args.lang, bearer=kept.device_token)
        except HubCallError as exc:
            if exc.code != "unauthenticated":
                raise Skipped(
                    _(
                        "{hub} cannot be reached ({error}); unpair kiosk {device} at {site} "
                        "on the hub's Kiosks page"
                    ),
                    hub=hub,
                    error=exc.message,
                    device=kept.device_id,
                    site=kept.site_name,
                ) from exc
            step.checked(_("the hub had already unpaired it"))
            return
        step.changed(
            _("kiosk {device} at {site} unpaired"), device=kept.device_id, site=kept.site_name
        )

    def wipe(step: Step) -> None:
        data_dir = target.path(units.DATA_DIR)
        entries = sorted(data_dir.iterdir()) if data_dir.is_dir() else []
        for entry in entries:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        if not entries:
            return
        step.changed(_("emptied {path}"), path=units.DATA_DIR)
        if kept.waiting:
            step.note(
                _("{count} reports or feedback not yet sent were deleted"), count=kept.waiting
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
        (_("Tell the hub"), tell_hub),
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


def what_is_kept(target: Target) -> Kept:
    from appliance.state import STATE_FILE, KioskState  # tinydb: installed with the kiosk

    if not target.path(f"{units.DATA_DIR}/{STATE_FILE}").exists():
        return Kept(None, None, None, "", 0)
    state = KioskState(target.path(units.DATA_DIR))
    try:
        identity = state.identity
        return Kept(
            hub_url=state.hub_url,
            device_token=identity.device_token if identity else None,
            device_id=identity.device_id if identity else None,
            site_name=identity.site_name if identity else "",
            waiting=len(state.outbox()),
        )
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
