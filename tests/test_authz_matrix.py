"""The authorisation matrix: every HTTP route the app registers, and every socket event, tried as
each kind of caller; only the roles the table names get past the door, the others are refused
(401/403, or for a visitor without credentials a redirect to the login page) and change nothing.
A route or event without an entry in the table fails the test, so a new one cannot slip by.

The pages the allowed roles get are checked too: a strict Content-Security-Policy, no inline
script, no frame embedding."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy import inspect, select, text

from hub import create_app
from hub.accounts.models import Organisation, User
from hub.config import HubConfig
from tests.hubclient import Browserless
from tests.kiosks import pair, paired_kiosk
from tests.test_access import EVENTS

ANON, STUDENT, VISIT, HELPER = "anonymous", "student", "kiosk_visit", "helper"
COORD, STAFF, ADMIN, DEVICE = "coordinator", "site_staff", "admin", "device"
ROLES = (ANON, STUDENT, VISIT, HELPER, COORD, STAFF, ADMIN, DEVICE)
PEOPLE = {STUDENT, HELPER, COORD, STAFF, ADMIN}
WORKERS = {COORD, STAFF, ADMIN}

# What is not decided by the caller's role; the matrix checks only that it never fails.
PUBLIC = "public"  # anyone, with or without an account (login, registration, health, ...)
# Endpoints the matrix does not call, and why (each has its own tests).
NOT_CALLED = {
    "test_clock.advance_clock": "moves the test hub's clock (404 unless LEKTIECAFE_TEST_CLOCK)",
    "room_doc.room_doc": "a WebSocket; the room ticket decides (tests/test_rooms.py)",
    "shifts.feed": "a secret address, no role; a wrong secret is 404 (tested below)",
    "operations.metrics_page": "by address or metrics token, not by role (test_operations.py)",
}

# endpoint -> the roles allowed, or PUBLIC. Kiosk visits ("kiosk_visit": the token a kiosk gets
# for its visit's student) may only upload and show the visit's photo; the device token serves
# the kiosk's own unpairing only; everything else a kiosk does goes over its socket.
ALLOWED: dict[str, set[str] | str] = {
    "accounts.index": PUBLIC,
    "accounts.login": PUBLIC,
    "accounts.logout": PUBLIC,
    "accounts.register": PUBLIC,
    "accounts.register_helper": PUBLIC,
    "accounts.privacy": PUBLIC,
    "accounts.set_language": PUBLIC,
    "accounts.api_token": PUBLIC,
    # Revokes the bearer token it carries: a cookie, a device token, nothing are refused.
    "accounts.revoke_token": {VISIT},
    "accounts.api_me": {STUDENT, VISIT, HELPER, COORD, STAFF, ADMIN},
    "accounts.welcome": {HELPER},
    "accounts.my_data": {STUDENT},
    "accounts.my_data_json": {STUDENT},
    "accounts.delete_me": {STUDENT},
    "admin.index": WORKERS,
    "admin.catalog": {ADMIN},
    "admin.add_language": {ADMIN},
    "admin.set_language_active": {ADMIN},
    "admin.add_subject": {ADMIN},
    "admin.set_subject_active": {ADMIN},
    "admin.rename_subject": {ADMIN},
    "admin.organisations": {ADMIN},
    "admin.create_organisation": {ADMIN},
    "admin.set_organisation_approved": {ADMIN},
    "admin.set_organisation_profile": {ADMIN, COORD},
    "admin.sites": {ADMIN},
    "admin.create_site": {ADMIN},
    "admin.set_site_contact": {ADMIN},
    "admin.regenerate_invite_code": {ADMIN, STAFF},
    "admin.users": {ADMIN},
    "admin.create_user": {ADMIN, COORD},
    "admin.set_active": {ADMIN, COORD},
    "admin.set_approved": {ADMIN, COORD},
    "admin.unlock_login": {ADMIN, COORD},
    "attachments.upload": {STUDENT, VISIT},
    "attachments.download": {STUDENT, VISIT, HELPER, ADMIN},
    "audit.log": {ADMIN},
    "catalog.api_catalog": PUBLIC,
    "api.openapi": PUBLIC,
    "devices.page": {ADMIN, STAFF},
    "devices.confirm": {ADMIN, STAFF},
    "devices.deny": {ADMIN, STAFF},
    "devices.rename": {ADMIN, STAFF},
    "devices.command": {ADMIN, STAFF},
    "devices.revoke": {ADMIN, STAFF},
    "devices.device_settings": {ADMIN, STAFF},
    "devices.site_settings": {ADMIN, STAFF},
    "devices.pair": PUBLIC,
    "devices.poll": PUBLIC,
    "devices.unpair": {DEVICE},
    "helpdesk.new": PUBLIC,
    "helpdesk.follow": PUBLIC,
    "helpdesk.mine": PEOPLE,
    "helpdesk.desk": WORKERS,
    "helpdesk.ticket": PEOPLE,
    "helpdesk.reply": PEOPLE,
    "helpdesk.status": WORKERS,
    "helpdesk.assign": WORKERS,
    "helper.station": {HELPER},
    "helper.save_profile": {HELPER},
    "student.ask": {STUDENT},
    "operations.healthz": PUBLIC,
    "operations.readyz": PUBLIC,
    "operations.metrics_page": PUBLIC,
    "reports.reports": {ADMIN, COORD},
    "reports.report": {ADMIN, COORD},
    "reports.close": {ADMIN, COORD},
    "room_doc.room_doc": PUBLIC,
    "schedule.page": {ADMIN},
    "schedule.add_closed_day": {ADMIN},
    "schedule.remove_closed_day": {ADMIN},
    "schedule.set_hours": {ADMIN},
    "schedule.status": PUBLIC,
    "shifts.mine": {HELPER},
    "shifts.sign_up": {HELPER},
    "shifts.drop": {HELPER},
    "shifts.set_reminder_email": {HELPER},
    "shifts.renew_feed": {HELPER},
    "shifts.propose_swap": {HELPER},
    "shifts.answer_swap": {HELPER},
    "shifts.withdraw_swap": {HELPER},
    "shifts.assign": {ADMIN, COORD},
    "shifts.unassign": {ADMIN, COORD},
    "shifts.coverage": {ADMIN, COORD},
    "shifts.feed": PUBLIC,
    "stats.dashboard": {ADMIN, STAFF},
    "stats.export": {ADMIN, STAFF},
    "static": PUBLIC,
    "test_clock.advance_clock": PUBLIC,
}
# Allowed roles whose call the matrix does not make, since it would do the thing for real.
NOT_CALLED_WHEN_ALLOWED = {
    "devices.revoke",
    "devices.unpair",
    "accounts.logout",
    "accounts.revoke_token",
}

# What a refused POST carries: fields that would change something if it got through.
TEMPTING_FORM = {
    "active": "0",
    "approved": "1",
    "name": "Matrix",
    "name_da": "Matrix",
    "name_en": "Matrix",
    "key": "matrix",
    "code": "mx",
    "contact": "matrix@example.org",
    "offers": "matrix",
    "kind": "school",
    "username": "matrixuser",
    "display_name": "Matrix",
    "role": "admin",
    "password": "matrix-password-1",
    "organisation_id": "1",
    "text": "matrix",
    "status": "closed",
    "confirm": "yes",
    "day": "2031-12-24",
    "reason": "matrix",
    "grade_min": "8",
    "grade_max": "9",
    "reminder_email": "matrix@example.org",
    "helper_id": "1",
    "to_helper_id": "1",
    "accept": "true",
    "notice": "matrix",
}


@dataclass
class Caller:
    """One kind of caller over HTTP: a cookie session with its CSRF token, or a bearer token."""

    role: str
    http: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""
    bearer: str = ""

    def send(self, base: str, method: str, path: str, form: dict[str, str]) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.bearer}"} if self.bearer else {}
        data = {**form, **({"csrf_token": self.csrf} if self.csrf else {})}
        return self.http.request(
            method,
            base + path,
            data=data if method != "GET" else None,
            headers=headers,
            allow_redirects=False,
            timeout=15,
        )


def app_rules(tmp_path: Path) -> list[tuple[str, str, set[str]]]:
    """(endpoint, rule, methods) of every route in the app's own url_map."""
    config = HubConfig(
        data_dir=tmp_path / "rules",
        secret_key="list-rules",
        database_url=f"sqlite:///{tmp_path}/rules.db",
    )
    app = create_app(config)
    return [
        (rule.endpoint, rule.rule, set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        for rule in app.url_map.iter_rules()
    ]


def test_every_route_has_an_entry_in_the_table(tmp_path):
    """A new route must be added to ALLOWED, so its refusals are tested too."""
    endpoints = {endpoint for endpoint, _rule, _methods in app_rules(tmp_path)}
    assert endpoints - set(ALLOWED) == set(), "routes without an entry in ALLOWED"
    assert set(ALLOWED) - endpoints == set(), "entries in ALLOWED for routes that are gone"
    assert set(NOT_CALLED) <= set(ALLOWED)


def _logged_in(hub: Any, role: str, username: str) -> Caller:
    web = Browserless(hub.url)
    assert web.login(username).status_code == 302
    return Caller(role, web.http, web.csrf("/login"))


def _anonymous(hub: Any) -> Caller:
    web = Browserless(hub.url)
    return Caller(ANON, web.http, web.csrf("/login"))


# Tables whose rows change without anyone asking: presence, the matching loop's state.
VOLATILE_TABLES = {"connections", "hub_instances", "alembic_version"}
VOLATILE_COLUMNS = {"last_seen_at", "heartbeat_at", "last_polled_at"}


def fingerprint(hub: Any) -> dict[str, str]:
    """A digest of every table's rows (less what changes by itself)."""
    digests = {}
    with hub.db.engine.connect() as conn:
        inspector = inspect(conn)
        for table in sorted(inspector.get_table_names()):
            if table in VOLATILE_TABLES:
                continue
            columns = [
                c["name"] for c in inspector.get_columns(table) if c["name"] not in VOLATILE_COLUMNS
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            rows = conn.execute(text(f'SELECT {quoted} FROM "{table}"')).all()
            digests[table] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return digests


def _path_values(hub: Any, ids: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": ids["device_id"],
        "site_id": ids["site_id"],
        "organisation_id": ids["organisation_id"],
        "user_id": ids["user_id"],
        "report_id": ids.get("report_id", 1),
        "ticket_id": ids["ticket_id"],
        "swap_id": 1,  # the demo has no swaps; the role check comes first
        "subject_id": 1,
        "attachment_id": ids["attachment_id"],
        "code": "ar",
        "day": "2031-12-24",
        "room_id": "r",
        "token": "not-the-secret",
        "filename": "css/app.css",
    }


def _fill(rule: str, values: dict[str, Any]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def _refused(role: str, answer: requests.Response) -> bool:
    if answer.status_code in (401, 403):
        return True
    # Without credentials the hub sees nobody, and sends a browser to the login page.
    location = answer.headers.get("Location", "")
    return role in (ANON, DEVICE) and answer.status_code == 302 and location.startswith("/login")


def test_every_route_admits_only_the_roles_the_table_names(hub, tmp_path):
    kiosk_pairing = pair(hub, name="Matrix kiosk")
    visit_kiosk = paired_kiosk(hub, name="Visit kiosk")
    visit = visit_kiosk.ok("visit:start", {"nickname": "Ali", "grade": 9})
    photo = requests.post(
        hub.url + "/api/attachments",
        files={"file": ("a.png", _png(), "image/png")},
        headers={"Authorization": f"Bearer {visit['visit_token']}"},
        timeout=10,
    )
    assert photo.status_code == 201, photo.text
    ticket = visit_kiosk.ok("helpdesk:ticket", {"problem": "other", "ref": "matrix-1"})
    with hub.db.transaction() as s:
        ids = {
            "device_id": kiosk_pairing["device_id"],
            "site_id": kiosk_pairing["site"]["id"],
            "organisation_id": s.scalar(select(Organisation.id)),
            "user_id": s.scalar(select(User.id).where(User.username == "student2")),
            "ticket_id": ticket["ticket_id"],
            "attachment_id": photo.json()["attachment_id"],
        }
    callers = [
        _anonymous(hub),
        _logged_in(hub, STUDENT, "student1"),
        Caller(VISIT, bearer=visit["visit_token"]),
        _logged_in(hub, HELPER, "helper1"),
        _logged_in(hub, COORD, "coordinator1"),
        _logged_in(hub, STAFF, "staff1"),
        _logged_in(hub, ADMIN, "admin"),
        Caller(DEVICE, bearer=kiosk_pairing["device_token"]),
    ]
    assert [c.role for c in callers] == list(ROLES)
    values = _path_values(hub, ids)
    rules = [
        (endpoint, _fill(rule, values), methods)
        for endpoint, rule, methods in app_rules(tmp_path)
        if endpoint not in NOT_CALLED
    ]

    # First every refusal, with the database watched: nothing may change. Each caller in a
    # thread of its own (they share nothing), so the hub's answers overlap.
    def refusals(caller: Caller) -> list[tuple[str, str, str, int]]:
        wrong = []
        for endpoint, path, methods in rules:
            allowed = ALLOWED[endpoint]
            if allowed == PUBLIC or caller.role in allowed:
                continue
            for method in sorted(methods):
                form = TEMPTING_FORM if method != "GET" else {}
                answer = caller.send(hub.url, method, path, form)
                if not _refused(caller.role, answer):
                    wrong.append((caller.role, method, path, answer.status_code))
                check_page(path, answer)
        return wrong

    def admissions(caller: Caller) -> tuple[list[tuple[str, str, str, int]], int]:
        """Past the door (whatever the empty form then earns), and every page the caller gets
        carries the security headers and no inline script."""
        wrong, pages = [], 0
        for endpoint, path, methods in rules:
            allowed = ALLOWED[endpoint]
            if endpoint in NOT_CALLED_WHEN_ALLOWED:
                continue
            if allowed != PUBLIC and caller.role not in allowed:
                continue
            for method in sorted(methods):
                if allowed == PUBLIC and method != "GET":
                    continue
                answer = caller.send(hub.url, method, path, {})
                if answer.status_code >= 500 or (
                    allowed != PUBLIC and _refused(caller.role, answer)
                ):
                    wrong.append((caller.role, method, path, answer.status_code))
                pages += check_page(path, answer)
        return wrong, pages

    before = fingerprint(hub)
    with ThreadPoolExecutor(len(callers)) as pool:
        wrongly_admitted = [w for found in pool.map(refusals, callers) for w in found]
    assert wrongly_admitted == []
    after = fingerprint(hub)
    assert {t for t in before if before[t] != after.get(t)} == set()

    with ThreadPoolExecutor(len(callers)) as pool:
        admitted = list(pool.map(admissions, callers))
    assert [w for found, _pages in admitted for w in found] == []
    assert sum(pages for _found, pages in admitted) >= 30
    visit_kiosk.close()


CSP_REQUIRED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
}
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def check_page(path: str, answer: requests.Response) -> int:
    """Assert the security headers on every answer, and no inline script in an HTML page; 1 for
    an HTML page, else 0."""
    header = answer.headers.get("Content-Security-Policy", "")
    policy = {}
    for part in filter(None, (p.strip() for p in header.split(";"))):
        name, _sep, value = part.partition(" ")
        policy[name] = value
    for directive, value in CSP_REQUIRED.items():
        assert policy.get(directive) == value, (path, directive, policy)
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header, path
    assert answer.headers.get("X-Content-Type-Options") == "nosniff", path
    assert answer.headers.get("X-Frame-Options") == "DENY", path
    if not answer.headers.get("Content-Type", "").startswith("text/html"):
        return 0
    for attributes in SCRIPT_TAG.findall(answer.text):
        # Data blocks (type="application/json") are not run; every script comes from a file.
        assert "src=" in attributes or 'type="application/json"' in attributes, (path, attributes)
    assert not INLINE_HANDLER.search(answer.text), (path, INLINE_HANDLER.search(answer.text))
    assert "javascript:" not in answer.text.lower(), path
    return 1


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Socket events


def test_every_socket_event_admits_only_its_roles_for_every_kind_of_caller(hub):
    """tests/test_access.py's EVENTS, for all eight callers: a kiosk's connection is the device,
    and while a visit is under way on it the visit's student too; a visitor cannot connect."""
    sockets = {
        STUDENT: hub.client("student1"),
        HELPER: hub.client("helper1"),
        COORD: hub.client("coordinator1"),
        STAFF: hub.client("staff1"),
        ADMIN: hub.client("admin"),
        DEVICE: paired_kiosk(hub, name="Device"),
    }
    visit_kiosk = paired_kiosk(hub, name="Visit")
    visit_kiosk.ok("visit:start", {"nickname": "Ali", "grade": 9})
    sockets[VISIT] = visit_kiosk
    for auth in (None, {}, {"token": "forged"}, {"device_token": "forged"}):
        visitor = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            visitor.connect(hub.url, auth=auth, transports=["websocket"], wait_timeout=5)

    for event, (roles, payload) in EVENTS.items():
        allowed = {r for r in roles if r != "kiosk"} | (
            {DEVICE, VISIT} if "kiosk" in roles else set()
        )
        if "student" in roles:
            allowed.add(VISIT)
        for role, client in sockets.items():
            if event == "visit:end" and role == VISIT:
                continue  # would end the visit the rest of the loop acts as
            answer = client.call(event, payload)
            refused = answer.get("error", {}).get("code") == "forbidden"
            assert refused == (role not in allowed), (event, role, answer)


# ---------------------------------------------------------------------------------------------
# Security headers beyond the matrix's pages


@pytest.fixture
def app(tmp_path):
    config = HubConfig(data_dir=tmp_path / "app", database_url=f"sqlite:///{tmp_path}/app.db")
    return create_app(config)


@pytest.mark.parametrize(
    ("peer", "headers", "hsts"),
    [
        ("127.0.0.1", {}, False),  # plain HTTP on loopback (the test hub, a health check)
        ("127.0.0.1", {"X-Forwarded-Proto": "https"}, True),  # nginx on the same machine
        ("127.0.0.1", {"X-Forwarded-Proto": "http"}, False),
        ("203.0.113.9", {"X-Forwarded-Proto": "https"}, False),  # anyone else may claim it
    ],
)
def test_hsts_only_over_tls_or_behind_a_trusted_proxy_that_says_so(app, peer, headers, hsts):
    answer = app.test_client().get("/login", headers=headers, environ_base={"REMOTE_ADDR": peer})
    assert answer.status_code == 200
    assert answer.headers.get("Strict-Transport-Security") == ("max-age=63072000" if hsts else None)


def test_hsts_when_the_hub_itself_is_reached_over_https(app):
    answer = app.test_client().get("/healthz", base_url="https://localhost")
    assert answer.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_error_pages_and_json_answers_carry_the_headers_too(app):
    client = app.test_client()
    for path in ("/no-such-page", "/api/me", "/api/no-such-thing", "/static/css/app.css"):
        check_page(path, _as_requests(client.get(path)))


def _as_requests(answer: Any) -> requests.Response:
    converted = requests.Response()
    converted.status_code = answer.status_code
    converted.headers.update(answer.headers)
    converted._content = answer.get_data()
    return converted


TEMPLATES = Path(__file__).parent.parent / "hub" / "templates"


def test_no_template_has_inline_script_or_event_handlers():
    """What the strict CSP would block anyway, found before a browser does: every script is a
    file (or a JSON data block), no on*= attribute, no javascript: address."""
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        source = template.read_text()
        for attributes in SCRIPT_TAG.findall(source):
            if "src=" not in attributes and 'type="application/json"' not in attributes:
                found.append((template.name, f"<script{attributes}>"))
        found += [(template.name, m.group(0)) for m in INLINE_HANDLER.finditer(source)]
        if "javascript:" in source.lower():
            found.append((template.name, "javascript:"))
    assert found == []
    assert len(list(TEMPLATES.rglob("*.html"))) >= 20
