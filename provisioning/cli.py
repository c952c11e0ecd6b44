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
    install.add_argument("--site", help="the site's code, so the kiosk is paired to it")
    check = sub.add_parser("check", help="check camera, sound, screen, network and pairing")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--hub", help="check this hub address instead of the kiosk's own")
    check.add_argument(
        "--data-dir", type=Path, help="the kiosk's state (default <root>/var/lib/lektiecafe-kiosk)"
    )
    check.add_argument(
        "--fake-camera", action="store_true", help="the synthetic camera and sound, as the kiosk's"
    )
    sub.add_parser("reset", help="unpair and wipe local state (to move the kiosk to another site)")
    sub.add_parser("update", help="move to a new version (the old one is kept for one rollback)")


def run(args: argparse.Namespace) -> int:
    if args.provision_command == "check":
        from provisioning.check import run as check  # imports appliance: only when checking

        return check(args)
    raise SystemExit("lektiecafe provision: not built yet")
