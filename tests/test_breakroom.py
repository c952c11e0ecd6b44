"""The break room chat between waiting students: filtered, rate-limited, moderated."""

from __future__ import annotations

from tests.hubclient import advance_clock

WINDOW_S = 10.0  # the default breakroom_window_s: 5 messages (breakroom_burst) in this long


def waiting(hub, username: str):
    client = hub.client(username)
    client.ok("help:request", {"subject": 1, "grade": 9})
    return client


def test_a_message_reaches_the_other_waiting_students(hub):
    ali, omar = waiting(hub, "student1"), waiting(hub, "student2")
    ack = ali.ok("breakroom:send", {"text": "Nogen der også har matematik?", "client_msg_id": "a1"})
    message = omar.wait_for("breakroom:message")
    assert message["msg_id"] == ack["msg_id"]
    assert message["from"] == "Elev 1" and message["text"] == "Nogen der også har matematik?"
    assert [m["text"] for m in omar.ok("breakroom:history", {})["messages"]] == [
        "Nogen der også har matematik?"
    ]


def test_contact_details_and_links_are_not_sent_and_the_sender_is_told_why(hub):
    ali, omar = waiting(hub, "student1"), waiting(hub, "student2")
    for i, (text, reason) in enumerate(
        [
            ("ring til mig på 20 30 40 50", "phone"),
            ("skriv til ali@example.com", "email"),
            ("se www.example.dk", "link"),
            ("add me on snap", "handle"),
        ]
    ):
        answer = ali.call("breakroom:send", {"text": text, "client_msg_id": f"b{i}"})
        assert answer["ok"] is False and answer["error"]["code"] == "blocked"
        assert answer["error"]["details"]["reason"] == reason and answer["error"]["message"]
    omar.nothing("breakroom:message")


def test_a_resent_message_is_stored_and_delivered_once(hub):
    ali, omar = waiting(hub, "student1"), waiting(hub, "student2")
    first = ali.ok("breakroom:send", {"text": "hej", "client_msg_id": "same"})
    again = ali.ok("breakroom:send", {"text": "hej", "client_msg_id": "same"})
    assert first["msg_id"] == again["msg_id"]
    omar.wait_for("breakroom:message")
    omar.nothing("breakroom:message")


def test_writing_too_fast_is_slowed_down(hub):
    ali = waiting(hub, "student1")
    answers = [
        ali.call("breakroom:send", {"text": f"besked {i}", "client_msg_id": f"r{i}"})
        for i in range(6)
    ]
    assert all(a["ok"] for a in answers[:5])
    assert answers[5]["error"]["code"] == "rate_limited"
    advance_clock(hub.url, WINDOW_S)
    assert ali.call("breakroom:send", {"text": "igen", "client_msg_id": "r6"})["ok"] is True


def test_only_waiting_students_can_write(hub):
    answer = hub.client("student1").call("breakroom:send", {"text": "hej", "client_msg_id": "x"})
    assert answer["ok"] is False and answer["error"]["message"]


def test_a_helper_can_remove_a_message_and_students_cannot(hub):
    ali, omar = waiting(hub, "student1"), waiting(hub, "student2")
    msg_id = ali.ok("breakroom:send", {"text": "dumme opgave", "client_msg_id": "m"})["msg_id"]
    assert omar.call("breakroom:remove", {"msg_id": msg_id})["error"]["code"] == "forbidden"
    hub.client("helper1").ok("breakroom:remove", {"msg_id": msg_id})
    assert omar.wait_for("breakroom:removed")["msg_id"] == msg_id
    assert omar.ok("breakroom:history", {})["messages"] == []
