"""Logins, API tokens and device tokens: a login gets a new session, logout and revocation stop a
credential at once (HTTP and socket alike), and the database never holds a raw secret."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import zlib

import pytest
import requests
import socketio
from sqlalchemy import inspect, select, text

from hub.accounts.models import Credential, User
from tests.hubclient import Browserless, Client, advance_clock
from tests.kiosks import StaffPage, connect_kiosk, pair


def everything_stored(hub) -> str:
    """Every value of every row of every table, as one text to search."""
    parts = []
    with hub.db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            parts += [repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(parts)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def me(hub, **kwargs) -> requests.Response:
    return requests.get(hub.url + "/api/me", timeout=10, **kwargs)


def bearer(token: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def socket_refused(hub, auth=None, headers=None) -> bool:
    client = socketio.Client(reconnection=False)
    try:
        client.connect(
            hub.url, auth=auth, headers=headers or {}, transports=["websocket"], wait_timeout=5
        )
    except socketio.exceptions.ConnectionError:
        return True
    client.disconnect()
    return False


def closed_by_hub(client, timeout: float = 10) -> bool:
    """Whether the hub closes this open socket within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while client.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    return not client.sio.connected


def cookie_header(session: requests.Session) -> dict[str, str]:
    return {"Cookie": f"lektiecafe_session={session.cookies['lektiecafe_session']}"}


def session_of(cookie: str) -> dict:
    """What a Flask session cookie holds (signed, not encrypted: the test reads it as is)."""
    payload = cookie.split(".")[1] if cookie.startswith(".") else cookie.split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(zlib.decompress(data) if cookie.startswith(".") else data)


def test_login_starts_a_new_session_and_the_cookie_from_before_stays_anonymous(hub):
    web = Browserless(hub.url)
    web.csrf()  # the login page sets a session cookie (its CSRF token) before anyone logs in
    before = web.http.cookies["lektiecafe_session"]
    assert web.login("student1").status_code == 302
    after = web.http.cookies["lektiecafe_session"]
    assert after != before
    old = {"Cookie": f"lektiecafe_session={before}"}
    assert me(hub, headers=old).status_code == 401
    assert me(hub, headers={"Cookie": f"lektiecafe_session={after}"}).status_code == 200
    key = session_of(after)["key"]
    stored = everything_stored(hub)
    assert key not in stored and sha256(key) in stored
    assert socket_refused(hub, headers=old)
    # A second login of the same person is a second session with its own key.
    again = Browserless(hub.url)
    again.login("student1")
    assert again.http.cookies["lektiecafe_session"] != after
    with hub.db.transaction() as s:
        kinds = s.scalars(select(Credential.kind).join(User).where(User.username == "student1"))
        assert sorted(kinds) == ["session", "session"]


@pytest.fixture
def hub_env() -> dict[str, str]:
    """The default login lifetime (tests/conftest.py gives other test hubs 400 days)."""
    return {"LEKTIECAFE_TOKEN_MAX_AGE_S": str(12 * 3600)}


