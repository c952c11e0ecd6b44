"""Every socket event and route refuses the wrong role and malformed input, with a clear error."""

from __future__ import annotations

import time

import pytest
import requests
import socketio
from sqlalchemy import select, text

from hub import create_app
from hub.accounts.access import make_token
from hub.accounts.models import User
from hub.config import HubConfig
from tests.hubclient import Client
from tests.kiosks import paired_kiosk

# event -> (roles allowed, a payload that is well-formed for it)
EVENTS = {
    "help:request": ({"student"}, {"subject": 1, "grade": 9}),
    "help:cancel": ({"student"}, {"request_id": 1}),
    "duty:set": ({"helper"}, {"status": "available"}),
    "offer:accept": ({"helper"}, {"offer_id": 1}),
    "offer:decline": ({"helper"}, {"offer_id": 1}),
    "breakroom:send": ({"student"}, {"text": "hej", "client_msg_id": "m1"}),
    "breakroom:history": ({"student", "helper", "admin", "coordinator"}, {}),
    "breakroom:remove": ({"helper", "admin", "coordinator"}, {"msg_id": 1}),
    "room:join": ({"student", "helper"}, {"room_id": "r"}),
    "rtc:signal": ({"student", "helper"}, {"room_id": "r", "kind": "restart", "data": {}}),
    "rtc:quality": ({"student", "helper"}, {"room_id": "r", "video": "off", "reason": "network"}),
    "chat:send": ({"student", "helper"}, {"room_id": "r", "text": "hej", "client_msg_id": "c"}),
    "room:end": ({"student", "helper"}, {"room_id": "r"}),
    "room:report": ({"student", "helper"}, {"room_id": "r", "text": "hm"}),
    "feedback:submit": ({"student", "helper"}, {"room_id": "r", "rating": 3}),
    "device:heartbeat": (
        {"kiosk"},
        {"version": "1", "uptime_s": 1, "camera_ok": True, "disk_free_mb": 1, "load": 0},
    ),
    "device:command_done": ({"kiosk"}, {"command_id": 1, "ok": True}),
    "device:ice": ({"kiosk"}, {}),
    "helpdesk:ticket": ({"kiosk"}, {"problem": "other", "ref": "access-test-1"}),
    "visit:resume": ({"kiosk"}, {"visit_id": 1}),
    # A started visit makes the kiosk's connection a student too: end it right after.
    "visit:start": ({"kiosk"}, {"nickname": "Ali", "grade": 9}),
    "visit:end": ({"kiosk"}, {}),
}
USERS = {
    "student": "student1",
    "helper": "helper1",
    "admin": "admin",
    "coordinator": "coordinator1",
    "site_staff": "staff1",
}


def clients_of_every_role(hub):
    """A connection of each role: the demo users, and a paired kiosk."""
    return {**{role: hub.client(u) for role, u in USERS.items()}, "kiosk": paired_kiosk(hub)}


def test_every_event_refuses_the_roles_it_is_not_for(hub):
    clients = clients_of_every_role(hub)
    for event, (allowed, payload) in EVENTS.items():
        for role, client in clients.items():
            answer = client.call(event, payload)
            if role in allowed:
                assert answer.get("error", {}).get("code") != "forbidden", (event, role, answer)
            else:
                assert answer == {
                    "ok": False,
                    "error": {"code": "forbidden", "message": answer["error"]["message"]},
                }, (event, role)
                assert answer["error"]["message"]


def test_the_list_of_events_under_test_is_complete():
    """A new event must be added to EVENTS, so its refusals are tested too."""
    from hub import socket_features
    from hub.realtime.events import registered_events

    socket_features()

    assert {name: {r.value for r in roles} for name, roles in registered_events().items()} == {
        name: allowed for name, (allowed, _payload) in EVENTS.items()
    }


def test_two_apps_in_one_process_each_serve_the_socket_events_once(database_url, tmp_path):
    """Features bind their socket events when the factory calls them, to that app's server: a
    second app gets every event too, and nothing twice."""
    from hub.extensions import socketio
    from hub.realtime.events import registered_events

    apps = [
        create_app(HubConfig(data_dir=tmp_path / name, database_url=database_url))
        for name in ("first", "second")
    ]
    assert {*registered_events(), "connect", "disconnect"} <= set(socketio.server.handlers["/"])
    app = apps[-1]
    with app.app_context():
        with app.extensions["lektiecafe"].db.transaction() as s:
            student_id = s.scalar(select(User.id).where(User.username == "student1"))
        token = make_token(student_id)
    client = socketio.test_client(app, auth={"token": token})
    assert client.is_connected()
    answer = client.emit("help:request", {"subject": 1, "grade": 9}, callback=True)
    assert answer["ok"] is True and answer["position"] == 1
    client.disconnect()


@pytest.mark.parametrize(
    "payload",
    [
        "just text",
        42,
        [1, 2],
        {"subject": "maths", "grade": 9},
        {"grade": 9},
        {"subject": 1, "grade": "ninth"},
        {"subject": 1, "grade": 9, "note": "x" * 501},
    ],
)
def test_a_malformed_help_request_is_refused_and_changes_nothing(hub, payload):
    student = hub.client("student1")
    answer = student.call("help:request", payload)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid"
    assert answer["error"]["message"]
    # Nothing was queued: a good request is first in line.
    assert (
        student.ok("help:request", {"subject": 1, "grade": 9, "unknown_field": "ignored"})[
            "position"
        ]
        == 1
    )


def test_malformed_payloads_of_every_event_get_invalid(hub):
    clients = clients_of_every_role(hub)
    for event, (allowed, _payload) in EVENTS.items():
        client = clients[sorted(allowed)[0]]
        answer = client.call(event, "not an object")
        assert answer["ok"] is False and answer["error"]["code"] == "invalid", (event, answer)


