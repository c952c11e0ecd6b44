"""The README's first command, `make demo`, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import requests

from tests.conftest import ROOT, free_port
from tests.hubclient import PASSWORD, Browserless


def test_make_demo_starts_a_hub_whose_printed_logins_work(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    args = f"--port {port} --data-dir {tmp_path / 'data'} --students 7 --helpers 2"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo", f"ARGS={args}"],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so make and the hub it starts stop together
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "Invite codes" not in log.read_text() or not _up(url):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        printed = log.read_text()
        usernames = re.findall(
            r"^\s+(?:admin|coordinator|site_staff|helper|student)\s+(\S+)$", printed, re.M
        )
        assert {"admin", "coordinator1", "staff1", "helper1", "helper2", "student7"} <= set(
            usernames
        )
        assert "student8" not in usernames and "helper3" not in usernames
        for username in usernames:
            r = requests.post(
                url + "/api/auth/token",
                json={"username": username, "password": PASSWORD},
                timeout=10,
            )
            assert r.status_code == 200, username

        code = re.search(r"Demo-skole Nord\s+(\S+)", printed).group(1)
        web = Browserless(url)
        form = {
            "invite_code": code,
            "username": "ny-elev",
            "nickname": "Ny",
            "grade": "9",
            "password": "hemmelig123",
            "csrf_token": web.csrf("/register"),
        }
        r = web.http.post(url + "/register", data=form, allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"] == "/student"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=1).ok
    except requests.ConnectionError:
        return False
