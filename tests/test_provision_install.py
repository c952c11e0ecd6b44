"""`lektiecafe provision install`, `update` and `reset` as site staff run them: the real command
(a subprocess), with --root pointed at a folder made to look like a fresh Raspberry Pi OS Lite
image (systemd's own units, /usr/bin/env, the boot partition's cmdline.txt, the system groups).
The program really goes into a virtual environment with the [kiosk] extra, once for the module,
offline from a wheelhouse; every other test starts from a hard-linked copy of that install."""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.state import Identity, KioskState
from provisioning.config import parse_env
from provisioning.units import kiosk_unit
from tests.conftest import ROOT
from tests.kiosks import pair_into
from tests.test_kiosk import Kiosk

pytestmark = pytest.mark.slow

HUB = "https://lektiecafe.example.dk"
CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait"
STEPS_THAT_CHANGE = (
    "Kiosk user", "Program", "Settings", "Start on the screen", "Screen stays on",
    "Sound to the headset", "Hardware watchdog", "Reboot from the hub",
)  # fmt: skip
UNITS = [
    "/etc/systemd/system/lektiecafe-kiosk.service",
    "/etc/systemd/system/lektiecafe-kiosk-retry.timer",
]


NOBODY = pwd.getpwnam("nobody")
DEBIAN_PYTHON = "/usr/bin/python3"  # what a fresh Raspberry Pi OS has (with python3-venv)


