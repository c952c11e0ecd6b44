"""Asking for help and being matched, over real Socket.IO connections to a running hub, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import signal
import time

import pytest
import requests
from sqlalchemy import select, update

from hub.accounts.models import User
from hub.matching.models import HelpRequest
from hub.realtime.models import Connection
from tests.conftest import both_backends, start_hub
from tests.hubclient import Client, advance_clock

pytestmark = both_backends

OFFER_TIMEOUT_S = 30
STUDENT_GRACE_S = 30


@pytest.fixture
def hub_env() -> dict[str, str]:
    """Offers and grace periods no test outlasts in real time: the tests end them by moving the
    hub's clock, so a slow machine cannot change the order of what they watch."""
    return {
        "LEKTIECAFE_OFFER_TIMEOUT_S": str(OFFER_TIMEOUT_S),
        "LEKTIECAFE_STUDENT_GRACE_S": str(STUDENT_GRACE_S),
    }


def subject_id(hub, key: str) -> int:
    catalog = requests.get(hub.url + "/api/catalog", timeout=5).json()
    return next(s["id"] for s in catalog["subjects"] if s["key"] == key)


def ask(student: Client, hub, key: str = "math", grade: int = 9, **extra) -> dict:
    return student.ok("help:request", {"subject": subject_id(hub, key), "grade": grade, **extra})


def on_duty(*helpers: Client) -> None:
    """On duty in this order; with several, the hub's clock moves on between them, so the first
    is idle longest."""
    for i, h in enumerate(helpers):
        if i:
            advance_clock(h.base_url, 0.01)
        h.ok("duty:set", {"status": "available"})


def wait_until_offline(hub, username: str) -> None:
    """Until the hub has noticed the student's connection closed: its grace period runs from
    then, so the clock must not move on before."""
    deadline = time.monotonic() + 10
    while True:
        with hub.db.transaction() as s:
            offline = s.scalar(
                select(HelpRequest.offline_since)
                .join(User, User.id == HelpRequest.student_id)
                .where(User.username == username)
            )
        if offline is not None:
            return
        assert time.monotonic() < deadline, f"the hub did not notice {username} went away"
        time.sleep(0.02)


def set_profile(hub, username: str, subjects: list[str], grades=(8, 10), languages=("da",)) -> None:
    web = hub.browserless()
    assert web.login(username).status_code == 302
    token = web.csrf("/helper")
    form = {
        "csrf_token": token,
        "grade_min": grades[0],
        "grade_max": grades[1],
        "subjects": [subject_id(hub, k) for k in subjects],
        "languages": list(languages),
    }
    assert (
        web.http.post(hub.url + "/helper/profile", data=form, allow_redirects=False).status_code
        == 302
    )


def test_student_and_helper_are_told_they_are_matched(hub):
    student, helper = hub.client("student1"), hub.client("helper1")
    on_duty(helper)
    ack = ask(student, hub, note="Brøker med forskellige nævnere")
    assert ack["position"] == 1 and ack["eta_s"] is not None

    offer = helper.wait_for("offer")
    assert offer["request"]["nickname"] == "Elev 1"
    assert offer["request"]["note"] == "Brøker med forskellige nævnere"
    assert 0 < offer["expires_in_s"] <= OFFER_TIMEOUT_S

    accepted = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
    match = student.wait_for("match")
    assert match["room_id"] == accepted["room_id"]
    assert match["peer"]["display_name"] == "Hjælper 1"
    assert match["peer"]["organisation"] == "Demo-frivillige"
    assert accepted["peer"]["display_name"] == "Elev 1"


def test_offer_moves_on_when_it_expires_and_the_helper_is_paused(hub):
    student, first, second = hub.client("student1"), hub.client("helper1"), hub.client("helper2")
    on_duty(first, second)
    ask(student, hub)
    offer = first.wait_for("offer")
    first.nothing("offer:expired")
    advance_clock(hub.url, OFFER_TIMEOUT_S)
    assert first.wait_for("offer:expired")["offer_id"] == offer["offer_id"]
    assert first.wait_for("duty:status", where=lambda d: d["status"] == "paused")
    assert second.wait_for("offer")["request"]["nickname"] == "Elev 1"
    late = first.call("offer:accept", {"offer_id": offer["offer_id"]})
    assert late["ok"] is False and late["error"]["code"] == "conflict"


