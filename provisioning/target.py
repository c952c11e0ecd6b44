"""The computer being provisioned: this one (`--root /`), or a folder such as a mounted SD card
image (`--root DIR`). Paths are written as they are on the device (/etc/…) and found under the
root; every write is idempotent and says whether it changed anything, so a second run of a command
can report "(unchanged)" honestly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class Target:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.live = self.root == Path("/")  # this computer: apt-get, systemctl, users apply now

    def path(self, device_path: str) -> Path:
        """`device_path` (absolute, as on the device) under the root."""
        return self.root / device_path.lstrip("/")

    def exists(self, device_path: str) -> bool:
        return self.path(device_path).exists()

    def read(self, device_path: str) -> str | None:
        try:
            return self.path(device_path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write(self, device_path: str, text: str, mode: int = 0o644) -> bool:
        """Make the file hold `text` with `mode`; True if that changed anything. The file is
        replaced in one rename, so a power cut never leaves half a unit file."""
        path = self.path(device_path)
        if path.is_file() and not path.is_symlink():
            same_text = path.read_bytes() == text.encode()
            if same_text and (path.stat().st_mode & 0o7777) == mode:
                return False
            if same_text:
                path.chmod(mode)
                return True
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.new")
        temporary.write_text(text, encoding="utf-8")
        temporary.chmod(mode)
        os.replace(temporary, path)
        return True

    def link(self, device_path: str, points_to: str) -> bool:
        """Make `device_path` a symlink to `points_to` (as on the device); True if it changed."""
        path = self.path(device_path)
        if path.is_symlink() and os.readlink(path) == points_to:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.new")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(points_to)
        os.replace(temporary, path)  # atomic: the old link is never missing
        return True

    def remove(self, device_path: str) -> bool:
        path = self.path(device_path)
        if not (path.exists() or path.is_symlink()):
            return False
        path.unlink()
        return True


def run(
    command: list[str], timeout: float = 3600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command's result with its output, never raising for a non-zero exit (the caller says
    what to do); a missing program is exit 127, as in a shell."""
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(command, 127, "", str(exc))
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(command, 124, "", f"timed out: {exc}")


def tail(result: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    """The last lines a failed command printed, to show under its ✗ line."""
    text = (result.stderr or "") + (result.stdout or "")
    return "\n".join(text.strip().splitlines()[-lines:])