def test_a_login_and_an_api_token_run_out_12_hours_after_they_were_made(hub):
    web = Browserless(hub.url)
    web.login("helper1")
    cookie, token = cookie_header(web.http), hub.token("student1")
    advance_clock(hub.url, 11 * 3600)  # in use all along: still good
    assert me(hub, headers=cookie).status_code == 200
    assert me(hub, **bearer(token)).status_code == 200
    advance_clock(hub.url, 2 * 3600)
    assert me(hub, headers=cookie).status_code == 401
    assert me(hub, **bearer(token)).status_code == 401
    page = requests.get(hub.url + "/helper", headers=cookie, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert socket_refused(hub, headers=cookie)
    assert socket_refused(hub, auth={"token": token})


def test_logout_ends_the_login_for_every_copy_of_the_cookie(hub):
    web = Browserless(hub.url)
    web.login("helper1")
    copied = cookie_header(web.http)  # e.g. left in a shared computer's browser profile
    assert me(hub, headers=copied).status_code == 200
    assert not socket_refused(hub, headers=copied)
    open_page = Client(hub.url, headers=copied).connect()  # the helper station, still open
    elsewhere = Browserless(hub.url)
    elsewhere.login("helper1")  # the same helper on another computer
    other_page = Client(hub.url, headers=cookie_header(elsewhere.http)).connect()
    logged_out = web.http.post(
        hub.url + "/logout", data={"csrf_token": web.csrf("/helper")}, allow_redirects=False
    )
    assert logged_out.status_code == 302
    assert logged_out.headers["Clear-Site-Data"] == '"storage"'  # the room documents' copies
    assert me(hub, headers=copied).status_code == 401
    page = requests.get(hub.url + "/helper", headers=copied, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert socket_refused(hub, headers=copied)
    assert closed_by_hub(open_page)
    assert other_page.sio.connected and other_page.ok("test-only:settle")
    other_page.close()
    with hub.db.transaction() as s:
        kinds = s.scalars(select(Credential.kind).join(User).where(User.username == "helper1"))
        assert list(kinds) == ["session"]  # the other computer's login only


def test_an_api_token_is_stored_hashed_and_revoked_at_once_on_http_and_socket(hub):
    token = hub.token("student1")
    stored = everything_stored(hub)
    assert token not in stored and sha256(token) in stored
    assert me(hub, **bearer(token)).json()["role"] == "student"
    student = hub.client("student1", connect=False)
    student.token = token
    student.connect()
    assert student.ok("help:request", {"subject": 1, "grade": 9})["position"] == 1
    other = hub.client("student1")  # the same student with another token

    revoked = requests.delete(hub.url + "/api/auth/token", timeout=10, **bearer(token))
    assert revoked.status_code == 200 and revoked.json() == {"ok": True}
    assert me(hub, **bearer(token)).status_code == 401
    assert socket_refused(hub, auth={"token": token})
    assert closed_by_hub(student)  # the socket it opened is closed, not only new ones refused
    assert other.sio.connected and other.ok("test-only:settle")
    other.close()
    again = requests.delete(hub.url + "/api/auth/token", timeout=10, **bearer(token))
    assert again.status_code == 401 and again.json()["error"]["code"] == "unauthenticated"
    assert requests.delete(hub.url + "/api/auth/token", timeout=10).status_code == 401
    # Another token of the same person is not touched.
    assert me(hub, **bearer(hub.token("student1"))).status_code == 200


def test_a_deactivated_account_loses_its_logins_and_tokens(hub):
    token = hub.token("helper2")
    web = Browserless(hub.url)
    web.login("helper2")
    copied = cookie_header(web.http)
    admin = Browserless(hub.url)
    admin.login("admin")
    with hub.db.transaction() as s:
        helper_id = s.scalar(select(User.id).where(User.username == "helper2"))
    answer = admin.http.post(
        f"{hub.url}/admin/users/{helper_id}/active",
        data={"csrf_token": admin.csrf("/admin/users"), "active": "0"},
        allow_redirects=False,
    )
    assert answer.status_code in (200, 302), answer.text
    assert me(hub, **bearer(token)).status_code == 401
    assert me(hub, headers=copied).status_code == 401
    assert socket_refused(hub, auth={"token": token})
    with hub.db.transaction() as s:
        assert s.scalar(select(Credential.id).where(Credential.user_id == helper_id)) is None


def test_a_device_token_is_stored_hashed_and_a_revoked_one_is_refused_at_once(hub):
    paired = pair(hub, name="Revoked kiosk")
    token = paired["device_token"]
    stored = everything_stored(hub)
    assert token not in stored and sha256(token) in stored
    kiosk = connect_kiosk(hub, token)
    kiosk.ok(
        "device:heartbeat",
        {"version": "1", "uptime_s": 1, "camera_ok": True, "disk_free_mb": 1, "load": 0},
    )
    visit = kiosk.ok("visit:start", {"nickname": "Ali", "grade": 9})
    visit_token = visit["visit_token"]
    assert visit_token not in everything_stored(hub)
    assert me(hub, **bearer(visit_token)).status_code == 200

    staff = StaffPage(hub.url)
    started = time.monotonic()
    assert staff.post(f"/admin/devices/{paired['device_id']}/revoke").status_code == 200
    # The kiosk's socket is closed by the hub at once, and it cannot come back.
    while kiosk.sio.connected:
        assert time.monotonic() - started < 5, "the revoked kiosk's socket stayed open"
        time.sleep(0.05)
    assert socket_refused(hub, auth={"device_token": token})
    unpair = requests.post(hub.url + "/api/devices/unpair", timeout=10, **bearer(token))
    assert unpair.status_code == 401
    # The visit it had under way ended, and its token with it.
    assert me(hub, **bearer(visit_token)).status_code == 401
    assert visit_token not in everything_stored(hub)


def test_a_kiosk_visit_token_is_for_the_visits_photo_only(hub):
    kiosk = connect_kiosk(hub, pair(hub, name="Photo kiosk")["device_token"])
    visit_token = kiosk.ok("visit:start", {"nickname": "Ali", "grade": 9})["visit_token"]
    for path in ("/student", "/me/data", "/help/mine"):
        page = requests.get(
            hub.url + path, allow_redirects=False, timeout=10, **bearer(visit_token)
        )
        assert page.status_code == 403, path
    # Not a socket login of its own: the kiosk's connection acts for the visit already.
    assert socket_refused(hub, auth={"token": visit_token})
    kiosk.ok("visit:end", {})
    upload = requests.post(
        hub.url + "/api/attachments",
        files={"file": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")},
        timeout=10,
        **bearer(visit_token),
    )
    assert upload.status_code == 401


def test_forged_tokens_are_refused(hub):
    for forged in ("", "x" * 300, "not-a-token", hub.token("student1") + "x"):
        assert me(hub, **bearer(forged)).status_code == 401
        assert socket_refused(hub, auth={"token": forged})
        assert socket_refused(hub, auth={"device_token": forged})


def test_tokens_minted_in_bulk_work_and_are_stored_hashed(database_url, tmp_path):
    """bench/ mints thousands of tokens at once: one transaction, the same kind of token."""
    from hub import create_app
    from hub.accounts.access import make_tokens, token_holder
    from hub.config import HubConfig

    app = create_app(HubConfig(data_dir=tmp_path / "app", database_url=database_url))
    with app.app_context():
        state = app.extensions["lektiecafe"]
        with state.db.transaction() as s:
            ids = list(s.scalars(select(User.id).where(User.username.like("student%"))))
        tokens = make_tokens(ids)
        assert len(set(tokens)) == len(ids) >= 5
        assert [token_holder(t).identity.user_id for t in tokens] == ids
        with state.db.transaction() as s:
            hashes = set(s.scalars(select(Credential.token_hash)))
        assert hashes == {sha256(t) for t in tokens}
