"""Faults the hub survives, each with nothing acknowledged lost and every client recovering on its
own: PostgreSQL restarting under a running hub, Redis restarting between two hub processes, a hub
process killed with SIGKILL behind nginx, and a full disk during an upload.

Redis and PostgreSQL are private servers (tests/services.py) that the test stops and starts; the
machine's shared ones are never touched."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import socketio
from PIL import Image
from sqlalchemy import func, select

from appliance.hub import HubCallError, OrderedClient
from appliance.visit import Options, Visit
from hub.attachments.models import Attachment
from hub.db import Database
from lektiecafe.cluster import ClusterDidNotStart, start_cluster
from lektiecafe.launch import HubProcess
from tests.conftest import FAST, RunningHub, start_hub, stop
from tests.hubclient import Browserless, Client
from tests.kiosks import pair_into
from tests.test_appliance import SMALL, chat_texts, in_room_with_helper, subject, wait_until
from tests.test_rooms import joined_text, open_doc, type_text

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

UNAVAILABLE_DA = "Lektiecafé er ikke tilgængelig lige nu. Prøv igen om et øjeblik."
# A kiosk student who dropped keeps the place (and a room its member) long enough to come back.
PATIENT = {"LEKTIECAFE_STUDENT_GRACE_S": "60", "LEKTIECAFE_ROOM_GRACE_S": "60"}


@contextmanager
def running_hub(database_url: str, folder: Path, env: dict[str, str]) -> Iterator[RunningHub]:
    folder.mkdir(parents=True, exist_ok=True)
    process, url, log = start_hub(database_url, folder, env)
    hub = RunningHub(url, Database(database_url), folder, process, log)
    try:
        yield hub
    finally:
        stop(hub.process)
        hub.close_clients()
        hub.db.dispose()


@contextmanager
def kiosk_visit(hub: Any, data_dir: Path, hub_url: str | None = None) -> Iterator[Visit]:
    """The real kiosk code (appliance.visit) paired with `hub`, connected through `hub_url`."""
    pair_into(hub, data_dir)
    options = Options(
        data_dir=data_dir, hub_url=hub_url or hub.url, fake_camera=True, video_size=SMALL
    )
    visit = Visit(options, on_restart=lambda: None)
    visit.open()
    try:
        wait_until(lambda: visit.snapshot().connection == "connected", what="kiosk connected")
        yield visit
    finally:
        visit.close()


def refusal_of_connect(url: str, token: str) -> Any:
    """What the hub answers a new Socket.IO connection with: its connect_error's data."""
    client = Client(url, token=token)
    refused: list[Any] = []
    client.sio.on("connect_error", refused.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect()
    client.close()
    return refused[0] if refused else None


# ---- PostgreSQL restarts ------------------------------------------------------------------------


def test_while_postgresql_restarts_requests_fail_clearly_and_the_hub_recovers_by_itself(
    private_postgres, tmp_path
):
    with running_hub(private_postgres.url, tmp_path / "hub", PATIENT) as hub:
        student = hub.client("student1")
        page = Browserless(hub.url)
        assert page.login("student1").status_code == 302
        token = hub.token("student2")
        with kiosk_visit(hub, tmp_path / "kiosk") as visit:
            helper, room_id = in_room_with_helper(hub, visit, "Ali")
            helper.ok("room:join", {"room_id": room_id})
            visit.send_chat("før")
            helper.wait_for("chat:message", where=lambda m: m["text"] == "før")

            with private_postgres.down():
                ready = requests.get(hub.url + "/readyz", timeout=10)
                assert (ready.status_code, ready.json()["down"]) == (503, ["database"])
                # A socket event: refused with a reason, in the user's language.
                answer = student.call("help:request", {"subject": 1, "grade": 9})
                assert answer == {
                    "ok": False,
                    "error": {"code": "unavailable", "message": UNAVAILABLE_DA},
                }
                # A page, and a JSON call: 503, not a 500.
                shown = page.http.get(hub.url + "/student")
                assert shown.status_code == 503 and UNAVAILABLE_DA in shown.text
                api = requests.get(
                    hub.url + "/api/me",
                    headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
                    timeout=10,
                )
                assert api.status_code == 503 and api.headers["Retry-After"]
                assert api.json()["error"]["code"] == "unavailable"
                # A new connection is refused with the reason, so clients ask again later.
                assert refusal_of_connect(hub.url, token) == {
                    "message": UNAVAILABLE_DA,
                    "data": {"code": "unavailable"},
                }
                # The kiosk: a line written now stays pending; a reconnect (the language
                # switch reconnects) is refused for now, and the kiosk keeps trying: still paired.
                visit.send_chat("under")
                visit.set_language("da")
                time.sleep(4)
                assert visit.snapshot().connection in ("reconnecting", "offline")
                assert visit.snapshot().paired
                assert [line.pending for line in visit.snapshot().chat] == [False, True]

            # Back without restarting the hub: ready again, and everything works as before.
            wait_until(
                lambda: requests.get(hub.url + "/readyz", timeout=10).status_code == 200,
                what="ready again",
            )
            assert hub.process.poll() is None
            wait_until(lambda: visit.snapshot().connection == "connected", what="kiosk back")
            helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "under")
            wait_until(
                lambda: not any(line.pending for line in visit.snapshot().chat), what="acked"
            )
            assert chat_texts(visit) == ["før", "under"]
            helper.call("test-only:settle")
            assert [m["text"] for m in helper.drain("chat:message")] == []  # "under" once only
            assert student.ok("help:request", {"subject": subject(visit), "grade": 9})
            assert page.http.get(hub.url + "/student").status_code == 200
            Client(hub.url, token=token).connect().close()


