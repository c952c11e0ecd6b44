"""Partner organisations and helper vetting, the way admins, coordinators and helpers use them:
an organisation's profile is screened before new helpers see it; a helper signs up with one and
goes on duty only once its coordinator has recorded the certificate check and the introduction;
a check runs out after two years, with a warning 30 days ahead."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from alembic import command
from sqlalchemy import select, text

from hub import clock
from hub.accounts.models import Organisation, Role, User
from hub.accounts.service import hash_password
from hub.config import HubConfig
from hub.db import Database
from hub.matching.models import HelperDuty
from hub.migrate import alembic_config
from tests.conftest import PG_ADMIN
from tests.hubclient import PASSWORD, Browserless, advance_clock
from tests.test_admin import Staff, alerts, db_one, ids, row, texts

VALID_DAYS = HubConfig().certificate_valid_days


def sign_up(hub: Any, organisation_id: int, username: str) -> requests.Response:
    visitor = Browserless(hub.url, lang="en")
    token = visitor.csrf("/register/helper")
    return visitor.http.post(
        hub.url + "/register/helper",
        data={
            "organisation_id": str(organisation_id),
            "username": username,
            "display_name": "Ny Frivillig",
            "password": PASSWORD,
            "csrf_token": token,
        },
        allow_redirects=False,
    )


def sign_up_choices(hub: Any) -> list[str]:
    page = requests.get(hub.url + "/register/helper", headers={"Accept-Language": "en"})
    return texts(page.text, "sign-up-organisation")


def add_user(hub: Any, username: str, role: Role, organisation_id: int | None) -> None:
    with hub.db.transaction() as s:
        s.add(
            User(
                username=username,
                display_name=username,
                role=role.value,
                organisation_id=organisation_id,
                password_hash=hash_password(PASSWORD),
                created_at=clock.now(),
            )
        )


def duty(hub: Any, username: str) -> dict[str, Any]:
    return hub.client(username).call("duty:set", {"status": "available"})


def approve(
    coordinator: Staff, helper_id: int, checked_on: date, introduction: bool = True
) -> requests.Response:
    form = {"approved": "1", "certificate_checked_on": checked_on.isoformat()}
    if introduction:
        form["introduction_done"] = "1"
    return coordinator.post(f"/admin/users/{helper_id}/approval", **form)


def advance_days(hub: Any, days: int) -> None:
    """The hub's clock moves on at most a year per step."""
    while days > 0:
        step = min(days, 365)
        advance_clock(hub.url, step * 24 * 3600)
        days -= step


def page_today(page: str, helper_id: int) -> date:
    """The hub's today, as its approval form proposes it (the hub's clock may have moved on)."""
    field = re.search(rf'id="user-{helper_id}-certificate_checked_on"[^>]*value="([^"]+)"', page)
    assert field, "no certificate date field"
    return date.fromisoformat(field[1])


# ---------------------------------------------------------------------------------------------
# Organisations


def test_an_organisation_is_visible_to_new_helpers_only_once_an_admin_approves_its_profile(hub):
    admin = Staff(hub.url, "admin")
    page = admin.post(
        "/admin/organisations",
        name="Ungdommens Røde Kors",
        contact="Sara Holm, 12345678",
        offers="Lektiehjælp i matematik og dansk",
    )
    org = row(page.text, "organisation", name="Ungdommens Røde Kors")
    assert (org["approved"], org["offers"]) == ("No", "Lektiehjælp i matematik og dansk")
    org_id = ids(hub, Organisation, name="Ungdommens Røde Kors")
    assert not any("Ungdommens Røde Kors" in c for c in sign_up_choices(hub))
    refused = sign_up(hub, org_id, "tidlig")
    assert refused.status_code == 400
    assert "Choose one of the organisations in the list." in refused.text

    page = admin.post(f"/admin/organisations/{org_id}/approval", approved="1")
    assert row(page.text, "organisation", name="Ungdommens Røde Kors")["approved"] == "Yes"
    [choice] = [c for c in sign_up_choices(hub) if "Ungdommens Røde Kors" in c]
    assert "Lektiehjælp i matematik og dansk" in choice and "Sara Holm, 12345678" in choice

    # The organisation's coordinator edits the profile: it is screened again, hidden meanwhile.
    add_user(hub, "urk-koordinator", Role.COORDINATOR, org_id)
    coordinator = Staff(hub.url, "urk-koordinator")
    page = coordinator.post(
        f"/admin/organisations/{org_id}/profile", contact="Ali Jensen", offers="Alle fag"
    )
    assert texts(page.text, "organisation-contact") == ["Ali Jensen"]
    assert "Waiting for an administrator" in texts(page.text, "organisation-status")[0]
    assert not any("Ungdommens Røde Kors" in c for c in sign_up_choices(hub))
    admin.post(f"/admin/organisations/{org_id}/approval", approved="1")
    assert any("Ali Jensen" in c for c in sign_up_choices(hub))

    # An admin's own edit stays approved; a profile without a contact person is not approved.
    page = admin.post(f"/admin/organisations/{org_id}/profile", contact="", offers="Alle fag")
    assert row(page.text, "organisation", name="Ungdommens Røde Kors")["approved"] == "Yes"
    admin.post(f"/admin/organisations/{org_id}/approval", approved="0")
    page = admin.post(f"/admin/organisations/{org_id}/approval", approved="1")
    assert page.status_code == 400
    assert alerts(page.text) == ["Name the organisation's contact person before approving it."]