def test_offer_moves_on_when_the_helper_declines(hub):
    student, first, second = hub.client("student1"), hub.client("helper1"), hub.client("helper2")
    on_duty(first, second)
    ask(student, hub)
    first.ok("offer:decline", {"offer_id": first.wait_for("offer")["offer_id"]})
    second_offer = second.wait_for("offer", timeout=3)
    assert second_offer["request"]["nickname"] == "Elev 1"
    # Declined means "not this one": nobody is asked about it twice.
    second.ok("offer:decline", {"offer_id": second_offer["offer_id"]})
    first.nothing("offer")
    second.nothing("offer")
    # The helpers stay on duty and get the next student's request.
    ask(hub.client("student2"), hub)
    assert first.wait_for("offer")["request"]["nickname"] == "Elev 2"


def test_a_helper_who_disconnects_goes_off_duty_and_the_offer_moves_on(hub):
    student, first, second = hub.client("student1"), hub.client("helper1"), hub.client("helper2")
    on_duty(first, second)
    ask(student, hub)
    first.wait_for("offer")
    first.close()
    assert second.wait_for("offer", timeout=3)["request"]["nickname"] == "Elev 1"
    again = hub.client("helper1")
    assert again.wait_for("duty:status")["status"] == "off"


def test_a_connection_left_without_a_socket_does_not_keep_a_helper_on_duty(hub):
    """python-socketio never runs the disconnect handler of a client that leaves while its
    connect handler runs, so its row in `connections` has no socket behind it: the heartbeat
    finds such rows of its own process and forgets them."""
    student, first, second = hub.client("student1"), hub.client("helper1"), hub.client("helper2")
    on_duty(first)
    with hub.db.transaction() as s:
        real = s.scalars(select(Connection).join(User).where(User.username == "helper1")).one()
        s.add(
            Connection(
                sid="left-while-connecting",
                user_id=real.user_id,
                instance_id=real.instance_id,
                connected_at=real.connected_at,
            )
        )
    ask(student, hub)
    first.wait_for("offer")
    first.close()
    on_duty(second)
    advance_clock(hub.url, 6)  # the next heartbeat, long before the offer would time out
    assert second.wait_for("offer", timeout=5)["request"]["nickname"] == "Elev 1"
    with hub.db.transaction() as s:
        assert (
            s.scalars(select(Connection.sid).where(Connection.user_id == real.user_id)).all() == []
        )


def test_a_student_who_cancels_leaves_the_queue_and_the_others_move_up(hub):
    students = [hub.client(f"student{i}") for i in (1, 2, 3)]
    acks = [ask(s, hub) for s in students]
    assert [a["position"] for a in acks] == [1, 2, 3]
    assert [a["eta_s"] for a in acks] == [None, None, None]  # nobody on duty
    students[0].ok("help:cancel", {"request_id": acks[0]["request_id"]})
    assert students[1].wait_for("queue:update")["position"] == 1
    assert students[2].wait_for("queue:update")["position"] == 2
    helper = hub.client("helper1")
    on_duty(helper)
    assert helper.wait_for("offer")["request"]["nickname"] == "Elev 2"
    again = students[0].call("help:cancel", {"request_id": acks[0]["request_id"]})
    assert again["error"]["code"] == "conflict"


def test_waiting_students_see_the_estimate_change_when_a_helper_comes_on_duty(hub):
    student = hub.client("student1")
    assert ask(student, hub)["eta_s"] is None
    on_duty(hub.client("helper1"))
    update = student.wait_for("queue:update")
    assert update["position"] == 1 and update["eta_s"] is not None


def test_a_student_behind_a_busy_helper_is_told_the_wait_to_the_nearest_minute(hub):
    first, second, helper = hub.client("student1"), hub.client("student2"), hub.client("helper1")
    on_duty(helper)
    ask(first, hub)
    helper.ok("offer:accept", {"offer_id": helper.wait_for("offer")["offer_id"]})
    first.wait_for("match")
    # 30 s for the offer and half a typical session (20 minutes before any has ended): 10.5 min.
    assert ask(second, hub)["eta_s"] == 11 * 60


