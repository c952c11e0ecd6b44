"""No installed package has a known vulnerability: `pip-audit --strict` over what is installed
(`pip freeze --exclude-editable`, i.e. constraints.txt's pins), against PyPI's vulnerability data
(the default `pypi` service; OSV is not reachable from here).

pip-audit asks PyPI for each release (`/pypi/<name>/<version>/json`). Where only the project's
JSON (`/pypi/<name>/json`) is served, as on this project's machines, pip-audit cannot audit any
package; the test then reads the same vulnerability data from the project's JSON, which PyPI
gives for the newest release: a pin that is the newest release is audited exactly, an older pin
is listed as not audited here (a warning, so it can be bumped or checked by hand)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from packaging.version import InvalidVersion, Version

PYPI = "https://pypi.org/pypi"
BIN = Path(sys.executable).parent


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            data: dict[str, Any] = json.load(answer)
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def installed() -> dict[str, str]:
    """What pip-audit would audit: every installed distribution but the project itself."""
    frozen = subprocess.run(
        [str(BIN / "pip"), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = {}
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name] = version
    return pins


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    found = installed()
    assert "pip_audit" in {n.replace("-", "_").lower() for n in found}, "pip-audit not installed"
    return found


def _pypi_reachable() -> bool:
    try:
        return _get(f"{PYPI}/pip/json") is not None
    except OSError:
        return False


def test_no_installed_package_has_a_known_vulnerability(pins, tmp_path):
    if not _pypi_reachable():
        pytest.skip("PyPI cannot be reached from here")
    pip_version = next(v for n, v in pins.items() if n.lower() == "pip") if "pip" in pins else None
    per_release = pip_version is not None and _get(f"{PYPI}/pip/{pip_version}/json") is not None
    if per_release:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()))
        audit = subprocess.run(
            [
                str(BIN / "pip-audit"),
                "--strict",
                "--vulnerability-service",
                "pypi",
                "--progress-spinner",
                "off",
                "-r",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
        return
    audited, not_audited, vulnerable = _audit_from_project_json(pins)
    assert vulnerable == [], "known vulnerabilities: bump these in constraints.txt"
    assert len(audited) >= len(pins) // 2, f"too few audited: {len(audited)} of {len(pins)}"
    if not_audited:
        warnings.warn(
            "not audited here (older than PyPI's newest release, whose data alone is served): "
            + ", ".join(f"{n}=={v} (newest {latest})" for n, v, latest in not_audited),
            stacklevel=1,
        )


def _audit_from_project_json(
    pins: dict[str, str],
) -> tuple[list[str], list[tuple[str, str, str]], list[tuple[str, str, str, list[str]]]]:
    def one(item: tuple[str, str]) -> tuple[str, str, dict[str, Any] | None]:
        return item[0], item[1], _get(f"{PYPI}/{item[0]}/json")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, sorted(pins.items())))
    audited, not_audited, vulnerable = [], [], []
    for name, version, project in answers:
        assert project is not None, f"{name} is not on PyPI, so it cannot be audited"
        latest = project["info"]["version"]
        files = project.get("releases", {}).get(version, [])
        if files and all(f.get("yanked") for f in files):
            vulnerable.append((name, version, "yanked", [files[0].get("yanked_reason") or ""]))
        if not _same(version, latest):
            not_audited.append((name, version, latest))
            continue
        audited.append(name)
        known = [v for v in project.get("vulnerabilities") or [] if not v.get("withdrawn")]
        if known:
            fixes = [f"{v.get('id')} fixed in {v.get('fixed_in')}" for v in known]
            vulnerable.append((name, version, "vulnerable", fixes))
    return audited, not_audited, vulnerable


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b