def test_only_admins_approve_organisations_and_coordinators_edit_only_their_own(hub):
    demo = ids(hub, Organisation, name="Demo-frivillige")
    with hub.db.transaction() as s:
        other = Organisation(name="Anden forening", contact="x", approved=False)
        s.add(other)
        s.flush()
        other_id = other.id
    for username in ("coordinator1", "staff1", "helper1", "student1"):
        someone = Staff(hub.url, username)
        answer = someone.post_raw(f"/admin/organisations/{other_id}/approval", approved="1")
        assert answer.status_code == 403, username
    for username in ("staff1", "helper1", "student1"):
        answer = Staff(hub.url, username).post_raw(
            f"/admin/organisations/{demo}/profile", contact="x", offers="y"
        )
        assert answer.status_code == 403, username
    coordinator = Staff(hub.url, "coordinator1")
    answer = coordinator.post_raw(f"/admin/organisations/{other_id}/profile", contact="mig")
    assert answer.status_code == 404
    assert db_one(hub, Organisation, id=other_id).approved is False
    assert db_one(hub, Organisation, id=other_id).contact == "x"
    assert db_one(hub, Organisation, id=demo).contact == "frivillig@example.org"


# ---------------------------------------------------------------------------------------------
# Helpers


def test_a_helper_signs_up_and_goes_on_duty_once_the_certificate_and_introduction_are_done(hub):
    demo = ids(hub, Organisation, name="Demo-frivillige")
    signed_up = sign_up(hub, demo, "frivillig")
    assert signed_up.status_code == 302 and signed_up.headers["Location"].endswith("/welcome")
    helper = Staff(hub.url, "frivillig")
    welcome = helper.get("/welcome").text
    assert texts(welcome, "welcome-contact-person") == ["frivillig@example.org"]
    assert "No private contact" in texts(welcome, "welcome-rules")[0]
    assert "112" in texts(welcome, "welcome-rules")[0]
    assert "On duty" in texts(welcome, "welcome-station")[0]
    assert texts(welcome, "welcome-not-approved") == [
        "A coordinator must approve you before you can go on duty."
    ]
    assert texts(helper.get("/helper").text, "welcome-link")
    refused = duty(hub, "frivillig")
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"

    coordinator = Staff(hub.url, "coordinator1")
    page = coordinator.get("/admin").text
    helper_id = ids(hub, User, username="frivillig")
    assert row(page, "user", username="frivillig")["may-help"] == "No"
    today = page_today(page, helper_id)
    for checked_on, introduction, error in [
        (today, False, "Give the helper the introduction before approving them."),
        (
            today + timedelta(days=1),
            True,
            "Give the date you checked the child-protection certificate (not in the future).",
        ),
        (
            today - timedelta(days=VALID_DAYS),
            True,
            "A check on that date has already expired. Check the certificate again.",
        ),
    ]:
        answer = approve(coordinator, helper_id, checked_on, introduction)
        assert answer.status_code == 400 and alerts(answer.text) == [error]
    assert duty(hub, "frivillig")["ok"] is False

    page = approve(coordinator, helper_id, today - timedelta(days=10)).text
    shown = row(page, "user", username="frivillig")
    assert (shown["approved"], shown["may-help"]) == ("Yes", "Yes")
    assert shown["checked-on"] == (today - timedelta(days=10)).isoformat()
    assert shown["expires-on"] == (today - timedelta(days=10 - VALID_DAYS)).isoformat()
    stored = db_one(hub, User, username="frivillig")
    assert stored.introduction_done is True
    assert duty(hub, "frivillig")["ok"] is True

    # Once approved, the welcome page is shown: at login and on the station, until read.
    assert texts(helper.get("/helper").text, "welcome-due")
    login = Browserless(hub.url, lang="en").login("frivillig")
    assert login.headers["Location"].endswith("/welcome")
    assert texts(helper.get("/welcome").text, "welcome-approved")
    assert texts(helper.get("/helper").text, "welcome-due") == []
    login = Browserless(hub.url, lang="en").login("frivillig")
    assert login.headers["Location"].endswith("/helper")


