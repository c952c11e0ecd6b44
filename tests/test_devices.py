"""Kiosks on the hub: pairing with a site the way a kiosk and site staff do it, the kiosk's
connection, its health reports and commands, and students' visits at a kiosk, over real HTTP and
Socket.IO against a running hub."""

from __future__ import annotations

import hashlib
import io
import re
import time
from datetime import timedelta

import pytest
import requests
import socketio
from PIL import Image
from sqlalchemy import select

from hub import clock, housekeeping, socket_features
from hub.accounts.models import Role, User
from hub.config import HubConfig
from hub.db import Database
from hub.devices.models import Device, DeviceEvent, KioskVisit
from hub.matching.models import HelpRequest
from hub.realtime.events import registered_events
from tests.conftest import both_backends
from tests.kiosks import (
    Kiosk,
    StaffPage,
    ask_for_code,
    connect_kiosk,
    pair,
    paired_kiosk,
    poll,
)
from tests.test_admin import Staff, alerts, row, rows, texts
from tests.test_matching import on_duty

CODE = re.compile(r"^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$")  # no 0/O, 1/I/L


def wait_until(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


def start_visit(kiosk: Kiosk, nickname: str = "Ali", grade: int = 9) -> dict:
    return kiosk.ok("visit:start", {"nickname": nickname, "grade": grade})


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Pairing


@both_backends
def test_site_staff_confirm_a_kiosks_code_and_the_kiosk_connects_with_its_token(hub):
    code = ask_for_code(hub, name="Kiosk ved indgangen", model="Raspberry Pi 5")
    assert CODE.match(code["user_code"]), code["user_code"]
    assert code["verification_uri"] == hub.url + "/admin/devices"
    assert code["verification_uri_complete"].startswith(hub.url + "/admin/devices?code=")
    assert (code["expires_in"], code["interval"]) == (600, 5)
    assert len(code["device_code"]) >= 40

    r = poll(hub, code["device_code"])
    assert r.status_code == 400 and error_code(r) == "authorization_pending"
    r = poll(hub, code["device_code"])  # sooner than `interval`
    assert error_code(r) == "slow_down" and r.json()["error"]["details"]["interval"] > 5

    staff = StaffPage(hub.url)
    typed = code["user_code"].replace("-", " ").lower()  # as someone might type it
    page = staff.page(typed)
    assert page.status_code == 200
    assert texts(page.text, "pending-name") == ["Kiosk ved indgangen"]
    done = staff.confirm(code["user_code"])
    assert done.status_code == 200 and texts(done.text, "notice") == [
        "Kiosk paired. It connects by itself within a few seconds."
    ]

    r = poll(hub, code["device_code"])
    assert r.status_code == 200, r.text
    paired = r.json()
    assert paired["site"]["name"] == "Demo-skole Nord" and paired["device_id"] > 0
    token = paired["device_token"]
    assert error_code(poll(hub, code["device_code"])) == "expired_token"  # handed out once

    with hub.db.transaction() as s:
        device = s.get(Device, paired["device_id"])
        assert device.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert device.name == "Kiosk ved indgangen" and device.model == "Raspberry Pi 5"
        assert token not in " ".join(str(v) for v in vars(device).values())

    kiosk = connect_kiosk(hub, token)
    assert kiosk.sio.connected
    listed = row(staff.page().text, "device", name="Kiosk ved indgangen (Raspberry Pi 5)")
    assert listed["status"] == "Online" and listed["heartbeat"] == "None yet"


def test_a_wrong_code_says_so_and_guessing_is_slowed_down(hub):
    code = ask_for_code(hub)
    staff = StaffPage(hub.url)
    for _ in range(3):  # the test hub allows 3 free misses, then 2 s between tries
        page = staff.page("ABCD-EFGH")
        assert page.status_code == 400
        assert alerts(page.text) == [
            "No kiosk is waiting with that code. Check the code on the kiosk's screen."
        ]
        assert 'value="ABCD-EFGH"' in page.text  # what was typed stays in the field
    page = staff.confirm(code["user_code"])  # even the right code must wait now
    assert page.status_code == 429 and alerts(page.text)[0].startswith("Too many wrong codes.")
    assert error_code(poll(hub, code["device_code"])) == "authorization_pending"
    time.sleep(2.1)
    assert staff.confirm(code["user_code"]).status_code == 200
    assert poll(hub, code["device_code"]).status_code == 200


@pytest.mark.parametrize("hub_env", [{"LEKTIECAFE_PAIRING_EXPIRES_S": "1"}])
def test_an_expired_code_cannot_be_confirmed_and_the_kiosk_is_told_to_start_again(hub):
    code = ask_for_code(hub)
    assert code["expires_in"] == 1
    time.sleep(1.5)
    page = StaffPage(hub.url).confirm(code["user_code"])
    assert page.status_code == 400 and alerts(page.text) == [
        "That code has expired. The kiosk shows a new code by itself: type that one."
    ]
    assert error_code(poll(hub, code["device_code"])) == "expired_token"
    with hub.db.transaction() as s:
        assert s.scalar(select(Device.id)) is None


def test_staff_can_turn_down_a_kiosk_that_is_not_theirs(hub):
    code = ask_for_code(hub, name="Ukendt")
    staff = StaffPage(hub.url)
    done = staff.post("/admin/devices/deny", code=code["user_code"])
    assert texts(done.text, "notice") == [
        "The kiosk was turned down. It cannot connect with that code."
    ]
    assert error_code(poll(hub, code["device_code"])) == "access_denied"
    assert staff.confirm(code["user_code"]).status_code == 400


def test_an_admin_chooses_the_site_and_staff_of_another_site_see_and_change_nothing(hub):
    admin = StaffPage(hub.url, "admin")
    created = admin.post(
        "/admin/users",
        username="staff2",
        display_name="Personale 2",
        role="site_staff",
        site_id="2",
        password="demo-password",
    )
    assert created.status_code == 200
    code = ask_for_code(hub, name="Biblioteket")
    page = admin.confirm(code["user_code"])  # no site chosen
    assert page.status_code == 400 and alerts(page.text) == ["Choose the site the kiosk stands at."]
    assert admin.confirm(code["user_code"], site_id="3").status_code == 200
    assert poll(hub, code["device_code"]).json()["site"]["name"] == "Demo-bibliotek"

    nord = pair(hub, "staff1", name="Nord-kiosken")
    staff2 = StaffPage(hub.url, "staff2")
    # Staff pair with their own site only, whatever the form says.
    syd = pair(hub, "staff2", name="Syd-kiosken", site_id="1")
    assert syd["site"]["name"] == "Demo-skole Syd"
    assert [r["name"] for r in rows(staff2.page().text, "device")] == ["Syd-kiosken"]
    assert {r["name"] for r in rows(admin.page().text, "device")} == {
        "Biblioteket",
        "Nord-kiosken",
        "Syd-kiosken",
    }

    kiosk = connect_kiosk(hub, nord["device_token"])
    device = nord["device_id"]
    for action, form in [
        ("revoke", {}),
        ("rename", {"name": "Mine nu"}),
        ("command", {"name": "reboot"}),
    ]:
        answer = staff2.post(f"/admin/devices/{device}/{action}", **form)
        assert answer.status_code == 404 and alerts(answer.text) == ["There is no such kiosk."]
    kiosk.nothing("device:command")
    assert kiosk.sio.connected
    with hub.db.transaction() as s:
        assert s.get(Device, device).name == "Nord-kiosken"
        assert s.get(Device, device).revoked_at is None


# ---------------------------------------------------------------------------------------------
# A paired kiosk: revoking, health, commands


def test_a_revoked_kiosk_is_dropped_at_once_and_refused_after(hub):
    paired = pair(hub, name="Gammel")
    kiosk = connect_kiosk(hub, paired["device_token"])
    start_visit(kiosk, "Sara")
    request_id = kiosk.ok("help:request", {"subject": 1, "grade": 9})["request_id"]

    staff = StaffPage(hub.url)
    done = staff.post(f"/admin/devices/{paired['device_id']}/revoke")
    assert texts(done.text, "notice") == ["The kiosk is unpaired. To use it again, pair it anew."]
    wait_until(lambda: not kiosk.sio.connected)
    with pytest.raises(socketio.exceptions.ConnectionError):
        Kiosk(hub.url, paired["device_token"]).connect()
    assert row(staff.page().text, "device", name="Gammel")["status"] == "Unpaired"
    with hub.db.transaction() as s:  # the visit ended properly
        assert s.get(HelpRequest, request_id).status == "cancelled"
        assert s.scalar(select(User.id).where(User.display_name == "Sara")) is None


def test_heartbeats_and_commands_show_on_the_staff_page(hub):
    kiosk = paired_kiosk(hub, name="Kiosk A")
    kiosk.ok(
        "device:heartbeat",
        {
            "version": "0.3.1",
            "uptime_s": 7200,
            "camera_ok": True,
            "cpu_temp_c": 51.5,
            "disk_free_mb": 2048,
            "load": 0.42,
        },
    )
    staff = StaffPage(hub.url)
    listed = row(staff.page().text, "device", name="Kiosk A")
    assert "ago" in listed["heartbeat"] or "second" in listed["heartbeat"]
    for part in ("Camera: works", "CPU 52 °C", "2048 MB free disk", "load 0.42", "2 hours"):
        assert part in listed["health"], listed["health"]
    assert "version 0.3.1" in listed["health"]

    page = staff.post(f"/admin/devices/{kiosk_id(hub)}/command", name="restart_kiosk")
    assert texts(page.text, "notice") == ["Command sent. The kiosk's answer shows in the list."]
    command = kiosk.wait_for("device:command")
    assert command["name"] == "restart_kiosk" and command["args"] == {}
    assert row(staff.page().text, "device", name="Kiosk A")["command"] == (
        "Restart the kiosk program: sent, no answer yet"
    )
    kiosk.ok("device:command_done", {"command_id": command["command_id"], "ok": True})
    assert row(staff.page().text, "device", name="Kiosk A")["command"] == (
        "Restart the kiosk program: done"
    )
    answer = kiosk.call("device:command_done", {"command_id": 9999, "ok": True})
    assert answer["error"]["code"] == "not_found"

    start_visit(kiosk)  # the kiosk's own events still work while it acts for a student
    kiosk.ok(
        "device:heartbeat",
        {"version": "0.3.1", "uptime_s": 7230, "camera_ok": False, "disk_free_mb": 2000, "load": 1},
    )
    listed = row(staff.page().text, "device", name="Kiosk A")
    assert listed["status"] == "Online, a student is using it"
    assert "Camera: not working" in listed["health"] and "CPU" not in listed["health"]

    page = staff.post(f"/admin/devices/{kiosk_id(hub)}/rename", name="")
    assert page.status_code == 400 and alerts(page.text) == ["Please fill in or correct: Name."]
    staff.post(f"/admin/devices/{kiosk_id(hub)}/rename", name="Kiosk i kantinen")
    kiosk.close()
    wait_until(
        lambda: row(staff.page().text, "device", name="Kiosk i kantinen")["status"] == "Offline"
    )
    page = staff.post(f"/admin/devices/{kiosk_id(hub)}/command", name="reboot")
    assert page.status_code == 409 and alerts(page.text) == [
        "The kiosk is not connected right now, so it cannot get the command."
    ]


HEALTH = {"version": "1.0", "uptime_s": 100, "camera_ok": True, "disk_free_mb": 5000, "load": 0.1}


@both_backends
def test_the_history_of_problems_comes_from_the_heartbeats(hub):
    kiosk = paired_kiosk(hub, name="Kiosk H")
    beat = lambda **changes: kiosk.ok("device:heartbeat", {**HEALTH, **changes})  # noqa: E731
    answer = beat(started=True)
    assert answer["settings"] == {
        "lang": None,
        "idle_s": None,
        "countdown_s": None,
        "room_idle_s": None,
        "notice": "",
    }
    beat(uptime_s=130)  # nothing new
    beat(uptime_s=160, camera_ok=False)
    beat(uptime_s=190, camera_ok=False)  # still lost: told once
    beat(uptime_s=5, camera_ok=True)  # the uptime went down: it restarted, without saying so
    beat(uptime_s=35, offline_s=125.4)
    beat(uptime_s=65, disk_free_mb=800, cpu_temp_c=84.6)
    beat(uptime_s=95, disk_free_mb=790, cpu_temp_c=85.0)  # a lasting problem is told once an hour
    beat(uptime_s=125, offline_s=0, disk_free_mb=790, cpu_temp_c=85.0)

    staff = StaffPage(hub.url)
    html = staff.page().text
    assert texts(html, "problem-text") == [  # newest first
        "Hot: 85 °C",
        "Low free disk: 800 MB",
        "Could not reach the hub for 2 minutes",
        "The camera works again",
        "The kiosk program started",
        "The camera stopped working",
        "The kiosk program started",
    ]
    health = row(html, "device", name="Kiosk H")["health"]
    assert "790 MB free disk" in health and "CPU 85 °C" in health
    # Malformed new fields are refused by name.
    for bad in ({"started": "maybe"}, {"offline_s": -1}):
        refused = kiosk.call("device:heartbeat", {**HEALTH, **bad})
        assert set(refused["error"]["details"]["fields"]) == set(bad)


def test_ice_servers_for_provision_check_go_to_kiosks_only(hub):
    kiosk = paired_kiosk(hub)
    answer = kiosk.ok("device:ice", {})
    assert isinstance(answer["ice_servers"], list)
    assert answer["ice_transport_policy"] == "all"
    student = hub.client("student1")
    assert student.call("device:ice", {})["error"]["code"] == "forbidden"


def test_an_unpaired_kiosk_is_told_before_its_connection_closes(hub):
    paired = pair(hub)
    kiosk = connect_kiosk(hub, paired["device_token"])
    StaffPage(hub.url).post(f"/admin/devices/{paired['device_id']}/revoke")
    assert kiosk.wait_for("device:revoked") == {}
    wait_until(lambda: not kiosk.sio.connected)


def test_a_kiosk_unpairs_itself_with_its_token(hub):
    url = hub.url + "/api/devices/unpair"
    paired = pair(hub, name="Flyttes")
    kiosk = connect_kiosk(hub, paired["device_token"])
    bearer = {"Authorization": f"Bearer {paired['device_token']}"}
    for token in ("made-up", "x" * 5000):
        r = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 401 and error_code(r) == "unauthenticated", token[:10]
    r = requests.post(url, timeout=5)  # no token at all
    assert r.status_code == 401 and error_code(r) == "unauthenticated"
    r = requests.post(url, headers=bearer, timeout=5)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert kiosk.wait_for("device:revoked") == {}
    wait_until(lambda: not kiosk.sio.connected)
    with pytest.raises(socketio.exceptions.ConnectionError):
        Kiosk(hub.url, paired["device_token"]).connect()
    assert requests.post(url, headers=bearer, timeout=5).status_code == 401  # once
    assert row(StaffPage(hub.url).page().text, "device", name="Flyttes")["status"] == "Unpaired"


@both_backends
def test_settings_changed_by_staff_are_pushed_to_the_sites_kiosks(hub):
    nord = paired_kiosk(hub, name="Nord")
    other = pair(hub, "admin", name="Syd", site_id="2")
    syd = connect_kiosk(hub, other["device_token"])
    staff = StaffPage(hub.url)
    staff.post("/admin/devices/sites/1/settings", notice="Lukket i dag", countdown_s="20")
    assert nord.wait_for("device:settings") == {
        "lang": None,
        "idle_s": None,
        "countdown_s": 20,
        "room_idle_s": None,
        "notice": "Lukket i dag",
    }
    syd.nothing("device:settings")  # another site's kiosk
    # ... and in the answer to every heartbeat, so a kiosk has them after each connect.
    assert nord.ok("device:heartbeat", HEALTH)["settings"]["notice"] == "Lukket i dag"
    assert syd.ok("device:heartbeat", HEALTH)["settings"]["notice"] == ""


def kiosk_id(hub) -> int:
    with hub.db.transaction() as s:
        return int(s.scalar(select(Device.id)))


# ---------------------------------------------------------------------------------------------
# Visits


@both_backends
def test_a_kiosk_student_asks_for_help_and_a_helper_cannot_tell_the_difference(hub):
    kiosk = paired_kiosk(hub)
    helper = hub.client("helper1")
    on_duty(helper)
    visit = start_visit(kiosk, "Ali", 9)
    uploaded = requests.post(
        hub.url + "/api/attachments",
        files={"file": ("opgave.png", photo(), "image/png")},
        headers={"Authorization": f"Bearer {visit['visit_token']}"},
        timeout=10,
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()["attachment_id"]
    asked = kiosk.ok(
        "help:request",
        {"subject": 1, "grade": 9, "note": "Brøker", "attachment_ids": [attachment]},
    )
    assert asked["position"] == 1

    offer = helper.wait_for("offer")
    assert offer["request"]["nickname"] == "Ali" and offer["request"]["note"] == "Brøker"
    assert [a["id"] for a in offer["request"]["attachments"]] == [attachment]
    accepted = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})
    match = kiosk.wait_for("match")
    assert match["room_id"] == accepted["room_id"]
    assert match["peer"]["display_name"] == "Hjælper 1"
    assert accepted["peer"] == {"display_name": "Ali", "role": "student", "organisation": None}

    with hub.db.transaction() as s:
        student = s.scalar(select(User).where(User.display_name == "Ali"))
        assert student.role == Role.STUDENT and student.site_id == 1 and student.grade == 9
    # The visit's account cannot log in, whatever the password.
    assert hub.browserless().login(student.username, "").status_code in (400, 401)

    assert kiosk.ok("visit:end", {}) == {"ok": True, "ended": True}
    ended = helper.wait_for("room:ended")
    assert ended["room_id"] == match["room_id"] and ended["by"] == "student"
    with hub.db.transaction() as s:
        assert s.scalar(select(User.id).where(User.display_name == "Ali")) is None
        wiped = s.get(User, student.id)
        assert (wiped.display_name, wiped.grade, wiped.active) == ("", None, False)
        assert s.scalar(select(KioskVisit.ended_at).where(KioskVisit.id == visit["visit_id"]))
    me = requests.get(
        hub.url + "/api/me", headers={"Authorization": f"Bearer {visit['visit_token']}"}, timeout=5
    )
    assert me.status_code == 401  # the visit's token died with it


