"""`lektiecafe provision update`: move the kiosk to a new version, the documented way. The new
version goes into a fresh virtual environment beside the running one (pip, as install does, from
the same place unless --source says otherwise), then one symlink switch and a restart of the kiosk;
the old version stays for one `provision update --rollback`. Refused while a student's visit is
under way: the kiosk marks one in its data dir (appliance/state.py VISIT_MARKER)."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.texts import _
from provisioning import releases, units
from provisioning.report import Progress, Skipped, Step, StepFailed
from provisioning.target import Target, run, tail


def visit_running(target: Target) -> bool:
    """Whether a kiosk process that is alive says a visit is under way (a marker left by a
    crashed kiosk does not count)."""
    from appliance.state import VISIT_MARKER  # with the installed kiosk (tinydb)

    try:
        pid = int(target.path(f"{units.DATA_DIR}/{VISIT_MARKER}").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return Path(f"/proc/{pid}").exists()


def not_in_use(target: Target, step: Step) -> None:
    if visit_running(target):
        raise StepFailed(
            _("A student is using the kiosk right now."),
            _(
                "Wait until the visit has ended (the kiosk shows its start screen), then run the "
                "same command again."
            ),
        )


def restart_kiosk(target: Target, step: Step) -> None:
    if not target.live:
        raise Skipped(_("not under --root; the new version runs from the device's next start"))
    if visit_running(target):  # a visit may have begun while pip ran
        raise Skipped(
            _(
                "a visit began meanwhile; the new version runs from the kiosk's next restart (the "
                "hub's Kiosks page can ask for one)"
            )
        )
    result = run(["systemctl", "try-restart", units.KIOSK_UNIT.rsplit("/", 1)[1]], timeout=120)
    if result.returncode != 0:
        raise StepFailed(
            _("systemctl could not restart the kiosk:\n{output}"),
            _("Restart the device (sudo reboot); journalctl -u lektiecafe-kiosk shows why."),
            output=tail(result),
        )
    step.changed(_("restarted"))


def run_update(args: argparse.Namespace) -> int:
    target = Target(args.root)
    progress = Progress(args.lang)
    current = releases.release_at(target, releases.CURRENT)
    if current is None:
        progress.run(_("Installed version"), _not_installed)
        return 1

    def rollback(step: Step) -> None:
        previous = releases.release_at(target, releases.PREVIOUS)
        if previous is None:
            raise StepFailed(
                _("There is no earlier version to go back to."),
                _(
                    "Only the version before the last update is kept; install an older one with "
                    "sudo lektiecafe provision update --source …"
                ),
            )
        releases.switch_to(target, previous)  # the newer one becomes `previous`: forward again
        step.changed(
            _("version {version} ({path}) again; {newer} kept"),
            version=previous.version,
            path=previous.device_path,
            newer=current.version,
        )

    def new_version(step: Step) -> None:
        origin = current.origin
        if args.source or args.wheelhouse or args.constraints:
            origin = releases.default_origin(
                args.source or origin.source,
                args.constraints or origin.constraints,
                args.wheelhouse,
                origin.pygame_from_source,
            )
        progress.say(_("… installing the new version from {source}"), source=origin.source)
        release = releases.build(target, origin)
        releases.switch_to(target, release)
        step.changed(
            _(
                "version {version} in {path}; {old} kept for sudo lektiecafe provision update "
                "--rollback"
            ),
            version=release.version,
            path=release.device_path,
            old=current.version,
        )

    steps = [
        (_("Kiosk not in use"), lambda step: not_in_use(target, step)),
        (
            _("Back to the version before") if args.rollback else _("New version"),
            rollback if args.rollback else new_version,
        ),
        (_("Restart the kiosk"), lambda step: restart_kiosk(target, step)),
    ]
    for title, step in steps:
        if not progress.run(title, step):
            return 1
    return 0


def _not_installed(step: Step) -> None:
    raise StepFailed(
        _("The kiosk program is not installed here."),
        _("Install it first: sudo lektiecafe provision install --hub https://…"),
    )
