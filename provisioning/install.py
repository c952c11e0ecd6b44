"""`lektiecafe provision install`: turn a fresh Raspberry Pi OS Lite or Debian computer (or, with
--root, a mounted SD card image or any folder) into a kiosk, one checked step at a time. Safe to run
again: a step that is already right says "(unchanged)", one that was wrong says what it changed, and
the first failure stops the run with what to do next. Nothing is started on the screen here: the
kiosk starts on the next boot (install may be typed on that very screen)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable

from appliance.texts import _
from provisioning import releases, units
from provisioning.config import (
    KIOSK_ENV,
    DeviceConfig,
    checked,
    read_device_config,
    write_device_config,
)
from provisioning.report import Progress, Skipped, Step, StepFailed
from provisioning.target import Target, run, tail

BASE_PACKAGES = ["python3-venv", "fonts-dejavu-core", "alsa-utils", "libgl1-mesa-dri"]
# pygame built against Debian's SDL, for KMSDRM (the PyPI wheels' SDL has Wayland and X only).
PYGAME_BUILD = [
    "python3-dev",
    "build-essential",
    "libsdl2-dev",
    "libsdl2-image-dev",
    "libsdl2-ttf-dev",
    "libsdl2-mixer-dev",
    "libfreetype-dev",
    "libportmidi-dev",
]
DISPLAY_PACKAGES = {
    "cage": ["cage", "xwayland"],  # Debian's cage will not start without Xwayland
    "kmsdrm": PYGAME_BUILD,
    "x11": ["xserver-xorg-core", "xserver-xorg-input-libinput", "xinit", "x11-xserver-utils"],
}
CMDLINES = ("/boot/firmware/cmdline.txt", "/boot/cmdline.txt")  # Pi OS bookworm, then older


def run_install(args: argparse.Namespace) -> int:
    target = Target(args.root)
    progress = Progress(args.lang)
    try:
        before = read_device_config(target.root) or DeviceConfig(hub="")
        config = checked(
            args.hub,
            before.site_code if args.site is None else args.site,
            args.name or before.name,
            args.kiosk_lang or before.lang,
        )
        if target.live and os.geteuid() != 0:
            raise StepFailed(
                _("This must run as root."),
                _("Put sudo in front of the same command."),
            )
    except StepFailed as failure:
        progress.run(_("Settings"), _raise(failure))
        return 2
    origin = releases.default_origin(
        args.source, args.constraints, args.wheelhouse, pygame_from_source=args.display == "kmsdrm"
    )
    steps: list[tuple[str, Callable[[Step], None]]] = [
        (_("Debian packages"), lambda step: packages(target, args.display, step)),
        (_("Kiosk user"), lambda step: kiosk_user(target, step)),
        (_("Program"), lambda step: program(target, origin, progress, step)),
        (_("Settings"), lambda step: settings(target, config, step)),
        (_("Start on the screen"), lambda step: autostart(target, args.display, step)),
        (_("Screen stays on"), lambda step: screen_on(target, step)),
        (_("Sound to the headset"), lambda step: headset(target, step)),
        (_("Hardware watchdog"), lambda step: watchdog(target, step)),
        (_("Reboot from the hub"), lambda step: reboot_permission(target, step)),
        (_("Units checked"), lambda step: verify_units(target, step)),
    ]
    for title, step in steps:
        if not progress.run(title, step):
            progress.say(_("Fix that and run the same command again; what is done stays done."))
            return 1
    if progress.changed == 0:
        progress.say(_("Nothing to change: this computer is a kiosk as asked."))
    if progress.restart_needed and target.live:
        progress.say(_("Some changes take effect after a restart."))
    progress.say(
        _(
            "Next: sudo lektiecafe provision check, then sudo reboot. The kiosk starts on the "
            "screen and shows a pairing code; type it on the hub's Kiosks page "
            "({hub}/admin/devices)."
        ),
        hub=config.hub,
    )
    return 0


def _raise(failure: StepFailed) -> Callable[[Step], None]:
    def step(_step: Step) -> None:
        raise failure

    return step


# ---- the steps ---------------------------------------------------------------------------------


def packages(target: Target, display: str, step: Step) -> None:
    wanted = BASE_PACKAGES + DISPLAY_PACKAGES[display]
    missing = [p for p in wanted if p not in installed_packages(target, wanted)]
    if not missing:
        return
    if not target.live:
        raise Skipped(
            _("not installed under --root; on the device: sudo apt-get install {packages}"),
            packages=" ".join(missing),
        )
    apt = {"DEBIAN_FRONTEND": "noninteractive"}
    result = run(["apt-get", "update"], env=apt)
    if result.returncode == 0:
        result = run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=apt)
    if result.returncode != 0:
        raise StepFailed(
            _("apt-get could not install {packages}:\n{output}"),
            _(
                "Check that the device is online (sudo apt-get update must work) and run the "
                "command again."
            ),
            packages=" ".join(missing),
            output=tail(result),
        )
    step.checked(_("systemd-analyze verify finds no problems"))
    step.changed(_("installed {packages}"), packages=" ".join(missing))


def installed_packages(target: Target, names: list[str]) -> set[str]:
    """Which of `names` dpkg has installed on the target (its status file, so --root works)."""
    status = target.read("/var/lib/dpkg/status") or ""
    found = set()
    for stanza in status.split("\n\n"):
        package = re.search(r"^Package: (\S+)", stanza, re.M)
        if package and re.search(r"^Status: .* installed$", stanza, re.M):
            found.add(package.group(1))
    return found & set(names)


def kiosk_user(target: Target, step: Step) -> None:
    """The user is declared in a sysusers.d file and made by systemd-sysusers: idempotent by
    design, works on a folder (--root) as on the device, and recreates the user should it go."""
    if target.write(units.SYSUSERS, units.SYSUSERS_CONF):
        step.changed(_("wrote {path}"), path=units.SYSUSERS)
    if has_user(target) and not step.changes:
        return
    root = [] if target.live else [f"--root={target.root}"]
    result = run(["systemd-sysusers", *root, str(target.path(units.SYSUSERS))])
    if result.returncode != 0 or not has_user(target):
        raise StepFailed(
            _("Could not create the user {user}:\n{output}"),
            _(
                "systemd-sysusers must work here (it is part of systemd); then run the command "
                "again."
            ),
            user=units.USER,
            output=tail(result),
        )
    step.checked(_("systemd-analyze verify finds no problems"))
    step.changed(_("user {user} in the groups video, render, input, audio"), user=units.USER)


def has_user(target: Target) -> bool:
    passwd = target.read("/etc/passwd") or ""
    return any(line.startswith(units.USER + ":") for line in passwd.splitlines())


def program(target: Target, origin: releases.Origin, progress: Progress, step: Step) -> None:
    current = releases.release_at(target, releases.CURRENT)
    # KMSDRM needs pygame built against Debian's SDL: a release without it is built again.
    wrong_pygame = current is not None and (
        origin.pygame_from_source and not current.origin.pygame_from_source
    )
    if current is None or wrong_pygame:
        progress.say(_("… installing the program (on a Raspberry Pi this takes 5–20 minutes)"))
        current = releases.build(target, origin)
        releases.switch_to(target, current)
        step.changed(
            _("version {version} in {path}"), version=current.version, path=current.device_path
        )
    if target.link(releases.COMMAND_LINK, f"{releases.CURRENT}/bin/lektiecafe"):
        step.changed(_("the command {path}"), path=releases.COMMAND_LINK)
    if not step.changes:
        step.note(
            _("version {version}; sudo lektiecafe provision update moves to a newer one"),
            version=current.version,
        )


def settings(target: Target, config: DeviceConfig, step: Step) -> None:
    if write_device_config(target, config):
        step.changed(_("wrote {path}"), path=KIOSK_ENV)
        step.restart_needed = True
    step.note(
        _("hub {hub}, site code {site}, name “{name}”"),
        hub=config.hub,
        site=config.site_code or "–",
        name=config.name,
    )


def autostart(target: Target, display: str, step: Step) -> None:
    files = {
        units.KIOSK_UNIT: (units.kiosk_unit(display), 0o644),
        units.RETRY_TIMER: (units.RETRY, 0o644),
        units.PAM_FILE: (units.PAM, 0o644) if display in ("cage", "x11") else None,
        units.XINITRC: (units.XINIT, 0o755) if display == "x11" else None,
    }
    for path, content in files.items():
        if content is None:
            if target.remove(path):
                step.changed(_("removed {path}"), path=path)
        elif target.write(path, *content):
            step.changed(_("wrote {path}"), path=path)
            step.restart_needed = True
    was_enabled = target.path(units.WANTS_LINK).is_symlink()
    if target.live:
        enabled = run(["systemctl", "daemon-reload"])
        if enabled.returncode == 0:
            enabled = run(["systemctl", "enable", "lektiecafe-kiosk.service"])
        if enabled.returncode != 0:
            raise StepFailed(
                _("systemctl could not enable the kiosk:\n{output}"),
                _("Run the command again; if it fails again, see journalctl -b."),
                output=tail(enabled),
            )
        newly_enabled = not was_enabled
    else:
        newly_enabled = target.link(units.WANTS_LINK, units.KIOSK_UNIT)  # systemctl enable's link
    if newly_enabled:
        step.changed(_("enabled at boot"))
    step.note(_("display {display}"), display=display)


def screen_on(target: Target, step: Step) -> None:
    """consoleblank=0: the kernel never blanks the console (at boot, between two kiosk starts).
    While the kiosk runs, SDL keeps the screen on (cage, KMSDRM) and xinitrc says so to X."""
    cmdline = next((path for path in CMDLINES if target.exists(path)), None)
    if cmdline is None:
        raise Skipped(_("no Raspberry Pi cmdline.txt here; the kiosk keeps the screen on itself"))
    line = (target.read(cmdline) or "").strip()
    if re.search(r"(^|\s)consoleblank=0(\s|$)", line):
        return
    words = [w for w in line.split() if not w.startswith("consoleblank=")]
    mode = target.path(cmdline).stat().st_mode & 0o7777
    target.write(cmdline, " ".join([*words, "consoleblank=0"]) + "\n", mode)
    step.changed(_("consoleblank=0 in {path}"), path=cmdline)
    step.restart_needed = True


def headset(target: Target, step: Step) -> None:
    if target.write(units.HEADSET, units.HEADSET_CONF):
        step.changed(
            _("wrote {path} (the USB headset is the default sound card)"), path=units.HEADSET
        )
        step.restart_needed = True


def watchdog(target: Target, step: Step) -> None:
    if target.live and not os.path.exists("/dev/watchdog"):
        if target.remove(units.WATCHDOG_DROPIN):
            step.changed(_("removed {path}"), path=units.WATCHDOG_DROPIN)
            return
        raise Skipped(_("this computer has none (/dev/watchdog)"))
    if target.write(units.WATCHDOG_DROPIN, units.WATCHDOG):
        step.changed(_("wrote {path}"), path=units.WATCHDOG_DROPIN)
        step.restart_needed = True
    if not target.live:
        step.note(_("used where the board has one (a Raspberry Pi has)"))


def reboot_permission(target: Target, step: Step) -> None:
    if target.write(units.POLKIT_RULE, units.POLKIT):
        step.changed(_("wrote {path}"), path=units.POLKIT_RULE)


def verify_units(target: Target, step: Step) -> None:
    """systemd-analyze verify, as systemd will read the units on the device."""
    if not target.exists("/usr/lib/systemd/system/sysinit.target") and not target.exists(
        "/lib/systemd/system/sysinit.target"
    ):
        raise Skipped(_("no systemd in this folder to check them against"))
    root = [] if target.live else [f"--root={target.root}"]
    unit_files = [units.KIOSK_UNIT, units.RETRY_TIMER]
    result = run(["systemd-analyze", "verify", *root, *unit_files], timeout=120)
    if result.returncode != 0 or result.stderr.strip():
        raise StepFailed(
            _("systemd-analyze verify found problems:\n{output}"),
            _("Run the command again; if it fails again, report the lines above to the project."),
            output=tail(result),
        )
    step.checked(_("systemd-analyze verify finds no problems"))