def test_ending_a_visit_cancels_its_request_and_the_kiosk_is_no_student_any_more(hub):
    kiosk = paired_kiosk(hub)
    start_visit(kiosk, "Yusuf", 10)
    request_id = kiosk.ok("help:request", {"subject": 1, "grade": 10})["request_id"]
    kiosk.ok("breakroom:send", {"text": "hej", "client_msg_id": "m1"})
    other = hub.client("student1")
    other.ok("help:request", {"subject": 1, "grade": 9})

    kiosk.ok("visit:end", {})
    kiosk.drain("breakroom:message")
    with hub.db.transaction() as s:
        assert s.get(HelpRequest, request_id).status == "cancelled"
        assert s.scalar(select(User.id).where(User.display_name == "Yusuf")) is None
    for event, payload in [
        ("help:request", {"subject": 1, "grade": 9}),
        ("breakroom:send", {"text": "hej igen", "client_msg_id": "m2"}),
    ]:
        assert kiosk.call(event, payload)["error"]["code"] == "forbidden"
    other.ok("breakroom:send", {"text": "er der nogen?", "client_msg_id": "x1"})
    kiosk.nothing("breakroom:message")  # the attract screen hears no chat
    assert kiosk.ok("visit:end", {}) == {"ok": True, "ended": False}  # nothing to end is fine