def test_a_student_who_drops_briefly_keeps_their_place(hub):
    first, second = hub.client("student1"), hub.client("student2")
    ask(first, hub)
    request_id = ask(second, hub)["request_id"]
    second.close()
    back = hub.client("student2")
    update = back.wait_for("queue:update")
    assert update == {"request_id": request_id, "position": 2, "eta_s": None, "next_shift": None}
    advance_clock(hub.url, STUDENT_GRACE_S + 1)  # still there, since the student came back
    helpers = [hub.client("helper1"), hub.client("helper2")]
    on_duty(*helpers)
    assert {h.wait_for("offer")["request"]["nickname"] for h in helpers} == {"Elev 1", "Elev 2"}


def test_a_student_gone_longer_than_the_grace_period_leaves_the_queue(hub):
    first, second = hub.client("student1"), hub.client("student2")
    ask(first, hub)
    ask(second, hub)
    first.close()
    wait_until_offline(hub, "student1")
    advance_clock(hub.url, STUDENT_GRACE_S)
    assert second.wait_for("queue:update")["position"] == 1
    helper = hub.client("helper1")
    on_duty(helper)
    assert helper.wait_for("offer")["request"]["nickname"] == "Elev 2"


def test_the_helper_idle_longest_is_asked_first(hub):
    first, second = hub.client("helper1"), hub.client("helper2")
    on_duty(second, first)
    ask(hub.client("student1"), hub)
    assert second.wait_for("offer")["request"]["nickname"] == "Elev 1"
    first.nothing("offer")


def test_requests_are_offered_in_the_order_they_came(hub):
    students = [hub.client(f"student{i}") for i in (1, 2, 3)]
    for s in students:
        ask(s, hub)
    helpers = [hub.client(f"helper{i}") for i in (1, 2)]
    on_duty(*helpers)
    names = {h.wait_for("offer")["request"]["nickname"] for h in helpers}
    assert names == {"Elev 1", "Elev 2"}
    for h in helpers:  # one offer at a time each: Elev 3 waits for the first to be free
        h.nothing("offer")


def test_a_returning_student_gets_their_previous_helper_first(hub):
    student, first, second = hub.client("student1"), hub.client("helper1"), hub.client("helper2")
    on_duty(second)
    ask(student, hub)
    second.ok("offer:accept", {"offer_id": second.wait_for("offer")["offer_id"]})
    student.wait_for("match")
    on_duty(first)
    advance_clock(hub.url, 0.01)
    on_duty(second)  # back from the session: idle for less time than helper1
    ask(student, hub)
    assert second.wait_for("offer")["request"]["nickname"] == "Elev 1"
    first.nothing("offer")


def test_only_helpers_who_know_the_subject_grade_and_language_are_asked(hub):
    set_profile(hub, "helper1", ["math"], grades=(8, 8), languages=("da",))
    set_profile(hub, "helper2", ["danish"], grades=(8, 10), languages=("da", "ar"))
    first, second = hub.client("helper1"), hub.client("helper2")
    on_duty(first, second)
    student = hub.client("student1")
    unanswerable = ask(student, hub, key="math", grade=9)  # helper1 only takes grade 8
    assert unanswerable["eta_s"] is None
    student.ok("help:cancel", {"request_id": unanswerable["request_id"]})
    ask(student, hub, key="danish", grade=9, language="ar")
    assert second.wait_for("offer")["request"]["language"] == "ar"
    first.nothing("offer")


def test_a_helper_not_yet_approved_cannot_go_on_duty(hub):
    with hub.db.transaction() as s:
        s.execute(update(User).where(User.username == "helper1").values(approved=False))
    answer = hub.client("helper1").call("duty:set", {"status": "available"})
    assert answer["ok"] is False and answer["error"]["code"] == "forbidden"


def test_a_hub_killed_and_restarted_loses_no_waiting_student(hub, hub_env):
    student = hub.client("student1")
    request_id = ask(student, hub, note="ligninger")["request_id"]
    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait()
    port = int(hub.url.rsplit(":", 1)[1])
    process, _url, _log = start_hub(hub.db.url, hub.data_dir, hub_env, port=port)
    hub.process = process
    back = hub.client("student1")
    assert back.wait_for("queue:update")["request_id"] == request_id
    helper = hub.client("helper1")
    on_duty(helper)
    offer = helper.wait_for("offer")
    assert offer["request"]["note"] == "ligninger"
