"""The scale-out configuration: two hub processes on one PostgreSQL database, joined by Redis."""

from __future__ import annotations

import pytest

from hub.db import Database
from tests.conftest import RunningHub, start_hub, stop
from tests.hubclient import Client
from tests.test_rooms import open_doc, type_text

pytestmark = pytest.mark.postgres
OFFER = {"type": "offer", "sdp": "v=0\r\n"}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_student_on_one_hub_process_is_matched_with_a_helper_on_another(database_url, tmp_path):
    env = {"LEKTIECAFE_MESSAGE_QUEUE": "redis://127.0.0.1:6379/0"}
    (a_dir := tmp_path / "a").mkdir()
    (b_dir := tmp_path / "b").mkdir()
    a_process, a_url, a_log = start_hub(database_url, a_dir, env)
    # B's matching loop sleeps long, so the offer is made by A and must reach B through Redis.
    b_process, b_url, b_log = start_hub(database_url, b_dir, {**env, "LEKTIECAFE_TICK_S": "60"})
    a = RunningHub(a_url, Database(database_url), a_dir, a_process, a_log)
    b = RunningHub(b_url, Database(database_url), b_dir, b_process, b_log)
    try:
        student: Client = a.client("student1")
        helper: Client = b.client("helper1")
        helper.ok("duty:set", {"status": "available"})
        request_id = student.ok("help:request", {"subject": 1, "grade": 9})["request_id"]
        offer = helper.wait_for("offer")
        assert offer["request"]["nickname"] == "Elev 1"

        # Process A dies; the student comes back through B and still has their request.
        stop(a_process)
        again = b.client("student1")
        assert again.wait_for("queue:update")["request_id"] == request_id

        helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
        assert again.wait_for("match")["peer"]["display_name"] == "Hjælper 1"
    finally:
        for running in (a, b):
            stop(running.process)
            running.close_clients()
            running.db.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_room_works_across_two_hub_processes(database_url, tmp_path):
    env = {"LEKTIECAFE_MESSAGE_QUEUE": "redis://127.0.0.1:6379/0"}
    hubs = []
    for name in ("a", "b"):
        (folder := tmp_path / name).mkdir()
        process, url, log = start_hub(database_url, folder, env)
        hubs.append(RunningHub(url, Database(database_url), folder, process, log))
    a, b = hubs
    try:
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
    finally:
        for running in hubs:
            stop(running.process)
            running.close_clients()
            running.db.dispose()