def test_a_kiosk_that_drops_during_a_visit_resumes_it(hub):
    paired = pair(hub)
    kiosk = connect_kiosk(hub, paired["device_token"])
    visit = start_visit(kiosk, "Mina", 8)
    request_id = kiosk.ok("help:request", {"subject": 2, "grade": 8})["request_id"]
    kiosk.close()

    back = connect_kiosk(hub, paired["device_token"])
    refused = back.call("visit:start", {"nickname": "Ny", "grade": 9})
    assert refused["error"]["code"] == "conflict"
    assert refused["error"]["details"]["visit_id"] == visit["visit_id"]
    assert back.call("help:cancel", {"request_id": request_id})["error"]["code"] == "forbidden"
    resumed = back.ok("visit:resume", {"visit_id": visit["visit_id"]})
    assert resumed["visit_id"] == visit["visit_id"] and resumed["visit_token"]
    assert back.wait_for("queue:update")["request_id"] == request_id
    back.ok("help:cancel", {"request_id": request_id})
    back.ok("visit:end", {})
    assert back.call("visit:resume", {"visit_id": visit["visit_id"]})["error"]["code"] == (
        "conflict"
    )
    assert back.call("visit:resume", {"visit_id": 9999})["error"]["code"] == "not_found"


# ---------------------------------------------------------------------------------------------
# Who may do what, and malformed input


