"""Reminders before a shift, over the real hub and a real SMTP server (aiosmtpd on loopback): a
helper signed up is told on the helper station and, where SMTP is set up and they gave an
address, by one e-mail in their language; none for a dropped shift, none without SMTP, and an SMTP
failure is logged without personal data while the hub goes on. Also the station's other live
parts of shifts and duty: swap offers, why a helper may not go on duty, and coordinators taking
a helper off a shift."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from babel.dates import format_date
from sqlalchemy import select

from hub.accounts.models import Role, User
from hub.db import Database
from hub.schedule.models import OpeningHours
from hub.schedule.service import Shift, shifts_between
from hub.shifts.models import ShiftSignup, SwapProposal
from hub.shifts.service import claim_due_reminders
from lektiecafe.cluster import self_signed_certificate
from tests.conftest import both_backends, free_port
from tests.hubclient import PASSWORD, Browserless, advance_clock
from tests.test_shifts import (
    Staff,
    add_user,
    other_organisation,
    signed_up,
    tagged,
    texts,
    user_id,
)

ZONE = ZoneInfo("Europe/Copenhagen")
FROM = "vagter@lektiecafe.test"
SMTP_USER, SMTP_PASSWORD = "hub", "smtp-secret"


class SmtpSink:
    """A real SMTP server on loopback that keeps what it is sent; tests wait on it."""

    def __init__(self, port: int, **smtp: Any) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.sessions_ended = 0  # QUITs: a batch the hub sent in one session is all here
        self.logins: list[str] = []
        self._changed = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=port, **smtp)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self._changed:
            self.sessions_ended += 1
            self._changed.notify_all()
        return "221 Bye"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(SMTP_USER)
        return AuthResult(success=ok)

    def wait_sessions(self, n: int, timeout: float = 10) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.sessions_ended >= n, timeout)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp_mode() -> str:
    """How the hub reaches the sink; a test parametrises it: `sink` (plain), `none` (no
    smtp_host, but the sink's port set), `closed` (a port nobody listens on), `tls-login`
    (STARTTLS and a login)."""
    return "sink"


@pytest.fixture
def sink(smtp_mode: str, tmp_path: Path) -> Iterator[SmtpSink]:
    import ssl

    smtp: dict[str, Any] = {}
    if smtp_mode == "tls-login":
        (tmp_path / "smtp").mkdir()
        cert, key = self_signed_certificate(tmp_path / "smtp")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        smtp = {"tls_context": context, "require_starttls": True, "auth_required": True}
    server = SmtpSink(free_port(), **smtp)
    if smtp:
        server.controller.SMTP_kwargs["authenticator"] = server.authenticate
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def hub_env(smtp_mode: str, sink: SmtpSink, tmp_path: Path) -> dict[str, str]:
    env = {
        "LEKTIECAFE_SMTP_HOST": "127.0.0.1",
        "LEKTIECAFE_SMTP_PORT": str(sink.port),
        "LEKTIECAFE_SMTP_FROM": FROM,
        "LEKTIECAFE_SHIFT_REMINDER_MINUTES": "60",
    }
    if smtp_mode == "none":
        env["LEKTIECAFE_SMTP_HOST"] = ""
    elif smtp_mode == "closed":
        env["LEKTIECAFE_SMTP_PORT"] = str(free_port())
    elif smtp_mode == "tls-login":
        env |= {
            "LEKTIECAFE_SMTP_STARTTLS": "1",
            "LEKTIECAFE_SMTP_USERNAME": SMTP_USER,
            "LEKTIECAFE_SMTP_PASSWORD": SMTP_PASSWORD,
            "SSL_CERT_FILE": str(tmp_path / "smtp" / "cert.pem"),
        }
    return env


@pytest.fixture
def shifts(hub: Any) -> list[Shift]:
    """Open 15-18 every day; the shifts from two days ahead (outside the drop cut-off) on."""
    with hub.db.transaction() as s:
        s.add_all(
            OpeningHours(weekday=d, opens=clock_time(15), closes=clock_time(18)) for d in range(7)
        )
    now = datetime.now(UTC)
    with hub.db.transaction() as s:
        return shifts_between(s, now + timedelta(days=2), now + timedelta(days=9), ZONE)


def give_email(helper: Staff, address: str, language: str = "da") -> None:
    page = helper.post("/shifts/email", reminder_email=address, language=language)
    assert page.status_code == 200, page.text
    assert texts(page.text, "notice")


def move_to_before(hub: Any, shift: Shift, minutes: float) -> None:
    """Move the hub's clock to `minutes` before `shift` starts (its loop then runs the
    reminders, whose last run is more than 30 s of hub time ago)."""
    until = shift.starts_at - timedelta(minutes=minutes) - datetime.now(UTC)
    advance_clock(hub.url, until.total_seconds())


def wait_in_log(hub: Any, text: str, count: int = 1, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        log = hub.log.read_text(errors="replace")
        if log.count(text) >= count:
            return log
        assert time.monotonic() < deadline, (
            f"{text!r} not {count}x in the hub's log:\n{log[-2000:]}"
        )
        time.sleep(0.05)


def test_a_helper_is_reminded_once_on_the_station_and_by_email_in_their_language(hub, sink, shifts):
    shift = shifts[0]
    one, two = Staff(hub.url, "helper1", lang="da"), Staff(hub.url, "helper2")
    give_email(one, "hjaelper1@example.dk", "da")
    give_email(two, "helper2@example.org", "en")
    for helper in (one, two):
        assert texts(helper.post("/shifts/signup", key=shift.key).text, "notice")
    station = hub.client("helper1")

    move_to_before(hub, shift, 45)
    told = station.wait_for("shift:reminder")
    assert told["shift_key"] == shift.key
    assert (told["time"], told["ends"]) == ("15:00", "18:00")
    assert 44 * 60 <= told["starts_in_s"] <= 45 * 60
    assert sink.wait_sessions(1)
    assert len(sink.messages) == 2

    [danish] = sink.to("hjaelper1@example.dk")
    assert danish["From"] == FROM
    assert danish["Subject"] == "Påmindelse: Din vagt i Lektiecafé Online starter kl. 15:00"
    day = format_date(shift.starts_at.astimezone(ZONE).date(), format="full", locale="da")
    body = danish.get_content().replace("\r\n", "\n")
    assert body.startswith("Hej Hjælper 1\n\n")
    assert f"starter kl. 15:00 {day} og slutter kl. 18:00." in body
    [english] = sink.to("helper2@example.org")
    assert english["Subject"] == "Reminder: your shift at Lektiecafé Online starts at 15:00"
    day = format_date(shift.starts_at.astimezone(ZONE).date(), format="full", locale="en")
    assert f"starts at 15:00 on {day} and ends at 18:00." in english.get_content()

    # The station shows it when it loads, too, in the page's language.
    [banner] = texts(one.get("/helper").text, "shift-reminder")
    assert re.fullmatch(r"Din vagt starter kl\. 15:00 \(om 4[45] minutter\)\.", banner)

    # Ten minutes on the window is still open: nothing again.
    advance_clock(hub.url, 600)
    station.nothing("shift:reminder")
    # A helper who signs up now is reminded at the loop's next turn, in a session of its own
    # after any repeat would have been sent.
    three = Staff(hub.url, "helper3")
    give_email(three, "helper3@example.org", "en")
    three.post("/shifts/signup", key=shift.key)
    advance_clock(hub.url, 60)
    assert sink.wait_sessions(2)
    assert sorted(m["To"] for m in sink.messages) == [
        "helper2@example.org",
        "helper3@example.org",
        "hjaelper1@example.dk",
    ]
    with hub.db.transaction() as s:
        marked = s.scalars(
            select(ShiftSignup.reminded_at).where(ShiftSignup.shift_key == shift.key)
        )
        assert all(at is not None for at in marked)


def test_no_reminder_for_a_dropped_shift(hub, sink, shifts):
    shift = shifts[0]
    one, two = Staff(hub.url, "helper1"), Staff(hub.url, "helper2")
    give_email(one, "hjaelper1@example.dk")
    give_email(two, "hjaelper2@example.dk")
    for helper in (one, two):
        helper.post("/shifts/signup", key=shift.key)
    assert texts(one.post("/shifts/drop", key=shift.key).text, "notice")
    dropped, kept = hub.client("helper1"), hub.client("helper2")

    move_to_before(hub, shift, 30)
    assert kept.wait_for("shift:reminder")["time"] == "15:00"
    dropped.nothing("shift:reminder")
    assert sink.wait_sessions(1)
    assert [m["To"] for m in sink.messages] == ["hjaelper2@example.dk"]
    assert texts(one.get("/helper").text, "shift-reminder") == [""]


@pytest.mark.parametrize("smtp_mode", ["none"])
def test_without_smtp_the_reminder_is_on_the_station_only(hub, sink, shifts):
    helper = Staff(hub.url, "helper1")
    mine = helper.get("/shifts").text
    assert texts(mine, "reminder-email") and not tagged(mine, "reminder-email-form")
    assert "sends no e-mail" in texts(mine, "reminder-email")[0]
    # An address given before (or at sign-up) is still shown, so it can be removed.
    with hub.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == "helper1"))
        assert user is not None
        user.reminder_email = "hjaelper1@example.dk"
    assert tagged(helper.get("/shifts").text, "reminder-email-form")
    helper.post("/shifts/signup", key=shifts[0].key)
    station = hub.client("helper1")

    move_to_before(hub, shifts[0], 45)
    assert station.wait_for("shift:reminder")["time"] == "15:00"
    # The hub hands e-mail to its sender only with an smtp_host, and would send it at once.
    assert not sink.wait_sessions(1, timeout=2)
    assert sink.messages == []


@pytest.mark.parametrize("smtp_mode", ["closed"])
def test_an_smtp_failure_is_logged_without_personal_data_and_the_hub_goes_on(hub, sink, shifts):
    one = Staff(hub.url, "helper1")
    give_email(one, "hjaelper1@example.dk")
    one.post("/shifts/signup", key=shifts[0].key)
    first = hub.client("helper1")

    move_to_before(hub, shifts[0], 45)
    assert first.wait_for("shift:reminder")["time"] == "15:00"
    log = wait_in_log(hub, "e-mail not sent: 1 of 1")
    assert "ConnectionRefusedError" in log
    for personal in ("hjaelper1", "example.dk", "Hjælper 1", "helper1"):
        assert personal not in log

    # The loop goes on: the next helper is reminded, and matching still answers.
    two = Staff(hub.url, "helper2")
    give_email(two, "hjaelper2@example.dk")
    two.post("/shifts/signup", key=shifts[0].key)
    second = hub.client("helper2")
    advance_clock(hub.url, 60)
    assert second.wait_for("shift:reminder")["time"] == "15:00"
    wait_in_log(hub, "e-mail not sent: 1 of 1", count=2)
    assert second.call("test-only:settle") == {"ok": True}
    assert second.ok("duty:set", {"status": "available"})["status"] == "available"


@pytest.mark.parametrize("smtp_mode", ["tls-login"])
def test_the_hub_sends_over_starttls_and_logs_in_when_told_to(hub, sink, shifts):
    helper = Staff(hub.url, "helper1")
    give_email(helper, "hjaelper1@example.dk")
    helper.post("/shifts/signup", key=shifts[0].key)
    move_to_before(hub, shifts[0], 45)
    assert sink.wait_sessions(1)
    assert [m["To"] for m in sink.messages] == ["hjaelper1@example.dk"]
    assert sink.logins == [SMTP_USER]


@both_backends
def test_each_sign_up_is_claimed_for_its_reminder_once_and_only_inside_the_window(
    database_url,
):
    db = Database(database_url)
    try:
        with db.transaction() as s:
            s.add_all(
                OpeningHours(weekday=d, opens=clock_time(15), closes=clock_time(18))
                for d in range(7)
            )
        now = datetime.now(UTC)
        with db.transaction() as s:
            started, due = shifts_between(
                s, now + timedelta(days=2), now + timedelta(days=4), ZONE
            )[:2]
            helpers = {
                u.username: u.id for u in s.scalars(select(User).where(User.role == "helper"))
            }
            helpers["pending"] = _unapproved_helper(s)
            for name, shift in (
                ("helper1", due),
                ("helper2", due),
                ("pending", due),  # not approved: never reminded
                ("helper3", started),  # the day before: started by then
            ):
                s.add(
                    ShiftSignup(
                        helper_id=helpers[name],
                        shift_key=shift.key,
                        starts_at=shift.starts_at,
                        created_at=now,
                    )
                )
        window = timedelta(minutes=60)
        with db.transaction() as s:
            assert claim_due_reminders(s, due.starts_at - timedelta(minutes=61), window, ZONE) == []
        at = due.starts_at - timedelta(minutes=59)
        with db.transaction() as s:
            claimed = claim_due_reminders(s, at, window, ZONE)
        assert [(r.helper_id, r.name, r.shift) for r in claimed] == [
            (helpers["helper1"], "Hjælper 1", due),
            (helpers["helper2"], "Hjælper 2", due),
        ]
        with db.transaction() as s:  # the next turn, or another hub process: nothing again
            assert claim_due_reminders(s, at + timedelta(minutes=1), window, ZONE) == []
            reminded = s.scalars(
                select(ShiftSignup.reminded_at).where(ShiftSignup.helper_id == helpers["helper1"])
            ).all()
        assert reminded == [at]
    finally:
        db.dispose()


def _unapproved_helper(s: Any) -> int:
    user = User(
        username="pending",
        password_hash="!",
        role=Role.HELPER.value,
        display_name="Pending",
        created_at=datetime.now(UTC),
        approved=False,
    )
    s.add(user)
    s.flush()
    return user.id


# ---------------------------------------------------------------------------------------------
# The address, and who may set it


def stored_email(hub: Any, username: str) -> tuple[str | None, str | None]:
    with hub.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        assert user is not None
        return user.reminder_email, user.reminder_language


def test_a_helper_sets_and_removes_the_reminder_address_and_nobody_else_can(hub, sink):
    helper = Staff(hub.url, "helper1")
    for bad in ("not-an-address", "a@b", "two@at@example.dk", "a@b.dk\nBcc: x@y.dk"):
        refused = helper.post("/shifts/email", reminder_email=bad, language="da")
        assert refused.status_code == 400, bad
        assert texts(refused.text, "shift-error") == [
            "Give an e-mail address like name@example.dk, or leave the field empty."
        ]
    too_long = helper.post("/shifts/email", reminder_email="a" * 250 + "@b.dk", language="da")
    assert too_long.status_code == 400
    assert "Please fill in or correct: E-mail for shift reminders." in too_long.text
    odd = helper.post("/shifts/email", reminder_email="a@b.dk", language="fr")
    assert odd.status_code == 400
    assert stored_email(hub, "helper1") == (None, None)

    page = helper.post("/shifts/email", reminder_email=" hjaelper1@example.dk ", language="en")
    assert texts(page.text, "notice") == ["Saved. We will remind you by e-mail before your shifts."]
    assert stored_email(hub, "helper1") == ("hjaelper1@example.dk", "en")
    assert 'value="hjaelper1@example.dk"' in page.text  # the form shows it, to change
    page = helper.post("/shifts/email", reminder_email="", language="en")
    assert texts(page.text, "notice") == ["Saved. You get no e-mail reminders."]
    assert stored_email(hub, "helper1") == (None, None)

    for username in ("student1", "coordinator1", "admin"):
        other = Staff(hub.url, username)
        assert other.post("/shifts/email", reminder_email="x@example.dk").status_code == 403
    anonymous = Browserless(hub.url)
    token = anonymous.csrf()
    answer = anonymous.http.post(
        hub.url + "/shifts/email",
        data={"reminder_email": "x@example.dk", "csrf_token": token},
        allow_redirects=False,
    )
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert stored_email(hub, "helper1") == (None, None)


def test_a_new_helper_may_give_an_address_when_signing_up(hub, sink):
    with hub.db.transaction() as s:
        org_id = s.scalar(select(User.organisation_id).where(User.username == "helper1"))

    def sign_up(username: str, address: str) -> requests.Response:
        visitor = Browserless(hub.url)
        page = visitor.http.get(hub.url + "/register/helper")
        assert tagged(page.text, "helper-sign-up")
        assert 'name="reminder_email"' in page.text
        return visitor.http.post(
            hub.url + "/register/helper",
            data={
                "organisation_id": str(org_id),
                "username": username,
                "display_name": "Ny Frivillig",
                "password": PASSWORD,
                "reminder_email": address,
                "csrf_token": visitor.csrf("/register/helper"),
            },
            allow_redirects=False,
        )

    refused = sign_up("frivillig", "ny@frivillig")
    assert refused.status_code == 400
    assert texts(refused.text, "register-error") == [
        "Skriv en e-mailadresse som navn@eksempel.dk, eller lad feltet være tomt."
    ]
    with hub.db.transaction() as s:
        assert s.scalar(select(User).where(User.username == "frivillig")) is None
    assert sign_up("frivillig", "ny@frivillig.dk").status_code == 302
    assert stored_email(hub, "frivillig") == ("ny@frivillig.dk", "da")  # the page's language
    assert sign_up("uden-mail", "").status_code == 302
    assert stored_email(hub, "uden-mail") == (None, None)


# ---------------------------------------------------------------------------------------------
# The station's other live parts, and coordinators taking a helper off a shift


def test_a_swap_offer_reaches_the_other_helper_live(hub, sink, shifts):
    one, two = Staff(hub.url, "helper1"), Staff(hub.url, "helper2")
    mine, theirs = shifts[0], shifts[1]
    one.post("/shifts/signup", key=mine.key)
    two.post("/shifts/signup", key=theirs.key)
    station, bystander = hub.client("helper2"), hub.client("helper3")

    page = one.post(
        "/shifts/swaps", key=mine.key, to_helper_id=user_id(hub, "helper2"), wanted_key=theirs.key
    )
    assert texts(page.text, "notice")
    told = station.wait_for("shift:swap")
    [(offer, _text)] = tagged(two.get("/shifts").text, "swap-offer")
    assert told == {
        "swap_id": int(offer["data-swap"]),
        "from": "Hjælper 1",
        "offered": {"starts_at": mine.starts_at.isoformat(), "ends_at": mine.ends_at.isoformat()},
        "wanted": {
            "starts_at": theirs.starts_at.isoformat(),
            "ends_at": theirs.ends_at.isoformat(),
        },
    }
    # A refused offer tells nobody.
    again = one.post("/shifts/swaps", key=mine.key, to_helper_id=user_id(hub, "helper2"))
    assert again.status_code == 409
    station.nothing("shift:swap")
    bystander.nothing("shift:swap")


def test_a_coordinator_takes_a_helper_of_their_organisation_off_a_shift(hub, sink, shifts):
    shift = shifts[0]
    outsider = add_user(
        hub, "outsider", Role.HELPER, approved=True, organisation_id=other_organisation(hub)
    )
    one = Staff(hub.url, "helper1")
    one.post("/shifts/signup", key=shift.key)
    Staff(hub.url, "helper2").post("/shifts/signup", key=shift.key)
    one.post("/shifts/swaps", key=shift.key, to_helper_id=user_id(hub, "helper3"))
    coordinator, admin = Staff(hub.url, "coordinator1"), Staff(hub.url, "admin")
    coordinator.post("/shifts/assign", key=shift.key, helper_id=user_id(hub, "helper3"))
    admin.post("/shifts/assign", key=shift.key, helper_id=outsider)
    assert signed_up(hub, shift.key) == {"helper1", "helper2", "helper3", "outsider"}

    page = coordinator.get("/shifts/coverage").text
    section = page.split(f'data-key="{shift.key}"', 1)[1].split('data-testid="coverage-shift"')[0]
    buttons = {int(attrs["data-helper"]) for attrs, _t in tagged(section, "unassign")}
    assert buttons == {user_id(hub, f"helper{i}") for i in (1, 2, 3)}  # not the outsider

    page = coordinator.post("/shifts/unassign", key=shift.key, helper_id=user_id(hub, "helper3"))
    assert texts(page.text, "notice") == ["The helper is off the shift."]
    assert signed_up(hub, shift.key) == {"helper1", "helper2", "outsider"}
    again = coordinator.post("/shifts/unassign", key=shift.key, helper_id=user_id(hub, "helper3"))
    assert again.status_code == 404
    assert texts(again.text, "shift-error") == ["Hjælper 3 does not work this shift."]
    refused = coordinator.post("/shifts/unassign", key=shift.key, helper_id=outsider)
    assert refused.status_code == 403
    assert texts(refused.text, "shift-error") == [
        "You can take helpers of your own organisation off a shift only."
    ]
    assert coordinator.post("/shifts/unassign", key=shift.key, helper_id="x").status_code == 400
    for username in ("helper1", "student1", "staff1"):
        other = Staff(hub.url, username)
        answer = other.post("/shifts/unassign", key=shift.key, helper_id=user_id(hub, "helper2"))
        assert answer.status_code == 403, username
    assert signed_up(hub, shift.key) == {"helper1", "helper2", "outsider"}
    assert admin.post("/shifts/unassign", key=shift.key, helper_id=outsider).status_code == 200

    # Also within the cut-off (the coordinator is whom a helper who cannot come asks); the
    # helper's pending swap of the shift goes with the sign-up. Not once the shift has started.
    advance_clock(
        hub.url, (shift.starts_at - timedelta(hours=2) - datetime.now(UTC)).total_seconds()
    )
    page = coordinator.post("/shifts/unassign", key=shift.key, helper_id=user_id(hub, "helper1"))
    assert texts(page.text, "notice") == ["The helper is off the shift."]
    with hub.db.transaction() as s:
        assert [w.status for w in s.scalars(select(SwapProposal))] == ["withdrawn"]
    advance_clock(hub.url, 3 * 3600)
    late = coordinator.post("/shifts/unassign", key=shift.key, helper_id=user_id(hub, "helper2"))
    assert late.status_code == 409
    assert texts(late.text, "shift-error") == ["This shift has already started."]
    assert signed_up(hub, shift.key) == {"helper2"}


def test_the_station_is_told_why_a_helper_may_not_go_on_duty(hub, sink):
    add_user(hub, "newhelper", Role.HELPER, approved=False)
    with hub.db.transaction() as s:
        expired = s.scalar(select(User).where(User.username == "helper2"))
        assert expired is not None
        expired.certificate_expires_on = datetime.now(UTC).date() - timedelta(days=1)
    for username, refusal in (
        ("helper1", None),
        ("newhelper", "not_approved"),
        ("helper2", "certificate_expired"),
    ):
        told = hub.client(username).wait_for("duty:status")
        assert (told["status"], told["refusal"]) == ("off", refusal), username
        [(toggle, _t)] = tagged(Staff(hub.url, username).get("/helper").text, "duty-toggle")
        assert ("disabled" in toggle) == (refusal is not None), username
        [(status, _t)] = tagged(Staff(hub.url, username).get("/helper").text, "duty-status")
        assert status["data-refusal"] == (refusal or "")
