"""The options of `lektiecafe provision` and which step runs them (stdlib only: `lektiecafe`
builds its parser from this module on every command, the hub's included)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        help="install into this folder (a mounted SD card image) instead of this computer",
    )
    p.add_argument("--lang", choices=["da", "en"], default="da", help="language of the output")
    sub = p.add_subparsers(dest="provision_command", required=True)
    install = sub.add_parser("install", help="make this computer a kiosk (safe to run again)")
    install.add_argument("--hub", required=True, help="the hub's address, e.g. https://…")
    # Left out, --site, --name and --kiosk-lang keep what an earlier install wrote.
    install.add_argument("--site", help="the site's code, so the kiosk is paired to it")
    install.add_argument("--name", help="the name offered to the hub when pairing (default Kiosk)")
    install.add_argument(
        "--kiosk-lang",
        choices=["da", "en"],
        help="the kiosk's language between visits (default da; students can switch)",
    )
    install.add_argument(
        "--display",
        choices=["cage", "kmsdrm", "x11"],
        default="cage",
        help="how the kiosk draws: the cage compositor (default), SDL's KMSDRM, or X",
    )
    _program_options(install)
    check = sub.add_parser("check", help="check camera, sound, screen, network and pairing")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--hub", help="check this hub address instead of the kiosk's own")
    check.add_argument(
        "--data-dir", type=Path, help="the kiosk's state (default <root>/var/lib/lektiecafe-kiosk)"
    )
    check.add_argument(
        "--fake-camera", action="store_true", help="the synthetic camera and sound, as the kiosk's"
    )
    reset = sub.add_parser(
        "reset", help="unpair and wipe local state (to move the kiosk to another site)"
    )
    reset.add_argument("--hub", help="a new hub address (default: keep the one installed)")
    reset.add_argument("--site", help="the new site's code")
    update = sub.add_parser(
        "update", help="move to a new version (the old one is kept for one rollback)"
    )
    update.add_argument(
        "--rollback", action="store_true", help="go back to the version before the last update"
    )
    _program_options(update)


def _program_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        metavar="PATH|SPEC",
        help="where the program comes from: a checkout, a wheel or e.g. lektiecafe==0.2.0 "
        "(default: this checkout; for update: where the installed version came from)",
    )
    p.add_argument(
        "--wheelhouse", metavar="DIR", help="install offline from the wheels in DIR (pip wheel)"
    )
    p.add_argument("--constraints", metavar="FILE", help="pip constraints (default: the source's)")


def run(args: argparse.Namespace) -> int:
    if args.provision_command == "check":
        from provisioning.check import run as check  # imports appliance: only when checking

        return check(args)
    # Each command imports only its own module: install must run before anything is installed.
    if args.provision_command == "install":
        from provisioning.install import run_install

        return run_install(args)
    if args.provision_command == "update":
        from provisioning.update import run_update

        return run_update(args)
    from provisioning.reset import run_reset

    return run_reset(args)