def test_kiosk_events_refuse_people_and_peoples_events_refuse_a_kiosk(hub):
    socket_features()
    events = registered_events()
    kiosk_events = {e for e, roles in events.items() if Role.KIOSK in roles}
    assert kiosk_events == {
        "device:heartbeat",
        "device:command_done",
        "device:ice",
        "helpdesk:ticket",
        "visit:start",
        "visit:resume",
        "visit:end",
    }
    assert all(roles == {Role.KIOSK} for e, roles in events.items() if e in kiosk_events)
    kiosk = paired_kiosk(hub)
    for event in sorted(set(events) - kiosk_events):
        answer = kiosk.call(event, {})
        assert answer["error"]["code"] == "forbidden", (event, answer)
    for username in ("student1", "helper1", "admin", "coordinator1", "staff1"):
        person = hub.client(username)
        for event in kiosk_events:
            assert person.call(event, {})["error"]["code"] == "forbidden", (username, event)


@pytest.mark.parametrize(
    ("event", "payload", "field"),
    [
        ("visit:start", {"nickname": "", "grade": 9}, "nickname"),
        ("visit:start", {"nickname": "x" * 31, "grade": 9}, "nickname"),
        ("visit:start", {"nickname": "Ali", "grade": 7}, "grade"),
        ("visit:start", {"nickname": "Ali"}, "grade"),
        ("visit:resume", {"visit_id": "first"}, "visit_id"),
        ("device:heartbeat", {"version": "1", "uptime_s": -1, "camera_ok": True}, "uptime_s"),
        (
            "device:heartbeat",
            {
                "version": "1",
                "uptime_s": 1,
                "camera_ok": True,
                "disk_free_mb": 1,
                "load": 1,
                "cpu_temp_c": 900,
            },
            "cpu_temp_c",
        ),
        ("device:command_done", {"command_id": 1, "ok": True, "detail": "x" * 501}, "detail"),
        ("device:command_done", {"ok": True}, "command_id"),
    ],
)
def test_malformed_kiosk_events_are_refused_by_field(hub, event, payload, field):
    kiosk = paired_kiosk(hub)
    answer = kiosk.call(event, payload)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid", answer
    assert field in answer["error"]["details"]["fields"], answer
    assert kiosk.call(event, ["not", "an", "object"])["error"]["code"] == "invalid"


