"""A hub in a process of its own, for the tests (tests/conftest.py) and the benchmarks
(bench/common.py): `lektiecafe hub` on a free loopback port and an existing, migrated database,
its output in a log file, ready once `/healthz` answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent


class HubDidNotStart(RuntimeError):
    """The hub exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], wait_s: float = 10) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `wait_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(wait_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    url: str  # http://127.0.0.1:<port>
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, chars: int = 3000) -> str:
        with suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        stop_process(self.process)


def start_hub(
    database_url: str,
    data_dir: Path,
    secret_key: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    timeout_s: float = 30,
    host: str = "127.0.0.1",
) -> HubProcess:
    """`lektiecafe hub` with `env` on top of this process's environment, listening on `host`,
    logging to `data_dir/hub-<port>.log`; returns once it is up, or stops it and raises
    HubDidNotStart."""
    port = port or free_port()
    log = data_dir / f"hub-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lektiecafe.cli",
                "hub",
                "--host",
                host,
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--database-url",
                database_url,
                "--insecure-cookies",
                "--no-migrate",
                "--secret-key",
                secret_key,
            ],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = HubProcess(process, f"http://{host}:{port}", log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HubDidNotStart(f"the hub exited:\n{hub.tail()}")
        with suppress(URLError, OSError), urlopen(hub.url + "/healthz", timeout=1) as r:
            if r.status == 200:
                return hub
        time.sleep(0.1)
    hub.stop()
    raise HubDidNotStart(f"the hub did not start:\n{hub.tail()}")
