"""The scale-out configuration as a product: `lektiecafe cluster` starts hub processes on
PostgreSQL and Redis behind the shipped nginx configuration, and matching stays correct when many
processes race for the same students and helpers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from itertools import cycle, pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select

from hub.db import Database
from hub.matching.models import HelpRequest
from hub.rooms.models import Room
from lektiecafe.cluster import Cluster, start_cluster
from tests.conftest import FAST, ROOT, RunningHub
from tests.hubclient import Client
from tests.test_admin import Staff, texts
from tests.test_matching import ask, subject_id
from tests.test_scale import hub_processes

pytestmark = pytest.mark.postgres
REDIS = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_cluster_command_runs_hubs_behind_nginx_and_stops_them_all(
    database_url, tmp_path, monkeypatch
):
    command = [sys.executable, "-m", "lektiecafe.cli", "cluster", "--hubs", "2"]
    command += ["--database-url", database_url, "--demo", "--folder", str(tmp_path)]
    out = tmp_path / "cluster.out"
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=out.open("wb"), stderr=subprocess.STDOUT, env=os.environ
    )
    try:
        text = wait_for_text(out, "Ctrl-C stops everything.", process)
        assert "The database has accounts already: no demo logins added." in text
        front = re.search(r"behind nginx at (https://\S+)/login", text)
        hubs = re.findall(r"hub \d: (http://127\.0\.0\.1:\d+)  pid (\d+)", text)
        ca = re.search(r"self-signed certificate: (\S+);", text)
        assert front and ca and len(hubs) == 2, text
        for url, _pid in hubs:
            assert requests.get(url + "/readyz", timeout=10).status_code == 200
        page = requests.get(front[1] + "/login", verify=ca[1], timeout=10)
        assert page.status_code == 200 and 'name="csrf-token"' in page.text

        # A student and a helper meet through nginx (Socket.IO over its WebSocket upgrade).
        monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", ca[1])
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca[1])
        via = RunningHub(front[1], Database(database_url), tmp_path, process, out)
        try:
            helper, student = via.client("helper1"), via.client("student1")
            helper.ok("duty:set", {"status": "available"})
            ask(student, via)
            offer = helper.wait_for("offer")
            helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
            assert student.wait_for("match")["peer"]["display_name"] == "Hjælper 1"
        finally:
            via.close_clients()
            via.db.dispose()

        nginx = re.search(r"nginx: pid (\d+)", text)
        assert nginx
        pids = [int(pid) for _url, pid in hubs] + [int(nginx[1])]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert [pid for pid in pids if running(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_text(path: Path, text: str, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        written = path.read_text(errors="replace") if path.exists() else ""
        if text in written:
            return written
        assert process.poll() is None, f"lektiecafe cluster exited: {written}"
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {path.read_text(errors='replace')}")


# ---------------------------------------------------------------------------------------------
# Many processes racing


STUDENTS, HELPERS, PROCESSES = 24, 8, 4


@pytest.fixture
def cluster(database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    # Every process runs its matching loop, and fast: they race for the same requests.
    env = {**FAST, "LEKTIECAFE_TICK_S": "0.05"}
    running = start_cluster(
        PROCESSES, database_url, REDIS, tmp_path, "test-secret", env, with_front=False
    )
    yield running
    running.stop()


class Helper(threading.Thread):
    """A helper who accepts every offer at once, ends each session after a moment and goes on
    duty again (the hub pauses a helper after a room)."""

    def __init__(self, client: Client, done: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.done = client, done
        self.offers: list[int] = []
        self.rooms: list[int] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.done.is_set():
            try:
                offer = self.client.wait_for("offer", timeout=0.5)
            except AssertionError:
                continue
            self.offers.append(offer["offer_id"])
            answer = self.client.call("offer:accept", {"offer_id": offer["offer_id"]})
            if not answer["ok"]:
                # The offer was withdrawn or taken meanwhile: told, never a second room.
                self.errors.append(answer["error"]["code"])
                continue
            self.rooms.append(answer["room_id"])
            time.sleep(0.05)
            self.client.ok("room:end", {"room_id": answer["room_id"]})
            self.client.ok("duty:set", {"status": "available"})


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.demo(students=STUDENTS, helpers=HELPERS)
def test_processes_racing_never_offer_twice_match_twice_or_put_a_helper_in_two_rooms(
    cluster, database_url, tmp_path
):
    hubs = [
        RunningHub(hub.url, Database(database_url), tmp_path, hub.process, hub.log)
        for hub in cluster.hubs
    ]
    spread = cycle(hubs)
    done = threading.Event()
    helpers = [Helper(next(spread).client(f"helper{i}"), done) for i in range(1, HELPERS + 1)]
    students = [next(spread).client(f"student{i}") for i in range(1, STUDENTS + 1)]
    try:
        for h in helpers:
            h.client.ok("duty:set", {"status": "available"})
            h.start()
        # Every student asks at the same moment, each through their own process.
        start = threading.Barrier(STUDENTS)
        asked: dict[int, int] = {}

        def ask_now(number: int, student: Client) -> None:
            start.wait()
            asked[number] = ask(student, hubs[0])["request_id"]

        askers = [threading.Thread(target=ask_now, args=(n, s)) for n, s in enumerate(students, 1)]
        for t in askers:
            t.start()
        for t in askers:
            t.join(30)
        assert len(asked) == STUDENTS
        for student in students:
            student.wait_for("match", timeout=60)
    finally:
        done.set()
        for h in helpers:
            h.join(10)
        for hub in hubs:
            hub.close_clients()

    # No offer reached a helper twice, and each request was accepted exactly once.
    offers = Counter(o for h in helpers for o in h.offers)
    assert [o for o, n in offers.items() if n > 1] == []
    accepted = [room for h in helpers for room in h.rooms]
    # The database agrees: one room per request, each one a helper was told they have, and no
    # helper in two rooms at once.
    with hubs[0].db.transaction() as s:
        rooms = s.execute(
            select(Room.id, Room.request_id, Room.helper_id, Room.created_at, Room.ended_at)
        ).all()
        statuses = Counter(
            s.scalars(select(HelpRequest.status).where(HelpRequest.id.in_(asked.values())))
        )
    assert sorted(accepted) == sorted(r.id for r in rooms)
    assert Counter(r.request_id for r in rooms) == Counter(asked.values())
    assert statuses == {"matched": STUDENTS}, statuses
    for helper_id in {r.helper_id for r in rooms}:
        spans = sorted((r.created_at, r.ended_at) for r in rooms if r.helper_id == helper_id)
        for (_start, end), (next_start, _end) in pairwise(spans):
            assert end is not None and end <= next_start, f"helper {helper_id} in two rooms"
    for hub in hubs:
        hub.db.dispose()


# ---------------------------------------------------------------------------------------------
# What one process changes, the others see at once


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_opening_hours_an_admin_changes_on_one_process_hold_at_once_on_another(
    database_url, tmp_path
):
    """The schedule is read once per transaction, never kept between them (hub.schedule): a hub
    process that had read the hours before must not let a student into the queue after an admin
    closed the café through another process, nor refuse one after it opened again."""
    env = {**FAST, "LEKTIECAFE_MESSAGE_QUEUE": REDIS}
    with hub_processes(database_url, tmp_path, env, env) as (admin_side, student_side):
        student = student_side.client("student1")
        # The café is open (no opening hours): the student's process has read the schedule.
        first = ask(student, student_side)
        student.ok("help:cancel", {"request_id": first["request_id"]})

        # The admin, on the other process, opens the café only at a time that is not now.
        hour = (datetime.now(ZoneInfo("Europe/Copenhagen")).hour + 12) % 24
        admin = Staff(admin_side.url, "admin")
        hours = {f"day{d}": f"{hour:02d}:00-{hour:02d}:30" for d in range(7)}
        assert texts(admin.post("/admin/schedule/hours", **hours).text, "notice") == ["Saved."]
        refused = student.call(
            "help:request", {"subject": subject_id(student_side, "math"), "grade": 9}
        )
        assert refused["ok"] is False and refused["error"]["code"] == "closed", refused

        # Open again (no hours at all): at once, too.
        cleared = {f"day{d}": "" for d in range(7)}
        assert texts(admin.post("/admin/schedule/hours", **cleared).text, "notice") == ["Saved."]
        assert ask(student, student_side)["position"] == 1