def test_a_nickname_carrying_contact_details_is_refused(hub):
    kiosk = paired_kiosk(hub)
    answer = kiosk.call("visit:start", {"nickname": "snap ali2009", "grade": 9})
    assert answer["error"]["code"] == "blocked"
    with hub.db.transaction() as s:
        assert s.scalar(select(KioskVisit.id)) is None


def test_pairing_routes_refuse_malformed_input_and_a_device_token_opens_no_page(hub):
    url = hub.url + "/api/devices/pair"
    assert requests.post(url, timeout=5).status_code == 200  # a name is optional
    for body in ({"name": "x" * 61}, {"model": "x" * 81}):
        r = requests.post(url, json=body, timeout=5)
        assert r.status_code == 400 and error_code(r) == "invalid"
    r = requests.post(url, data="[1, 2]", headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and error_code(r) == "invalid"
    r = requests.post(url + "/poll", json={}, timeout=5)
    assert r.status_code == 400 and "device_code" in r.json()["error"]["details"]["fields"]
    assert error_code(poll(hub, "made-up")) == "expired_token"

    token = pair(hub)["device_token"]
    for forged in ("forged", token[:-1], "x" * 5000):
        with pytest.raises(socketio.exceptions.ConnectionError):
            Kiosk(hub.url, forged).connect()
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(hub.url + "/api/me", headers=bearer, timeout=5).status_code == 401
    r = requests.get(hub.url + "/admin/devices", headers=bearer, allow_redirects=False, timeout=5)
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    with hub.db.transaction() as s:
        kiosk_user = s.scalar(select(User.username).where(User.role == Role.KIOSK))
    assert hub.browserless().login(kiosk_user, "").status_code in (400, 401)


def staff_routes(hub) -> list[tuple[str, str]]:
    """(method, path) of every page and form of the kiosks page, from the hub's own url_map."""
    from hub import create_app

    app = create_app(HubConfig(data_dir=hub.data_dir, secret_key="rules", database_url=hub.db.url))
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("devices.") and rule.rule.startswith("/admin/"):
            path = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, 1))
            found += [(m, path) for m in sorted(rule.methods or ()) if m in ("GET", "POST")]
    return found


def test_the_kiosks_page_and_its_forms_refuse_everyone_but_staff_and_admins(hub):
    routes = staff_routes(hub)
    assert len(routes) == 8
    for username in ("student1", "helper1", "coordinator1"):
        someone = hub.browserless()
        assert someone.login(username).status_code == 302
        token = someone.csrf("/login")
        for method, path in routes:
            data = {"csrf_token": token, "code": "ABCD-EFGH", "name": "reboot", "notice": "x"}
            answer = someone.http.request(method, hub.url + path, data=data, allow_redirects=False)
            assert answer.status_code == 403, (username, method, path)
    visitor = hub.browserless()
    token = visitor.csrf("/login")
    for method, path in routes:
        answer = visitor.http.request(
            method, hub.url + path, data={"csrf_token": token}, allow_redirects=False
        )
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path
    for username in ("staff1", "admin"):
        page = StaffPage(hub.url, username).http.get(hub.url + "/admin")
        assert 'href="/admin/devices"' in page.text, username


# ---------------------------------------------------------------------------------------------
# Housekeeping


def test_old_visits_are_deleted_after_the_retention_period(database_url, tmp_path):
    db = Database(database_url)
    config = HubConfig(data_dir=tmp_path, database_url=database_url)
    now = clock.now()
    with db.transaction() as s:
        kiosk = User(
            username="kiosk-x", password_hash="!", role="kiosk", display_name="K", created_at=now
        )
        s.add(kiosk)
        s.flush()
        device = Device(site_id=1, user_id=kiosk.id, name="K", created_at=now)
        s.add(device)
        s.flush()
        for name, started, ended in [
            ("old", now - timedelta(days=31), now - timedelta(days=31)),
            ("recent", now - timedelta(days=2), now - timedelta(days=2)),
            ("abandoned", now - timedelta(hours=13), None),
        ]:
            user = User(
                username=f"visit-{name}",
                password_hash="!",
                role="student",
                display_name="" if ended else name,
                created_at=started,
            )
            s.add(user)
            s.flush()
            s.add(
                KioskVisit(device_id=device.id, user_id=user.id, started_at=started, ended_at=ended)
            )
    with db.transaction() as s:
        housekeeping.run(s, config, now)
    with db.transaction() as s:
        left = dict(
            s.execute(
                select(User.username, KioskVisit.ended_at).join(
                    KioskVisit, KioskVisit.user_id == User.id
                )
            ).all()
        )
        assert set(left) == {"visit-recent", "visit-abandoned"}
        assert left["visit-abandoned"] is not None
        assert s.scalar(select(User.id).where(User.display_name == "abandoned")) is None
        assert s.get(Device, device.id) is not None
    db.dispose()