def provision(
    root: Path, *args: str, lang: str | None = "en", python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """`python -m lektiecafe.cli provision --root ROOT ...`: from this checkout, the way the
    docs' first install runs it, or the installed program's python (`sudo lektiecafe …`)."""
    command = [python, "-m", "lektiecafe.cli", "provision", "--root", str(root)]
    command += ["--lang", lang] if lang else []
    return subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The step lines by their heading: {"Program": "✓ Program (unchanged): …"}."""
    found = {}
    for line in result.stdout.splitlines():
        if line[:1] in "✓✗–":
            heading = line[2:].split(":")[0].split(" (")[0]
            found[heading] = line
    return found


def image(root: Path) -> Path:
    """A folder like a freshly flashed Raspberry Pi OS Lite (bookworm) card, as far as install
    reads it."""
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir()
    shutil.copy("/usr/bin/env", root / "usr/bin/env")
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(CMDLINE + "\n")
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    groups = ["root:x:0:", "audio:x:29:", "video:x:44:", "input:x:101:", "render:x:105:"]
    (root / "etc/group").write_text("\n".join(groups) + "\n")
    return root


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kiosk's dependencies as wheels, so each venv installs offline and quickly."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    kiosk = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, "-w", str(folder), *kiosk["kiosk"], "setuptools>=77"], check=True)
    return folder


class Installed:
    def __init__(self, root: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.root, self.result = root, result

    def text(self, path: str) -> str:
        return (self.root / path.lstrip("/")).read_text()

    @property
    def python(self) -> str:
        """The installed program's interpreter (what /usr/local/bin/lektiecafe runs)."""
        return str(self.root / "opt/lektiecafe/current/bin/python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Installed:
    root = image(tmp_path_factory.mktemp("sdcard"))
    result = provision(
        root, "install", "--hub", HUB + "/", "--site", "BIB-7", "--name", "Biblioteket, 1. sal",
        "--wheelhouse", str(wheelhouse), python=DEBIAN_PYTHON,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return Installed(root, result)


def link_program(source: str, destination: str) -> None:
    program = str(Path(source)).find("/opt/lektiecafe/") >= 0
    os.link(source, destination) if program else shutil.copy2(source, destination)


@pytest.fixture
def copy(installed: Installed, tmp_path: Path) -> Installed:
    """The installed card, copied; the program's files (never written in place) as hard links."""
    root = tmp_path / "sdcard"
    shutil.copytree(installed.root, root, symlinks=True, copy_function=link_program)
    return Installed(root, installed.result)


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *UNITS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def snapshot(root: Path) -> dict[str, Any]:
    """Every file and link under root with its content (or target) and modification time."""
    found: dict[str, Any] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():
                found[str(path)] = ("link", os.readlink(path))
            elif path.is_file():
                found[str(path)] = (path.stat().st_mtime_ns, path.stat().st_mode, path.read_bytes())
    return found


# ---- install ---------------------------------------------------------------------------------


def test_install_turns_an_sd_card_image_into_a_kiosk(installed):
    steps = lines(installed.result)
    assert all(line.startswith(("✓", "–")) for line in steps.values()), installed.result.stdout
    assert "sudo apt-get install" in steps["Debian packages"]
    assert (
        " cage xwayland" in steps["Debian packages"]
        and "libsdl2-dev" not in steps["Debian packages"]
    )

    unit = installed.text(UNITS[0])
    assert "ExecStart=/usr/bin/env -u WATCHDOG_PID XDG_RUNTIME_DIR=/run/lektiecafe-kiosk " in unit
    assert "/usr/bin/cage -d -- \\\n    /opt/lektiecafe/current/bin/lektiecafe kiosk" in unit
    assert "--hub ${LEKTIECAFE_HUB} --name ${LEKTIECAFE_NAME}" in unit
    for setting in (
        "Type=notify", "WatchdogSec=30", "NotifyAccess=all", "PAMName=lektiecafe-kiosk",
        "TTYPath=/dev/tty1", "Environment=SDL_VIDEODRIVER=wayland", "Restart=always",
        "StartLimitBurst=5", "OnFailure=lektiecafe-kiosk-retry.timer", "NoNewPrivileges=yes",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "DevicePolicy=closed",
        "DeviceAllow=char-drm rw", "DeviceAllow=char-video4linux rw", "DeviceAllow=char-alsa rw",
        "DeviceAllow=char-input r", "EnvironmentFile=-/etc/lektiecafe/kiosk.env",
        "User=lektiecafe-kiosk", "Conflicts=getty@tty1.service", "WantedBy=multi-user.target",
    ):  # fmt: skip
        assert f"\n{setting}\n" in unit, setting
    wants = installed.root / "etc/systemd/system/multi-user.target.wants/lektiecafe-kiosk.service"
    assert os.readlink(wants) == UNITS[0]
    timer = installed.text(UNITS[1])
    assert "OnActiveSec=10min" in timer and "RemainAfterElapse=no" in timer
    assert "pam_systemd.so" in installed.text("/etc/pam.d/lektiecafe-kiosk")

    env = installed.text("/etc/lektiecafe/kiosk.env")
    assert f'LEKTIECAFE_HUB="{HUB}"\n' in env  # without the trailing slash
    assert 'LEKTIECAFE_SITE_CODE="BIB-7"\n' in env
    assert 'LEKTIECAFE_NAME="Biblioteket, 1. sal"\n' in env
    assert 'LEKTIECAFE_LANG="da"\n' in env

    assert installed.text("/boot/firmware/cmdline.txt") == CMDLINE + " consoleblank=0\n"
    assert "RuntimeWatchdogSec=15" in installed.text(
        "/etc/systemd/system.conf.d/lektiecafe-watchdog.conf"
    )
    assert "options snd slots=snd-usb-audio" in installed.text(
        "/etc/modprobe.d/lektiecafe-headset.conf"
    )
    assert "org.freedesktop.login1.reboot" in installed.text(
        "/etc/polkit-1/rules.d/50-lektiecafe-kiosk.rules"
    )
    assert installed.text("/etc/sysusers.d/lektiecafe-kiosk.conf").startswith("# The kiosk's own")
    passwd = installed.text("/etc/passwd").splitlines()
    kiosk_user = [line for line in passwd if line.startswith("lektiecafe-kiosk:")]
    assert kiosk_user and kiosk_user[0].endswith(":/var/lib/lektiecafe-kiosk:/usr/sbin/nologin")
    groups = {line.split(":")[0]: line for line in installed.text("/etc/group").splitlines()}
    for group in ("video", "render", "input", "audio"):
        assert groups[group].endswith("lektiecafe-kiosk"), group


def test_the_program_is_a_working_kiosk_venv_with_device_paths(installed):
    current = installed.root / "opt/lektiecafe/current"
    release = json.loads((current / "RELEASE.json").read_text())
    assert release["version"] == "0.1.0" and release["origin"]["source"] == str(ROOT)
    assert (current / "bin/python").resolve() == Path(DEBIAN_PYTHON).resolve()
    assert os.readlink(installed.root / "usr/local/bin/lektiecafe") == (
        "/opt/lektiecafe/current/bin/lektiecafe"
    )
    # The scripts name the interpreter by its path on the device, not in this folder.
    release_dir = os.readlink(current)
    shebang = (current / "bin/lektiecafe").read_text().splitlines()[0]
    assert shebang == f"#!/opt/lektiecafe/{release_dir}/bin/python"
    imports = "import aiortc, pygame, tinydb, socketio, appliance.visit, kiosk_ui.app; import flask"
    result = subprocess.run(
        [str(current / "bin/python"), "-c", imports], capture_output=True, text=True, check=False
    )
    assert "No module named 'flask'" in result.stderr  # the kiosk extra, and never the hub's


def test_the_installed_units_pass_systemd_analyze_verify(installed):
    result = verify(installed.root)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "systemd-analyze verify finds no problems" in lines(installed.result)["Units checked"]


def test_the_repository_unit_is_what_install_writes(installed):
    assert (ROOT / "systemd/lektiecafe-kiosk.service").read_text() == installed.text(UNITS[0])


def test_a_second_install_changes_nothing_and_says_so(installed):
    before = snapshot(installed.root)
    result = provision(
        installed.root, "install", "--hub", HUB, "--site", "BIB-7", "--name", "Biblioteket, 1. sal"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(installed.root) == before
    steps = lines(result)
    for heading in STEPS_THAT_CHANGE:
        assert steps[heading].startswith(f"✓ {heading} (unchanged)"), steps[heading]
    assert "Nothing to change" in result.stdout


def test_install_repairs_what_is_wrong_and_keeps_the_rest(copy):
    unit = copy.root / UNITS[0].lstrip("/")
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=no"))
    (copy.root / "etc/polkit-1/rules.d/50-lektiecafe-kiosk.rules").unlink()
    env = copy.root / "etc/lektiecafe/kiosk.env"
    env.write_text(env.read_text() + "KIOSK_ARGS=--idle-after 120\n")
    result = provision(copy.root, "install", "--hub", "https://hub2.example.dk", "--site", "BIB-7",
                       "--name", "Biblioteket, 1. sal")  # fmt: skip
    assert result.returncode == 0, result.stdout
    steps = lines(result)
    assert steps["Start on the screen"].startswith(
        "✓ Start on the screen: wrote /etc/systemd/system/lektiecafe-kiosk.service; display cage"
    )
    assert steps["Reboot from the hub"].startswith("✓ Reboot from the hub: wrote /etc/polkit-1")
    assert steps["Settings"].startswith("✓ Settings: wrote /etc/lektiecafe/kiosk.env")
    assert steps["Program"].startswith("✓ Program (unchanged)")
    assert "\nProtectSystem=strict\n" in copy.text(UNITS[0])
    assert 'LEKTIECAFE_HUB="https://hub2.example.dk"' in env.read_text()
    assert env.read_text().endswith("KIOSK_ARGS=--idle-after 120\n")  # an administrator's line
    assert "Nothing to change" not in result.stdout


def test_kmsdrm_draws_without_a_compositor_and_x11_with_xinit(copy):
    wheels = json.loads(copy.text("/opt/lektiecafe/current/RELEASE.json"))["origin"]["wheelhouse"]
    result = provision(
        copy.root, "install", "--hub", HUB, "--display", "kmsdrm", "--wheelhouse", wheels
    )
    assert result.returncode == 0, result.stdout
    unit = copy.text(UNITS[0])
    assert "\nExecStart=/opt/lektiecafe/current/bin/lektiecafe kiosk --data-dir " in unit
    assert "\nEnvironment=SDL_VIDEODRIVER=kmsdrm\n" in unit and "cage" not in unit
    assert "\nNotifyAccess=main\n" in unit and "PAMName" not in unit
    assert "removed /etc/pam.d/lektiecafe-kiosk" in lines(result)["Start on the screen"]
    assert verify(copy.root).returncode == 0
    # Options left out keep what the first install wrote.
    assert 'LEKTIECAFE_SITE_CODE="BIB-7"' in copy.text("/etc/lektiecafe/kiosk.env")
    assert 'LEKTIECAFE_NAME="Biblioteket, 1. sal"' in copy.text("/etc/lektiecafe/kiosk.env")

    result = provision(copy.root, "install", "--hub", HUB, "--display", "x11")
    assert result.returncode == 0, result.stdout
    assert "/usr/bin/xinit /etc/lektiecafe/xinitrc -- /usr/lib/xorg/Xorg" in copy.text(UNITS[0])
    xinitrc = copy.root / "etc/lektiecafe/xinitrc"
    assert "xset s off s noblank -dpms" in xinitrc.read_text() and os.access(xinitrc, os.X_OK)
    assert verify(copy.root).returncode == 0


def test_a_wrong_hub_address_fails_in_danish_with_what_to_do(tmp_path):
    result = provision(tmp_path, "install", "--hub", "lektiecafe.example.dk", lang=None)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        "✗ Indstillinger: “lektiecafe.example.dk” er ikke en webadresse.",
        "  → Skriv hubbens adresse, som den ser ud i en browser, "
        "f.eks. --hub https://lektiecafe.example.dk",
    ]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_failed_program_install_stops_with_pips_words_and_leaves_nothing_half_made(tmp_path):
    root = image(tmp_path / "sdcard")
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    result = provision(
        root, "install", "--hub", HUB, "--source", "lektiecafe==99.0", "--wheelhouse", str(empty)
    )
    assert result.returncode == 1
    steps = lines(result)
    assert steps["Program"] == (
        "✗ Program: pip could not install the program from lektiecafe==99.0:"
    )
    assert "No matching distribution" in result.stdout or "Could not find" in result.stdout
    assert "→ Check that the device is online" in result.stdout
    assert "Settings" not in steps  # stopped there
    assert list((root / "opt/lektiecafe/releases").iterdir()) == []


# ---- reset -----------------------------------------------------------------------------------


def test_reset_forgets_the_pairing_and_keeps_the_hub_even_when_the_hub_is_away(copy):
    data_dir = copy.root / "var/lib/lektiecafe-kiosk"
    state = KioskState(data_dir)
    state.hub_url = "http://127.0.0.1:9"  # nothing listens there
    state.store_identity(Identity("secret-token", 12, 3, "Hovedbiblioteket"))
    state.enqueue("visit:feedback", {"rating": 5}, visit_id=7)
    state.close()

    result = provision(copy.root, "reset", "--site", "UNGDOMSKLUB", python=copy.python)
    assert result.returncode == 0, result.stdout
    assert list(data_dir.iterdir()) == []
    steps = lines(result)
    assert steps["Tell the hub"].startswith("– Tell the hub: http://127.0.0.1:9 cannot be reached")
    assert "unpair kiosk 12 at Hovedbiblioteket on the hub's Kiosks page" in steps["Tell the hub"]
    wiped = steps["Wipe the kiosk's memory"]
    assert "emptied /var/lib/lektiecafe-kiosk" in wiped
    assert "1 reports or feedback not yet sent were deleted" in wiped
    env = copy.text("/etc/lektiecafe/kiosk.env")
    assert f'LEKTIECAFE_HUB="{HUB}"' in env and 'LEKTIECAFE_SITE_CODE="UNGDOMSKLUB"' in env
    assert "shows a new pairing code" in result.stdout
    assert KioskState(data_dir).identity is None


def test_reset_unpairs_the_kiosk_on_the_hub(copy, hub):
    data_dir = copy.root / "var/lib/lektiecafe-kiosk"
    paired = pair_into(hub, data_dir)
    state = KioskState(data_dir)
    state.hub_url = hub.url
    state.close()

    result = provision(copy.root, "reset", python=copy.python)
    assert result.returncode == 0, result.stdout
    assert lines(result)["Tell the hub"] == (
        f"✓ Tell the hub: kiosk {paired['device_id']} at {paired['site']['name']} unpaired"
    )
    again = requests.post(
        hub.url + "/api/devices/unpair",
        headers={"Authorization": f"Bearer {paired['device_token']}"},
        timeout=10,
    )
    assert again.status_code == 401  # the old token is gone on the hub too
    assert list(data_dir.iterdir()) == []


# ---- update ----------------------------------------------------------------------------------


@pytest.fixture
def hub_env() -> dict[str, str]:
    return {"LEKTIECAFE_PAIRING_INTERVAL_S": "1"}


@pytest.fixture
def kiosk_on(copy: Installed, hub: Any) -> Iterator[Kiosk]:
    """The kiosk program running on this machine with the card's data dir, paired."""
    data_dir = copy.root / "var/lib/lektiecafe-kiosk"
    pair_into(hub, data_dir)
    kiosk = Kiosk(hub, data_dir, "--fake-camera")
    yield kiosk
    kiosk.stop()


def test_update_waits_for_the_visit_then_switches_and_keeps_one_rollback(copy, kiosk_on):
    old = os.readlink(copy.root / "opt/lektiecafe/current")
    kiosk_on.driver.wait_screen("attract", timeout=30)
    kiosk_on.driver.tap("start")
    kiosk_on.driver.wait_screen("nickname")

    refused = provision(copy.root, "update", python=copy.python)
    assert refused.returncode == 1
    assert lines(refused)["Kiosk not in use"].startswith(
        "✗ Kiosk not in use: A student is using the kiosk right now."
    )
    assert "→ Wait until the visit has ended" in refused.stdout
    assert os.readlink(copy.root / "opt/lektiecafe/current") == old

    kiosk_on.stop()  # the visit is over (the kiosk idled out or was switched off)
    time.sleep(1)  # a new release's name has the second in it
    updated = provision(copy.root, "update", python=copy.python)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    new = os.readlink(copy.root / "opt/lektiecafe/current")
    assert new != old and os.readlink(copy.root / "opt/lektiecafe/previous") == old
    assert "kept for sudo lektiecafe provision update --rollback" in lines(updated)["New version"]
    assert lines(updated)["Restart the kiosk"].startswith("– Restart the kiosk: not under --root")
    assert subprocess.run([str(copy.root / "opt/lektiecafe/current/bin/python"), "-c",
                           "import kiosk_ui.app"], check=False).returncode == 0  # fmt: skip

    back = provision(copy.root, "update", "--rollback", python=copy.python)
    assert back.returncode == 0, back.stdout
    assert os.readlink(copy.root / "opt/lektiecafe/current") == old
    assert os.readlink(copy.root / "opt/lektiecafe/previous") == new  # forward again if need be
    assert sorted(p.name for p in (copy.root / "opt/lektiecafe/releases").iterdir()) == sorted(
        [Path(old).name, Path(new).name]
    )


# ---- the unit's command, under cage ------------------------------------------------------------


def unit_command(unit: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """ExecStart= and Environment= of `unit`, expanded as systemd does: ${X} is one word,
    $X is split into words."""
    text = unit.replace("\\\n", " ")
    values = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    )
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    words: list[str] = []
    for word in shlex.split(exec_start.removeprefix("ExecStart=")):
        if word.startswith("${") and word.endswith("}"):
            words.append(env.get(word[2:-1], ""))
        elif word.startswith("$"):
            words += shlex.split(env.get(word[1:], ""))
        else:
            words.append(word)
    return words, values


@pytest.mark.skipif(
    not (Path("/usr/bin/cage").exists() and Path("/usr/bin/Xwayland").exists())
    or os.geteuid() != 0,
    reason="needs root and Debian's cage and xwayland (scripts/ensure-test-tools)",
)
def test_the_units_command_runs_the_kiosk_under_cage_and_it_pings_the_watchdog(installed):
    """What systemd would run, with what this machine lacks swapped in: no screen (cage's
    headless backend), no sound card, and the paths of the card's folder. systemd's part is
    played by setpriv (User=) and a notify socket (NOTIFY_SOCKET, WATCHDOG_USEC/PID)."""
    shared = Path(tempfile.mkdtemp(prefix="lektiecafe-cage-"))  # readable by the kiosk's user
    try:
        shared.chmod(0o755)
        shutil.copytree(
            installed.root / "opt", shared / "opt", symlinks=True, copy_function=os.link
        )
        data_dir, runtime_dir = shared / "data", shared / "run"
        for folder in (data_dir, runtime_dir):
            folder.mkdir(mode=0o700)
            os.chown(folder, NOBODY.pw_uid, NOBODY.pw_gid)
        env = parse_env(installed.text("/etc/lektiecafe/kiosk.env"))
        words, unit_env = unit_command(installed.text(UNITS[0]), env)
        assert words[:4] == [
            "/usr/bin/env",
            "-u",
            "WATCHDOG_PID",
            "XDG_RUNTIME_DIR=/run/lektiecafe-kiosk",
        ]
        assert words[4:7] == ["/usr/bin/cage", "-d", "--"]
        assert words[7] == "/opt/lektiecafe/current/bin/lektiecafe"
        python = str(shared / "opt/lektiecafe/current/bin/python")
        words = [
            *words[:3], f"XDG_RUNTIME_DIR={runtime_dir}", *words[4:7],
            python, "-m", "lektiecafe.cli",
            *[str(data_dir) if w == "/var/lib/lektiecafe-kiosk" else w for w in words[8:]],
        ]  # fmt: skip
        assert words[-6:] == ["--hub", HUB, "--name", "Biblioteket, 1. sal", "--lang", "da"]

        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(shared / "notify"))
        (shared / "notify").chmod(0o666)
        notify.settimeout(1)
        systemd_env = {
            "PATH": "/usr/bin:/bin", "HOME": str(data_dir), "NOTIFY_SOCKET": str(shared / "notify"),
            "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1",  # cage's pid, under systemd
            **unit_env, "SDL_AUDIODRIVER": "dummy",
            "WLR_BACKENDS": "headless", "WLR_RENDERER": "pixman", "WLR_LIBINPUT_NO_DEVICES": "1",
        }  # fmt: skip
        user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        cage = subprocess.Popen(
            [*user, *words], env=systemd_env, cwd="/", start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        heard: list[str] = []
        deadline = time.monotonic() + 60
        try:
            while heard.count("WATCHDOG=1") < 2 and time.monotonic() < deadline:
                with suppress(TimeoutError):
                    heard.append(notify.recv(4096).decode())
                assert cage.poll() is None, cage.communicate()[0].decode()
        finally:
            os.killpg(cage.pid, signal.SIGTERM)
            cage.wait(15)
            notify.close()
        assert heard[0] == "READY=1" and heard.count("WATCHDOG=1") >= 2, heard
        assert (data_dir / "kiosk.json").exists()  # the kiosk itself ran, with the unit's data dir
    finally:
        shutil.rmtree(shared)


@pytest.mark.parametrize("display", ["cage", "kmsdrm", "x11"])
def test_the_docs_give_each_kiosk_units_security_score(display, tmp_path):
    unit = tmp_path / "lektiecafe-kiosk.service"
    unit.write_text(kiosk_unit(display))
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", result.stdout)
    assert score, result.stdout + result.stderr
    row = f"| `lektiecafe-kiosk.service`, `--display {display}`"
    docs = [
        line for line in (ROOT / "docs/kiosk.md").read_text().splitlines() if line.startswith(row)
    ]
    assert docs and docs[0].endswith(f"| {score[1]} {score[2]} |"), (docs, score[0])
