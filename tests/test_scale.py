"""The scale-out configuration: two hub processes on one PostgreSQL database, joined by Redis."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hub.db import Database
from tests.conftest import RunningHub, start_hub, stop
from tests.hubclient import Client
from tests.test_rooms import matched, open_doc, type_text

pytestmark = pytest.mark.postgres
OFFER = {"type": "offer", "sdp": "v=0\r\n"}
REDIS = {"LEKTIECAFE_MESSAGE_QUEUE": "redis://127.0.0.1:6379/0"}
# A hub process whose matching loop sleeps long: offers are made by the other process.
IDLE_MATCHING = {"LEKTIECAFE_TICK_S": "60"}


@contextmanager
def hub_processes(
    database_url: str, tmp_path: Path, *envs: dict[str, str]
) -> Iterator[list[RunningHub]]:
    """One hub process per environment, all on `database_url`, stopped at the end."""
    hubs: list[RunningHub] = []
    try:
        for number, env in enumerate(envs):
            (folder := tmp_path / str(number)).mkdir()
            process, url, log = start_hub(database_url, folder, env)
            hubs.append(RunningHub(url, Database(database_url), folder, process, log))
        yield hubs
    finally:
        for running in hubs:
            stop(running.process)
            running.close_clients()
            running.db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_student_on_one_hub_process_is_matched_with_a_helper_on_another(database_url, tmp_path):
    # The offer is made by A and must reach the helper on B through Redis.
    with hub_processes(database_url, tmp_path, REDIS, {**REDIS, **IDLE_MATCHING}) as (a, b):
        student: Client = a.client("student1")
        helper: Client = b.client("helper1")
        helper.ok("duty:set", {"status": "available"})
        request_id = student.ok("help:request", {"subject": 1, "grade": 9})["request_id"]
        offer = helper.wait_for("offer")
        assert offer["request"]["nickname"] == "Elev 1"

        # Process A dies; the student comes back through B and still has their request.
        stop(a.process)
        again = b.client("student1")
        assert again.wait_for("queue:update")["request_id"] == request_id

        helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
        assert again.wait_for("match")["peer"]["display_name"] == "Hjælper 1"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_room_works_across_two_hub_processes(database_url, tmp_path):
    with hub_processes(database_url, tmp_path, REDIS, REDIS) as (a, b):
        student, helper = a.client("student1"), b.client("helper1")
        helper.ok("duty:set", {"status": "available"})
        student.ok("help:request", {"subject": 1, "grade": 9})
        room = helper.ok("offer:accept", {"offer_id": helper.wait_for("offer")["offer_id"]})
        room_id = room["room_id"]
        student.wait_for("match")
        # the two document sockets go to different hub processes too
        student_doc = open_doc(a, student, room_id)
        helper_doc = open_doc(b, helper, room_id)

        helper.ok("rtc:signal", {"room_id": room_id, "kind": "offer", "data": OFFER})
        assert student.wait_for("rtc:signal")["data"] == OFFER
        student.ok("chat:send", {"room_id": room_id, "text": "Hej", "client_msg_id": "1"})
        assert helper.wait_for("chat:message")["text"] == "Hej"
        student_doc.write(type_text("x = 2"))
        helper_doc.wait_text("x = 2")
        helper_doc.write(type_text(" og y = 3"))
        student_doc.wait_text("x = 2 og y = 3")
        helper.ok("room:end", {"room_id": room_id})
        assert student.wait_for("room:ended")["by"] == "helper"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("bus", ["local", "redis"])
def test_a_document_update_reaches_another_hub_process_only_over_redis(database_url, tmp_path, bus):
    env = REDIS if bus == "redis" else {}
    with hub_processes(database_url, tmp_path, env, {**env, **IDLE_MATCHING}) as (a, b):
        student, helper, room_id = matched(a)  # both on A; only the helper's document is on B
        student_doc = open_doc(a, student, room_id)
        helper_doc = open_doc(b, helper, room_id)
        student_doc.write(type_text("x = 2"))
        if bus == "redis":
            helper_doc.wait_text("x = 2")
            return
        # Stored, so B syncs it to a socket that opens now, but nothing told B's open socket.
        open_doc(b, helper, room_id).wait_text("x = 2")
        with pytest.raises(queue.Empty):
            helper_doc.updates.get(timeout=1)
        assert str(helper_doc.text) == ""