def test_a_kiosks_problems_are_deleted_after_30_days(database_url, tmp_path):
    db = Database(database_url)
    config = HubConfig(data_dir=tmp_path, database_url=database_url)
    now = clock.now()
    with db.transaction() as s:
        kiosk = User(
            username="kiosk-y", password_hash="!", role="kiosk", display_name="K", created_at=now
        )
        s.add(kiosk)
        s.flush()
        device = Device(site_id=1, user_id=kiosk.id, name="K", created_at=now)
        s.add(device)
        s.flush()
        for days in (31, 29):
            s.add(DeviceEvent(device_id=device.id, at=now - timedelta(days=days), kind="hot"))
    with db.transaction() as s:
        housekeeping.run(s, config, now)
    with db.transaction() as s:
        left = s.scalars(select(DeviceEvent.at)).all()
        assert [round((now - at).days) for at in left] == [29]
    db.dispose()


def test_kiosks_and_their_visits_are_not_counted_or_listed_as_accounts(hub):
    admin = Staff(hub.url, "admin")
    students_before = row(admin.get("/admin/sites").text, "site", name="Demo-skole Nord")[
        "students"
    ]
    kiosk = paired_kiosk(hub)
    start_visit(kiosk, "Besøg")
    users = admin.get("/admin/users").text
    assert "Besøg" not in users and "kiosk-" not in users and "visit-" not in users
    site = row(admin.get("/admin/sites").text, "site", name="Demo-skole Nord")
    assert site["students"] == students_before