def test_an_expired_check_takes_the_helper_off_duty_and_refuses_duty_until_checked_again(hub):
    helper = hub.client("helper1")
    helper.ok("duty:set", {"status": "available"})
    expires_on = db_one(hub, User, username="helper1").certificate_expires_on
    days_left = (expires_on - clock.now().date()).days
    advance_days(hub, days_left + 1)

    told = helper.wait_for("duty:status", where=lambda m: "message" in m)
    assert told["status"] == "off"
    # The loop speaks the hub's default language, Danish.
    assert "børneattest er udløbet" in told["message"]
    helper_id = ids(hub, User, username="helper1")
    assert db_one(hub, HelperDuty, helper_id=helper_id).status == "off"
    refused = helper.call("duty:set", {"status": "available"})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    assert "børneattest er udløbet" in refused["error"]["message"]  # the socket speaks Danish
    assert helper.call("duty:set", {"status": "off"})["ok"] is True  # going off is always fine

    station = Staff(hub.url, "helper1").get("/helper").text
    assert "certificate check has expired" in texts(station, "certificate-expired")[0]
    coordinator = Staff(hub.url, "coordinator1")
    page = coordinator.get("/admin").text
    assert any("Hjælper 1" in t for t in texts(page, "certificate-due"))
    assert row(page, "user", username="helper1")["may-help"] == "No"

    approve(coordinator, helper_id, page_today(page, helper_id))
    assert helper.call("duty:set", {"status": "available"})["ok"] is True


def test_helper_and_coordinator_are_warned_30_days_before_a_check_runs_out(hub):
    # The demo's last helper's check runs out in 29 days; helper1's in well over a year.
    station = Staff(hub.url, "helper3").get("/helper").text
    [warning] = texts(station, "certificate-expiring")
    assert "Ask your coordinator to check it again" in warning
    assert texts(Staff(hub.url, "helper1").get("/helper").text, "certificate-expiring") == []
    page = Staff(hub.url, "coordinator1").get("/admin").text
    assert [t.split(" (")[0] for t in texts(page, "certificate-due")] == ["Hjælper 3"]
    assert duty(hub, "helper3")["ok"] is True  # warned, not yet refused

    # A month on, helper1's check (100 days old at the start) is not yet due; helper3's ran out.
    advance_days(hub, 30)
    page = Staff(hub.url, "coordinator1").get("/admin").text
    assert row(page, "user", username="helper3")["may-help"] == "No"
    assert row(page, "user", username="helper1")["may-help"] == "Yes"


def test_only_the_helpers_own_coordinator_and_admins_approve_them(hub):
    demo_helper = ids(hub, User, username="helper1")
    with hub.db.transaction() as s:
        other = Organisation(name="Anden forening", contact="x", approved=True)
        s.add(other)
        s.flush()
        other_id = other.id
    add_user(hub, "coordinator2", Role.COORDINATOR, other_id)
    today = clock.now().date()
    assert approve(Staff(hub.url, "coordinator2"), demo_helper, today).status_code == 404
    for username in ("staff1", "helper2", "student1"):
        someone = Staff(hub.url, username)
        form = {"approved": "1", "certificate_checked_on": today.isoformat()}
        answer = someone.post_raw(f"/admin/users/{demo_helper}/approval", **form)
        assert answer.status_code == 403, username
        withdrawn = someone.post_raw(f"/admin/users/{demo_helper}/approval", approved="0")
        assert withdrawn.status_code == 403, username
    assert db_one(hub, User, id=demo_helper).approved is True
    assert db_one(hub, User, id=demo_helper).certificate_checked_on != today

    # An admin may approve anyone's helper.
    add_user(hub, "anden-hjaelper", Role.HELPER, other_id)
    other_helper = ids(hub, User, username="anden-hjaelper")
    page = approve(Staff(hub.url, "admin"), other_helper, today)
    assert row(page.text, "user", username="anden-hjaelper")["approved"] == "Yes"


def test_the_welcome_page_is_for_helpers(hub):
    assert requests.get(hub.url + "/welcome", allow_redirects=False).status_code in (302, 401)
    for username in ("student1", "coordinator1", "staff1", "admin"):
        assert Staff(hub.url, username).get("/welcome").status_code == 403, username


# ---------------------------------------------------------------------------------------------
# Migration


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_migration_keeps_approved_helpers_able_to_go_on_duty(backend, tmp_path: Path):
    """A database from before vetting: its approved helper gets the account's creation date as
    the check date and the introduction as done; an unapproved one stays unapproved."""
    with empty_database(backend, tmp_path) as url:
        # A fresh config for each command: Alembic's env keeps the connection it opened in it.
        command.upgrade(alembic_config(url), "0007")
        db = Database(url)
        with db.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO organisations (id, name, contact) VALUES (1, 'F', 'c')")
            )
            for name, approved in (("gammel", True), ("ny", False)):
                connection.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, display_name,"
                        " organisation_id, approved, grade_min, grade_max, active, created_at)"
                        " VALUES (:name, '!', 'helper', :name, 1, :approved, 8, 10, true,"
                        " '2026-01-15 10:00:00')"
                    ),
                    {"name": name, "approved": approved},
                )
        command.upgrade(alembic_config(url), "head")
        with db.transaction() as s:
            helpers = {u.username: u for u in s.scalars(select(User))}
            organisation = s.scalars(select(Organisation)).one()
            assert organisation.approved is True and organisation.offers == ""
            old = helpers["gammel"]
            assert old.certificate_checked_on == date(2026, 1, 15)
            assert old.certificate_expires_on == date(2026, 1, 15) + timedelta(days=2 * 365)
            assert old.introduction_done is True and old.welcome_seen is True
            new = helpers["ny"]
            assert (new.certificate_checked_on, new.introduction_done) == (None, False)
        db.dispose()


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"lc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