# ---- Redis restarts -----------------------------------------------------------------------------


def readiness(hub: RunningHub) -> tuple[int, list[str]]:
    answer = requests.get(hub.url + "/readyz", timeout=10)
    return answer.status_code, answer.json().get("down", [])


def until_signals_cross(sender: Client, receiver: Client, room_id: str, timeout: float) -> float:
    """Send a signal every half second until one reaches the other process; how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        sender.ok("rtc:signal", {"room_id": room_id, "kind": "restart", "data": {}})
        try:
            receiver.wait_for("rtc:signal", timeout=0.5)
            return time.monotonic() - started
        except AssertionError:
            continue
    raise AssertionError(f"no signal crossed within {timeout}s")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_after_redis_restarts_events_cross_hub_processes_again_and_nothing_acknowledged_is_lost(
    database_url, private_redis, tmp_path
):
    env = {"LEKTIECAFE_MESSAGE_QUEUE": private_redis.url}
    with (
        running_hub(database_url, tmp_path / "a", env) as a,
        running_hub(database_url, tmp_path / "b", env) as b,
    ):
        student, helper = a.client("student1"), b.client("helper1")
        helper.ok("duty:set", {"status": "available"})
        student.ok("help:request", {"subject": 1, "grade": 9})
        room_id = helper.ok("offer:accept", {"offer_id": helper.wait_for("offer")["offer_id"]})[
            "room_id"
        ]
        student.wait_for("match")
        student_doc = open_doc(a, student, room_id)
        helper_doc = open_doc(b, helper, room_id)
        student.ok("chat:send", {"room_id": room_id, "text": "før", "client_msg_id": "1"})
        assert helper.wait_for("chat:message")["text"] == "før"
        helper.drain("rtc:signal")

        with private_redis.down():
            wait_until(lambda: readiness(a) == readiness(b) == (503, ["redis"]), what="not ready")
            # What is acknowledged now is stored, though no other process hears of it yet.
            student.ok("chat:send", {"room_id": room_id, "text": "under", "client_msg_id": "2"})
            student_doc.write(type_text("under"))

        wait_until(lambda: readiness(a) == readiness(b) == (200, []), what="ready again")
        back = time.monotonic()
        # What was acknowledged during the outage reaches the helper's open connection and
        # document socket on the other process by itself, once.
        assert helper.wait_for("chat:message", timeout=20)["text"] == "under"
        helper_doc.wait_text("under", timeout=20)
        caught_up_s = time.monotonic() - back
        # And events cross both ways again.
        until_signals_cross(helper, student, room_id, timeout=20)
        student.ok("chat:send", {"room_id": room_id, "text": "efter", "client_msg_id": "3"})
        assert helper.wait_for("chat:message")["text"] == "efter"
        student_doc.write(type_text(" efter"))
        helper_doc.wait_text("under efter")
        helper.call("test-only:settle")
        assert helper.drain("chat:message") == []
        # Nothing acknowledged was lost: the helper's next join has it all, once each.
        joined = helper.ok("room:join", {"room_id": room_id})
        assert [m["text"] for m in joined["chat_history"]] == ["før", "under", "efter"]
        assert joined_text(helper, room_id) == "under efter"
        open_doc(b, helper, room_id).wait_text("under efter")
        print(f"held events arrived {caught_up_s:.1f} s after Redis was back")


# ---- The disk full during an upload -------------------------------------------------------------

FULL_DA = "Der er ikke plads til filen lige nu. Prøv igen senere."


@contextmanager
def small_filesystem(folder: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` (which the hub uses for its attachments)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem for the full disk needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A file that takes all the room on `folder`'s filesystem but `leave_bytes`."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free - leave_bytes
    with filler.open("wb") as out:
        out.write(b"\0" * free)
    assert shutil.disk_usage(folder).free <= leave_bytes + 8192
    return filler


def photo(size: tuple[int, int] = (1000, 750)) -> bytes:
    """A photo that stays large after the hub re-encodes it (noise does not compress)."""
    pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def upload(hub: RunningHub, token: str, data: bytes, lang: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if lang:
        headers["Accept-Language"] = lang
    return requests.post(
        hub.url + "/api/attachments",
        headers=headers,
        files={"file": ("opgave.jpg", data, "image/jpeg")},
        timeout=30,
    )


def test_a_full_disk_refuses_an_upload_clearly_keeps_nothing_of_it_and_the_hub_serves_on(
    database_url, tmp_path
):
    folder = tmp_path / "hub"
    with (
        small_filesystem(folder / "attachments") as attachments,
        running_hub(database_url, folder, {}) as hub,
    ):
        token = hub.token("student1")
        picture = photo()
        first = upload(hub, token, picture)
        assert first.status_code == 201, first.text
        stored = first.json()["size"]
        assert stored > 200_000  # bigger than the room left below
        filler = fill(attachments, leave_bytes=stored // 4)
        before = sorted(p.name for p in attachments.iterdir())

        refused = upload(hub, token, picture)
        assert refused.status_code == 507
        assert refused.json() == {
            "ok": False,
            "error": {"code": "storage_full", "message": FULL_DA},
        }
        english = upload(hub, token, picture, lang="en")
        assert english.status_code == 507
        assert english.json()["error"]["message"] == (
            "There is no room for the file right now. Please try again later."
        )
        # A kiosk student photographing the assignment is told the same, in the kiosk's
        # language, and can try again: the visit stays at the question.
        with kiosk_visit(hub, tmp_path / "kiosk") as visit:
            visit.start("Ali", 9).result(15)
            maths = subject(visit)
            with pytest.raises(HubCallError) as told:
                visit.ask(maths, None, "brøker", picture).result(30)
            assert (told.value.code, told.value.message) == ("storage_full", FULL_DA)
            view = visit.snapshot()
            assert view.phase == "asking" and view.error is not None
            assert view.error.message == FULL_DA
            # Nothing half-written is left, neither as a file nor as a row.
            assert sorted(p.name for p in attachments.iterdir()) == before
            with hub.db.transaction() as s:
                assert s.scalar(select(func.count()).select_from(Attachment)) == 1

            # The hub serves on: pages, sockets, a request with the photo stored before.
            assert requests.get(hub.url + "/readyz", timeout=10).status_code == 200
            student = hub.client("student1")
            asked = student.ok(
                "help:request",
                {"subject": maths, "grade": 9, "attachment_ids": [first.json()["attachment_id"]]},
            )
            assert asked["position"] == 1
            assert hub.process.poll() is None

            # Room again: the same upload works, and reads back whole; so does the kiosk's.
            filler.unlink()
            again = upload(hub, token, picture)
            assert again.status_code == 201, again.text
            read = requests.get(
                hub.url + f"/api/attachments/{again.json()['attachment_id']}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert read.status_code == 200
            assert len(read.content) == again.json()["size"] == stored
            visit.ask(maths, None, "brøker", picture).result(30)
            assert visit.snapshot().phase == "waiting"
        assert "Traceback" not in hub.log.read_text()


# ---- A hub process killed behind nginx ----------------------------------------------------------


class ReconnectingClient(Client):
    """A user's Socket.IO client that reconnects by itself after a drop, as the pages' socket.js
    does (with the same auth); the hub then pushes the state back (queue:update, room:rejoined)."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, token=token)
        self.sio = OrderedClient(
            reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2
        )
        self.sio.on("*", self._record)
        self.sio.on("connect", lambda: self._record("_connected"))