def test_unknown_subjects_grades_and_languages_are_refused_by_name(hub):
    student = hub.client("student1")
    for payload, field in [
        ({"subject": 999, "grade": 9}, "subject"),
        ({"subject": 1, "grade": 7}, "grade"),
        ({"subject": 1, "grade": 9, "language": "xx"}, "language"),
    ]:
        answer = student.call("help:request", payload)
        assert (
            answer["error"]["code"] == "invalid" and field in answer["error"]["details"]["fields"]
        )


def test_a_socket_without_valid_credentials_is_refused(hub):
    for auth in (None, {"token": "forged"}, {"token": hub.token("student1") + "x"}):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(hub.url, auth=auth, transports=["websocket"], wait_timeout=5)


def test_a_browser_session_cookie_authenticates_the_socket(hub):
    web = hub.browserless()
    assert web.login("student1").status_code == 302
    cookie = "; ".join(f"{c.name}={c.value}" for c in web.http.cookies)
    student = Client(hub.url, headers={"Cookie": cookie}).connect()
    try:
        assert student.ok("help:request", {"subject": 1, "grade": 9})["position"] == 1
    finally:
        student.close()


def test_wrong_passwords_get_401_and_repeated_ones_are_slowed_down(hub):
    url = hub.url + "/api/auth/token"
    for _ in range(3):  # the test hub allows 3 free failures, then 2 s between tries
        r = requests.post(url, json={"username": "student1", "password": "wrong"}, timeout=5)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = requests.post(url, json={"username": "student1", "password": "demo-password"}, timeout=5)
    assert r.status_code == 429 and r.json()["error"]["details"]["retry_after_s"] >= 1
    time.sleep(2.1)
    assert (
        requests.post(
            url, json={"username": "student1", "password": "demo-password"}, timeout=5
        ).status_code
        == 200
    )
    # An unknown user gets the same answer as a wrong password.
    wrong_password = requests.post(url, json={"username": "student2", "password": "x"}, timeout=5)
    unknown_user = requests.post(url, json={"username": "nobody", "password": "x"}, timeout=5)
    assert unknown_user.status_code == wrong_password.status_code == 401
    assert unknown_user.json()["error"] == wrong_password.json()["error"]
    assert requests.post(url, data="not json", timeout=5).json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("username", "start"),
    [
        ("student1", "/student"),
        ("helper1", "/helper"),
        ("admin", "/admin"),
        ("coordinator1", "/admin"),
        ("staff1", "/admin"),
    ],
)
def test_each_role_lands_on_its_own_start_page(hub, username, start):
    r = hub.browserless().login(username)
    assert r.status_code == 302 and r.headers["Location"] == start


def test_pages_refuse_the_wrong_role_and_send_visitors_to_login(hub):
    student, helper = hub.browserless(), hub.browserless()
    student.login("student1")
    helper.login("helper1")
    assert student.http.get(hub.url + "/helper").status_code == 403
    assert helper.http.get(hub.url + "/student").status_code == 403
    assert student.http.get(hub.url + "/admin").status_code == 403
    r = requests.get(hub.url + "/student", allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/student")
    r = requests.post(
        hub.url + "/api/attachments", timeout=5, headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401 and r.json()["ok"] is False


def test_a_form_without_its_csrf_token_is_refused(hub):
    web = hub.browserless()
    web.login("helper1")
    r = web.http.post(hub.url + "/helper/profile", data={"grade_min": 8, "grade_max": 9})
    assert r.status_code == 400


def test_a_wrong_password_on_the_login_page_says_so(hub):
    web = hub.browserless()
    r = web.http.post(
        hub.url + "/login",
        data={"username": "student1", "password": "nope", "csrf_token": web.csrf()},
    )
    assert r.status_code == 401 and 'data-testid="login-error"' in r.text


def test_the_session_cookie_is_secure_httponly_and_samesite(database_url, tmp_path):
    app = create_app(HubConfig(data_dir=tmp_path, database_url=database_url))  # HTTPS by default
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    r = client.post(
        "/login", data={"username": "student1", "password": "demo-password", "csrf_token": token}
    )
    assert r.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in r.headers.getlist("Set-Cookie")}
    session = cookies["lektiecafe_session"]
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Lax" in session
    device = cookies["lektiecafe_device"]  # the login throttle's known device: never cross-site
    assert "Secure" in device and "HttpOnly" in device and "SameSite=Strict" in device


def test_a_student_sees_their_own_data_and_can_delete_all_of_it(hub):
    student = hub.client("student1")
    student.ok("help:request", {"subject": 1, "grade": 9, "note": "andengradsligninger"})
    student.ok("breakroom:send", {"text": "hej med jer", "client_msg_id": "m1"})
    web = hub.browserless()
    web.login("student1")
    page = web.http.get(hub.url + "/me/data").text
    assert "student1" in page and "andengradsligninger" in page and "hej med jer" in page
    assert hub.browserless().login("student2") and "andengradsligninger" not in _my_data(
        hub, "student2"
    )

    refused = web.http.post(hub.url + "/me/delete", data={"csrf_token": web.csrf("/me/data")})
    assert refused.status_code == 400  # not confirmed: nothing deleted
    assert (
        web.http.post(
            hub.url + "/me/delete", data={"csrf_token": web.csrf("/me/data"), "confirm": "yes"}
        ).status_code
        == 200
    )
    assert hub.browserless().login("student1").status_code == 401
    with hub.db.transaction() as s:
        assert s.execute(text("SELECT count(*) FROM help_requests")).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM breakroom_messages")).scalar() == 0


def _my_data(hub, username: str) -> str:
    web = hub.browserless()
    web.login(username)
    return web.http.get(hub.url + "/me/data").text
