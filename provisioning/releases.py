"""The program on the device: each version in its own virtual environment under
/opt/lektiecafe/releases/, `current` pointing at the one the kiosk runs and `previous` at the one
before, kept for one rollback. A new version is installed beside the running one and switched to
in one symlink rename, so an update that fails halfway leaves the kiosk as it was.

A release is complete once its RELEASE.json is written (after pip succeeded): it records the
version and where the program came from, so `provision update` can fetch the next one the same
way. Under --root the venv is built in the folder, then its scripts are pointed at the paths they
have on the device (a venv cannot move); that needs the same processor and Python as the device."""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lektiecafe
from appliance.texts import _
from provisioning.report import StepFailed
from provisioning.target import Target, run, tail
from provisioning.units import APP

RELEASES = f"{APP}/releases"
CURRENT = f"{APP}/current"
PREVIOUS = f"{APP}/previous"
COMMAND_LINK = "/usr/local/bin/lektiecafe"
RELEASE_FILE = "RELEASE.json"
CHECKOUT = Path(lektiecafe.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Origin:
    """Where a release's program comes from, and how pip gets it."""

    source: str  # a folder (a checkout), a wheel, or a requirement such as lektiecafe==0.2.0
    constraints: str | None = None
    wheelhouse: str | None = None  # install offline from these wheels (pip --no-index)
    pygame_from_source: bool = False  # against Debian's SDL, for KMSDRM


@dataclass(frozen=True)
class Release:
    name: str  # the folder under releases/
    version: str
    origin: Origin

    @property
    def device_path(self) -> str:
        return f"{RELEASES}/{self.name}"


def default_origin(
    source: str | None, constraints: str | None, wheelhouse: str | None, pygame_from_source: bool
) -> Origin:
    """The command line's choice; by default the checkout this command runs from (with its
    constraints.txt), or this version from the package index when it runs from an install."""
    if source is None:
        has_checkout = (CHECKOUT / "pyproject.toml").is_file()
        source = str(CHECKOUT) if has_checkout else f"lektiecafe=={lektiecafe.__version__}"
    folder = Path(source).expanduser()
    if folder.exists():
        source = str(folder.resolve())
        if constraints is None and (folder / "constraints.txt").is_file():
            constraints = str(folder.resolve() / "constraints.txt")
    return Origin(
        source=source,
        constraints=str(Path(constraints).resolve()) if constraints else None,
        wheelhouse=str(Path(wheelhouse).resolve()) if wheelhouse else None,
        pygame_from_source=pygame_from_source and wheelhouse is None,
    )


def requirement(source: str) -> str:
    """`source` with the kiosk's extra: DIR[kiosk], file.whl[kiosk] or name[kiosk]==version."""
    if Path(source).exists():
        return f"{source}[kiosk]"
    name, rest = re.match(r"([A-Za-z0-9._-]+)(.*)", source).groups()  # type: ignore[union-attr]
    return source if rest.startswith("[") else f"{name}[kiosk]{rest}"


def release_at(target: Target, device_path: str) -> Release | None:
    """The complete release a link such as `current` points at, or None."""
    link = target.path(device_path)
    if not link.is_symlink():
        return None
    folder = link.parent / link.readlink()
    try:
        data = json.loads((folder / RELEASE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (folder / "bin" / "lektiecafe").exists():
        return None
    return Release(folder.name, str(data["version"]), Origin(**data["origin"]))


def build(target: Target, origin: Origin) -> Release:
    """A new complete release (not yet current); StepFailed with pip's last words if not."""
    name = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    while target.exists(f"{RELEASES}/{name}"):
        name += "b"
    folder = target.path(f"{RELEASES}/{name}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _build(target, folder, origin)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # never a half-made release
        raise


def _build(target: Target, folder: Path, origin: Origin) -> Release:
    made = run([sys.executable, "-m", "venv", str(folder)], timeout=600)
    if made.returncode != 0:
        raise StepFailed(
            _("Could not make a virtual environment:\n{output}"),
            _(
                "Install Python's venv module (sudo apt-get install python3-venv) and run the "
                "command again."
            ),
            output=tail(made),
        )
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    pip += ["--no-input", "--quiet"]
    if origin.constraints:
        pip += ["-c", origin.constraints]
    if origin.wheelhouse:
        pip += ["--no-index", "--find-links", origin.wheelhouse]
    if origin.pygame_from_source:
        pip += ["--no-binary", "pygame"]
    installed = run([*pip, requirement(origin.source)])
    if installed.returncode != 0:
        raise StepFailed(
            _("pip could not install the program from {source}:\n{output}"),
            _(
                "Check that the device is online (or that --source/--wheelhouse is right) and run "
                "the same command again."
            ),
            source=origin.source,
            output=tail(installed),
        )
    asked = run([str(folder / "bin" / "python"), "-c", VERSION])
    if asked.returncode != 0:
        raise StepFailed(
            _("The new program does not start:\n{output}"),
            _("Run the same command again; if it fails again, ask the hub's IT contact."),
            output=tail(asked),
        )
    device_folder = f"{RELEASES}/{folder.name}"
    if not target.live:
        _point_scripts_at(folder, device_folder)
    release = Release(folder.name, (asked.stdout.split() or ["?"])[-1], origin)
    record = {"version": release.version, "origin": asdict(origin)}
    (folder / RELEASE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return release


# The kiosk's parts import, and the version (last: pygame greets on stdout).
VERSION = (
    "import importlib.metadata as m, aiortc, pygame, appliance.state, kiosk_ui.app; "
    "print(m.version('lektiecafe'))"
)


def _point_scripts_at(folder: Path, device_folder: str) -> None:
    """The venv's scripts name their interpreter by its path in the folder; give them the path
    the release will have on the device."""
    for script in (folder / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if str(folder).encode() in data[:4096]:
            script.write_bytes(data.replace(str(folder).encode(), device_folder.encode()))


def switch_to(target: Target, release: Release) -> Release | None:
    """Make `release` current and the current one previous; drop any older release. Returns the
    release that is now previous."""
    before = release_at(target, CURRENT)
    if before is not None and before.name != release.name:
        target.link(PREVIOUS, f"releases/{before.name}")
    target.link(CURRENT, f"releases/{release.name}")
    target.link(COMMAND_LINK, f"{CURRENT}/bin/lektiecafe")
    prune(target)
    return release_at(target, PREVIOUS)


def prune(target: Target) -> list[str]:
    """Remove releases that are neither current nor previous (and half-made ones)."""
    keep = {target.path(link).resolve() for link in (CURRENT, PREVIOUS) if target.exists(link)}
    releases = target.path(RELEASES)
    removed = []
    for folder in sorted(releases.iterdir()) if releases.is_dir() else []:
        if folder.resolve() not in keep:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed
