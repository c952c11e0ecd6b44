"""The hub's systemd unit: it passes `systemd-analyze verify`, its security score is the one
docs/operations.md reports, and the real hub tells a NOTIFY_SOCKET it is ready, then pings the
watchdog, as `Type=notify` with `WatchdogSec` expects."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, start_hub, stop

UNIT = ROOT / "systemd/lektiecafe-hub.service"


def installable_unit(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart pointing at this checkout's `lektiecafe`, which exists
    here (verify checks that the program is there); everything else as shipped."""
    program = ROOT / ".venv/bin/lektiecafe"
    assert program.exists(), "no .venv/bin/lektiecafe: run `make` first"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/lektiecafe/.venv/bin/lektiecafe", str(program)))
    return unit


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: run scripts/ensure-test-tools")
    return subprocess.run(
        ["systemd-analyze", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    text = UNIT.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitBurst="):
        assert setting in text
    result = systemd_analyze("verify", str(installable_unit(tmp_path)))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_security_score_is_the_one_the_docs_report(tmp_path):
    result = systemd_analyze("security", "--offline=yes", str(installable_unit(tmp_path)))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert found, result.stdout[-2000:]
    score = float(found.group(1))
    assert score <= 2.0, result.stdout  # "OK" is below 4.0; keep the hub well inside it
    docs = (ROOT / "docs/operations.md").read_text()
    assert f"exposure level {found.group(1)}" in docs, "update the score in docs/operations.md"


def test_the_hub_tells_systemd_it_is_ready_and_pings_the_watchdog(database_url, tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.settimeout(10)
        # Half of 0.6 s: a ping every 0.3 s, so the test sees several quickly.
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "600000"}
        process, url, _log = start_hub(database_url, tmp_path, env)
        try:
            first = notify.recv(4096).decode()
            assert first.splitlines()[0] == "READY=1"
            assert requests.get(url + "/healthz", timeout=5).ok  # ready means it serves
            started = time.monotonic()
            pings = [notify.recv(4096).decode() for _ in range(4)]
            assert pings == ["WATCHDOG=1"] * 4
            assert time.monotonic() - started < 3
        finally:
            stop(process)