def held_clients(hub: HubProcess) -> float:
    """The Socket.IO connections `hub` holds, by its own /metrics (all roles; the kiosk's
    connection counts once for the device and once for its visit's student)."""
    text = requests.get(hub.url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("lektiecafe_connected_clients{")
    )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_hub_process_killed_behind_nginx_its_clients_get_their_queue_place_and_room_back(
    database_url, private_redis, tmp_path, monkeypatch
):
    env = {**FAST, **PATIENT, "LEKTIECAFE_PAIRING_INTERVAL_S": "1"}
    try:
        cluster = start_cluster(2, database_url, private_redis.url, tmp_path, "test-secret", env)
    except ClusterDidNotStart as exc:
        pytest.fail(str(exc))
    assert cluster.front is not None
    front = cluster.front
    # Every client trusts the test's certificate: requests, websocket-client (the Socket.IO
    # clients' WebSocket and the document sockets).
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(front.ca))
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(front.ca))
    first = cluster.hubs[0]
    via = RunningHub(front.url, Database(database_url), tmp_path, first.process, first.log)
    clients: list[Client] = []

    def connected(username: str) -> ReconnectingClient:
        client = ReconnectingClient(front.url, via.token(username))
        clients.append(client)
        client.connect()
        return client

    try:
        with kiosk_visit(via, tmp_path / "kiosk") as visit:
            # A kiosk student in a room with a helper: chat both ways and the shared text.
            visit.start("Ali", 9, "da").result(15)
            helper = connected("helper1")
            helper.ok("duty:set", {"status": "available"})
            visit.ask(subject(visit), None, "brøker", None).result(15)
            offer = helper.wait_for("offer", timeout=15)
            room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
            wait_until(lambda: visit.snapshot().phase == "in_room", what="in_room")
            helper_doc = via.doc_socket(helper.ok("room:join", {"room_id": room_id})["doc_url"])
            visit.send_chat("før")
            helper.wait_for("chat:message", where=lambda m: m["text"] == "før")
            helper.ok("chat:send", {"room_id": room_id, "text": "hej", "client_msg_id": "h1"})
            wait_until(lambda: "hej" in chat_texts(visit), what="the helper's line")
            visit.set_text("før")
            helper_doc.wait_text("før")
            wait_until(lambda: visit.snapshot().doc_unsaved == 0, what="the text stored")
            # A home student waiting in the queue (the helper is busy).
            student = connected("student1")
            asked = student.ok("help:request", {"subject": subject(visit), "grade": 9})
            assert asked["position"] == 1

            # ip_hash puts every loopback client on one process: that one dies.
            holding = [hub for hub in cluster.hubs if held_clients(hub) > 0]
            assert len(holding) == 1, [held_clients(hub) for hub in cluster.hubs]
            (victim,) = holding
            assert held_clients(victim) >= 3  # the kiosk, the helper and the waiting student
            (survivor,) = [hub for hub in cluster.hubs if hub is not victim]
            student.drain("queue:update")
            helper.drain("room:rejoined")
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(10)
            killed = time.monotonic()
            # Written while the kiosk has no hub: shown as pending, sent once it is back.
            visit.send_chat("under")
            visit.set_text("før og under")

            # Each client is back by itself, through nginx, on the other process.
            wait_until(lambda: visit.snapshot().connection == "connected", 30, "kiosk back")
            back = student.wait_for("queue:update", timeout=30)
            assert (back["request_id"], back["position"]) == (asked["request_id"], 1)
            assert helper.wait_for("room:rejoined", timeout=30)["room_id"] == room_id
            recovered_s = time.monotonic() - killed
            # (/metrics reads the database at most every 5 s)
            wait_until(lambda: held_clients(survivor) >= 3, 15, "the survivor holds them")
            # The helper's station joins the room again and opens the document again.
            joined = helper.ok("room:join", {"room_id": room_id})
            helper_doc = via.doc_socket(joined["doc_url"])
            helper_doc.wait_text("før og under", timeout=20)
            # The line written meanwhile: in the history the join gave, or live after it.
            if "under" not in [m["text"] for m in joined["chat_history"]]:
                helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "under")
            wait_until(lambda: not any(line.pending for line in visit.snapshot().chat), 20, "acked")
            wait_until(lambda: visit.snapshot().doc_unsaved == 0, 20, "the text stored")
            assert visit.snapshot().phase == "in_room"
            # New chat crosses both ways.
            helper.ok("chat:send", {"room_id": room_id, "text": "efter", "client_msg_id": "h2"})
            wait_until(lambda: "efter" in chat_texts(visit), what="the helper's new line")
            visit.send_chat("tak")
            helper.wait_for("chat:message", where=lambda m: m["text"] == "tak")
            # Nothing acknowledged was lost, and nothing came twice.
            history = helper.ok("room:join", {"room_id": room_id})
            assert [m["text"] for m in history["chat_history"]] == [
                "før",
                "hej",
                "under",
                "efter",
                "tak",
            ]
            assert joined_text(helper, room_id) == "før og under"
            assert chat_texts(visit) == ["før", "hej", "under", "efter", "tak"]
            # The waiting student's place is real: the next helper on duty is offered it.
            other = connected("helper2")
            other.ok("duty:set", {"status": "available"})
            offered = other.wait_for("offer", timeout=15)
            other.ok("offer:accept", {"offer_id": offered["offer_id"]})
            assert student.wait_for("match", timeout=15)["room_id"]
            # nginx found the dead process refusing and passed each request to the next one
            # (proxy_next_upstream's default, "error timeout"): the shipped config needs no more.
            refused = [
                line
                for line in front.error_log.read_text().splitlines()
                if "(111: Connection refused) while connecting to upstream" in line
            ]
            assert refused, "nginx never tried the dead process"
            assert all(victim.url.removeprefix("http://") in line for line in refused)
            print(f"clients back on the other process {recovered_s:.1f} s after the SIGKILL")
    finally:
        for client in clients:
            client.close()
        via.close_clients()
        via.db.dispose()
        cluster.stop()
