"""The administration pages, used the way admins, coordinators and site staff use them: logged
in through the real form, posting the real forms to a running hub, reading what the page shows."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub import clock, create_app
from hub.accounts.models import Organisation, Site, User
from hub.catalog.models import Subject
from hub.config import HubConfig
from hub.matching.models import HelperDuty
from tests.hubclient import PASSWORD, Browserless, Client

# ---------------------------------------------------------------------------------------------
# Reading pages and posting forms


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _Node:
    def __init__(self, attrs: dict[str, str | None]) -> None:
        self.attrs = attrs
        self.children: list[_Node | str] = []

    def text(self) -> str:
        return " ".join(
            " ".join((c if isinstance(c, str) else c.text()).split()) for c in self.children
        ).strip()

    def find(self, testid: str) -> list[_Node]:
        found = [self] if self.attrs.get("data-testid") == testid else []
        for child in self.children:
            if isinstance(child, _Node):
                found += child.find(testid)
        return found


class _Tree(HTMLParser):
    """Just enough of a DOM to find elements by data-testid and read their text."""

    def __init__(self) -> None:
        super().__init__()
        self.root = _Node({})
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(dict(attrs))
        self._open[-1].children.append(node)
        if tag not in VOID:
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and len(self._open) > 1:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def _find(html: str, testid: str) -> list[_Node]:
    tree = _Tree()
    tree.feed(html)
    return tree.root.find(testid)


def texts(html: str, testid: str) -> list[str]:
    """The text of every element marked data-testid=`testid`."""
    return [node.text() for node in _find(html, testid)]


def rows(html: str, kind: str) -> list[dict[str, str]]:
    """Each element marked data-testid="<kind>-row" as {name: text} of the elements inside it
    marked data-testid="<kind>-<name>"."""
    prefix = f"{kind}-"
    found = []
    for node in _find(html, f"{kind}-row"):
        cells: dict[str, str] = {}
        todo = [c for c in node.children if isinstance(c, _Node)]
        while todo:
            cell = todo.pop(0)
            testid = cell.attrs.get("data-testid")
            if testid and testid.startswith(prefix) and testid[len(prefix) :] not in cells:
                cells[testid[len(prefix) :]] = cell.text()
            todo += [c for c in cell.children if isinstance(c, _Node)]
        found.append(cells)
    return found


def row(html: str, kind: str, **match: str) -> dict[str, str]:
    found = [r for r in rows(html, kind) if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"{kind} rows matching {match}: {found}"
    return found[0]


def alerts(html: str) -> list[str]:
    return texts(html, "form-error")


class Staff(Browserless):
    """A logged-in browser session that posts forms with the page's CSRF token.

    The tests read the pages in English (`lang`); None keeps the hub's default, Danish."""

    def __init__(
        self, base_url: str, username: str, password: str = PASSWORD, lang: str | None = "en"
    ) -> None:
        super().__init__(base_url, lang)
        r = self.login(username, password)
        assert r.status_code == 302, r.text
        self.token = self.csrf("/login")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base_url + path, **kwargs)

    def post(self, path: str, **data: Any) -> requests.Response:
        """Post a form and follow the redirect, as a browser does."""
        return self.http.post(self.base_url + path, data={"csrf_token": self.token, **data})

    def post_raw(self, path: str, **data: Any) -> requests.Response:
        return self.http.post(
            self.base_url + path, data={"csrf_token": self.token, **data}, allow_redirects=False
        )


def db_one(hub: Any, model: Any, **where: Any) -> Any:
    with hub.db.transaction() as s:
        query = select(model).filter_by(**where)
        return s.scalars(query).one_or_none()


def ids(hub: Any, model: Any, **where: Any) -> int:
    found = db_one(hub, model, **where)
    assert found is not None, f"no {model.__name__} {where}"
    return int(found.id)


def count(hub: Any, model: Any) -> int:
    with hub.db.transaction() as s:
        return len(list(s.scalars(select(model))))


# ---------------------------------------------------------------------------------------------
# Catalogue


def test_admin_adds_a_subject_students_can_choose_and_deactivating_hides_it(hub):
    admin = Staff(hub.url, "admin")
    page = admin.post("/admin/subjects", key="french", name_da="Fransk", name_en="French")
    assert page.status_code == 200 and page.url.endswith("/admin/catalog")
    assert texts(page.text, "notice") == ["Saved."]
    assert row(page.text, "subject", key="french")["active"] == "Yes"

    def catalog_names(lang: str) -> list[str]:
        answer = requests.get(hub.url + "/api/catalog", headers={"Accept-Language": lang}).json()
        return [x["name"] for x in answer["subjects"]]

    assert "Fransk" in catalog_names("da")
    assert "French" in catalog_names("en")

    subject_id = ids(hub, Subject, key="french")
    page = admin.post(
        f"/admin/subjects/{subject_id}/rename", name_da="Fransk sprog", name_en="French language"
    )
    assert row(page.text, "subject", key="french")["name-da"] == "Fransk sprog"
    assert "French language" in catalog_names("en")

    page = admin.post(f"/admin/subjects/{subject_id}/active", active="0")
    assert row(page.text, "subject", key="french")["active"] == "No"
    assert "French language" not in catalog_names("en")
    assert "Fransk sprog" not in catalog_names("da")

    admin.post(f"/admin/subjects/{subject_id}/active", active="1")
    assert "French language" in catalog_names("en")


def test_admin_adds_a_language_and_can_switch_it_off(hub):
    admin = Staff(hub.url, "admin")
    page = admin.post("/admin/languages", code="fr", name_da="Fransk", name_en="French")
    assert row(page.text, "language", code="fr")["active"] == "Yes"
    codes = [x["code"] for x in requests.get(hub.url + "/api/catalog").json()["languages"]]
    assert "fr" in codes

    page = admin.post("/admin/languages/fr/active", active="0")
    assert row(page.text, "language", code="fr")["active"] == "No"
    codes = [x["code"] for x in requests.get(hub.url + "/api/catalog").json()["languages"]]
    assert "fr" not in codes


# ---------------------------------------------------------------------------------------------
# Sites and invite codes


def register(hub: Any, invite_code: str, username: str) -> requests.Response:
    visitor = Browserless(hub.url, lang="en")
    token = visitor.csrf("/register")
    return visitor.http.post(
        hub.url + "/register",
        data={
            "invite_code": invite_code,
            "username": username,
            "nickname": "Nyt barn",
            "grade": "9",
            "password": "a-long-password",
            "csrf_token": token,
        },
        allow_redirects=False,
    )


def test_new_site_invite_code_lets_a_student_register_and_a_new_code_replaces_it(hub):
    admin = Staff(hub.url, "admin")
    page = admin.post(
        "/admin/sites", name="Nørre Bibliotek", kind="library", contact="Bo, 12345678"
    )
    site = row(page.text, "site", name="Nørre Bibliotek")
    assert site["kind"] == "Library"
    assert site["contact"] == "Bo, 12345678"
    assert site["students"] == "0"
    code = site["invite-code"]
    assert len(code) == 8 and code.isupper() and not set(code) & set("0O1IL")

    assert register(hub, code.lower(), "nyelev").status_code == 302
    page = admin.get("/admin/sites")
    assert row(page.text, "site", name="Nørre Bibliotek")["students"] == "1"

    site_id = ids(hub, Site, name="Nørre Bibliotek")
    page = admin.post(f"/admin/sites/{site_id}/invite-code")
    new_code = row(page.text, "site", name="Nørre Bibliotek")["invite-code"]
    assert new_code != code and len(new_code) == 8
    assert "The old code no longer works" in texts(page.text, "notice")[0]

    refused = register(hub, code, "nyelev2")
    assert refused.status_code == 400
    assert "That invite code is not valid" in refused.text
    assert register(hub, new_code, "nyelev2").status_code == 302
    page = admin.get("/admin/sites")
    assert row(page.text, "site", name="Nørre Bibliotek")["students"] == "2"


def test_admin_edits_a_site_contact_and_creates_an_organisation(hub):
    admin = Staff(hub.url, "admin")
    site_id = ids(hub, Site, name="Demo-skole Syd")
    page = admin.post(f"/admin/sites/{site_id}/contact", contact="Kontoret, 87654321")
    assert row(page.text, "site", name="Demo-skole Syd")["contact"] == "Kontoret, 87654321"

    page = admin.post(
        "/admin/organisations", name="Ungdommens Røde Kors", contact="urk@example.org"
    )
    org = row(page.text, "organisation", name="Ungdommens Røde Kors")
    assert org["contact"] == "urk@example.org"
    assert org["helpers"] == "0"
    org_id = ids(hub, Organisation, name="Ungdommens Røde Kors")
    page = admin.post(f"/admin/organisations/{org_id}/profile", contact="Ny kontakt")
    org = row(page.text, "organisation", name="Ungdommens Røde Kors")
    assert org["contact"] == "Ny kontakt"
    demo = row(page.text, "organisation", name="Demo-frivillige")
    assert demo["helpers"] == "3"


def test_site_staff_see_only_their_own_sites_code_and_can_renew_it(hub):
    staff = Staff(hub.url, "staff1")
    page = staff.get("/admin")
    assert texts(page.text, "invite-code") == ["NORD-2026"]
    assert texts(page.text, "student-count") == ["2"]  # student1 and student5 of 5 over 4 sites
    for other in ("SYD-2026", "BIBLIOTEK-2026", "KLUB-2026", "Elev 1", "student1"):
        assert other not in page.text

    for path in ("/admin/sites", "/admin/users", "/admin/catalog", "/admin/organisations"):
        assert staff.get(path).status_code == 403

    other_site = ids(hub, Site, name="Demo-skole Syd")
    assert staff.post_raw(f"/admin/sites/{other_site}/invite-code").status_code == 404
    assert db_one(hub, Site, name="Demo-skole Syd").invite_code == "SYD-2026"

    own_site = ids(hub, Site, name="Demo-skole Nord")
    page = staff.post(f"/admin/sites/{own_site}/invite-code")
    [new_code] = texts(page.text, "invite-code")
    assert new_code != "NORD-2026"
    assert register(hub, "NORD-2026", "nyelev").status_code == 400
    assert register(hub, new_code, "nyelev").status_code == 302
    assert texts(staff.get("/admin").text, "student-count") == ["3"]


# ---------------------------------------------------------------------------------------------
# Helpers, coordinators and approval


def duty_answer(hub: Any, username: str) -> dict[str, Any]:
    client = Client(hub.url, token=hub.token(username))
    hub._clients.append(client)
    client.connect()
    answer = client.call("duty:set", {"status": "available"})
    client.close()
    return answer


def test_helper_created_by_admin_goes_on_duty_only_after_their_coordinator_approves(hub):
    admin = Staff(hub.url, "admin")
    org_id = ids(hub, Organisation, name="Demo-frivillige")
    page = admin.post(
        "/admin/users",
        role="helper",
        username="NyHjaelper",
        display_name="Ny Hjælper",
        password=PASSWORD,
        organisation_id=str(org_id),
        site_id="",
    )
    helper = row(page.text, "user", username="nyhjaelper")
    assert helper["role"] == "Helper"
    assert helper["where"] == "Demo-frivillige"
    assert helper["approved"] == "No"
    assert helper["active"] == "Yes"
    assert PASSWORD not in page.text and "argon2" not in page.text

    refused = duty_answer(hub, "nyhjaelper")
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"

    coordinator = Staff(hub.url, "coordinator1")
    page = coordinator.get("/admin")
    assert row(page.text, "user", username="nyhjaelper")["approved"] == "No"
    assert "Child-protection certificate checked — approve" in page.text
    helper_id = ids(hub, User, username="nyhjaelper")
    page = coordinator.post(
        f"/admin/users/{helper_id}/approval",
        approved="1",
        certificate_checked_on=clock.now().date().isoformat(),
        introduction_done="1",
    )
    assert page.url.endswith("/admin")
    assert row(page.text, "user", username="nyhjaelper")["approved"] == "Yes"

    assert duty_answer(hub, "nyhjaelper")["ok"] is True

    page = coordinator.post(f"/admin/users/{helper_id}/approval", approved="0")
    assert row(page.text, "user", username="nyhjaelper")["approved"] == "No"
    assert db_one(hub, HelperDuty, helper_id=helper_id).status == "off"
    assert duty_answer(hub, "nyhjaelper")["error"]["code"] == "forbidden"


def test_coordinator_cannot_see_or_approve_a_helper_of_another_organisation(hub):
    admin = Staff(hub.url, "admin")
    admin.post("/admin/organisations", name="Anden forening")
    other_org = ids(hub, Organisation, name="Anden forening")
    admin.post(
        "/admin/users",
        role="helper",
        username="fremmed",
        display_name="Fremmed Hjælper",
        password=PASSWORD,
        organisation_id=str(other_org),
    )
    stranger = ids(hub, User, username="fremmed")

    coordinator = Staff(hub.url, "coordinator1")
    page = coordinator.get("/admin")
    assert {r["username"] for r in rows(page.text, "user")} == {
        "helper1",
        "helper2",
        "helper3",
    }
    assert "Anden forening" not in page.text and "fremmed" not in page.text
    assert texts(page.text, "organisation-contact") == ["frivillig@example.org"]

    assert (
        coordinator.post_raw(f"/admin/users/{stranger}/approval", approved="1").status_code == 404
    )
    assert coordinator.post_raw(f"/admin/users/{stranger}/active", active="0").status_code == 404
    assert db_one(hub, User, username="fremmed").approved is False
    assert db_one(hub, User, username="fremmed").active is True
    # Nor may a coordinator touch staff of their own organisation, or themself.
    admin_id = ids(hub, User, username="admin")
    assert coordinator.post_raw(f"/admin/users/{admin_id}/active", active="0").status_code == 404
    assert coordinator.get("/admin/users").status_code == 403

    page = coordinator.post("/admin/users", username="egen", display_name="Egen", password="kort")
    assert page.status_code == 400
    assert alerts(page.text) == ["The password must be at least 8 characters."]
    assert 'value="egen"' in page.text and db_one(hub, User, username="egen") is None

    # A coordinator's new helper lands in their own organisation, whatever the form says.
    page = coordinator.post(
        "/admin/users",
        role="admin",
        username="egen",
        display_name="Egen Hjælper",
        password=PASSWORD,
        organisation_id=str(other_org),
    )
    assert row(page.text, "user", username="egen")["approved"] == "No"
    created = db_one(hub, User, username="egen")
    assert created.role == "helper"
    assert created.organisation_id == ids(hub, Organisation, name="Demo-frivillige")


def test_deactivated_helper_goes_off_duty_and_cannot_log_in_until_reactivated(hub):
    helper, other = hub.client("helper1"), hub.client("helper2")
    helper.ok("duty:set", {"status": "available"})
    time.sleep(0.05)
    other.ok("duty:set", {"status": "available"})
    helper_id = ids(hub, User, username="helper1")
    assert db_one(hub, HelperDuty, helper_id=helper_id).status == "available"
    hub.client("student1").ok("help:request", {"subject": 1, "grade": 9})
    helper.wait_for("offer")

    coordinator = Staff(hub.url, "coordinator1")
    page = coordinator.post(f"/admin/users/{helper_id}/active", active="0")
    assert row(page.text, "user", username="helper1")["active"] == "No"
    assert db_one(hub, HelperDuty, helper_id=helper_id).status == "off"
    # Their open connection is closed and the student's request moves on.
    assert other.wait_for("offer")["request"]["nickname"] == "Elev 1"
    deadline = time.monotonic() + 5
    while helper.sio.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not helper.sio.connected
    assert Browserless(hub.url).login("helper1").status_code == 401

    page = coordinator.post(f"/admin/users/{helper_id}/active", active="1")
    assert row(page.text, "user", username="helper1")["active"] == "Yes"
    assert Browserless(hub.url).login("helper1").status_code == 302


def test_admin_creates_staff_and_filters_users_by_role_but_cannot_deactivate_themself(hub):
    admin = Staff(hub.url, "admin")
    site_id = ids(hub, Site, name="Demo-bibliotek")
    page = admin.post(
        "/admin/users",
        role="site_staff",
        username="bibliotekar",
        display_name="Bibliotekar",
        password=PASSWORD,
        site_id=str(site_id),
        organisation_id="",
    )
    assert row(page.text, "user", username="bibliotekar")["where"] == "Demo-bibliotek"
    staff = Staff(hub.url, "bibliotekar")
    assert texts(staff.get("/admin").text, "invite-code") == ["BIBLIOTEK-2026"]

    page = admin.get("/admin/users?role=helper")
    assert {r["role"] for r in rows(page.text, "user")} == {"Helper"}
    page = admin.get("/admin/users?role=student")
    assert len(rows(page.text, "user")) == 5

    # The role filter survives an action taken from the filtered list.
    helper_id = ids(hub, User, username="helper2")
    page = admin.post(f"/admin/users/{helper_id}/active", active="0", filter="helper")
    assert page.url.endswith("/admin/users?role=helper")

    admin_id = ids(hub, User, username="admin")
    page = admin.post(f"/admin/users/{admin_id}/active", active="0")
    assert page.status_code == 400
    assert texts(page.text, "form-error") == ["You cannot deactivate your own account."]
    assert db_one(hub, User, username="admin").active is True


# ---------------------------------------------------------------------------------------------
# Who may do what


def admin_rules(tmp_path: Path) -> list[tuple[str, str, set[str]]]:
    """(endpoint, path, methods) of every /admin route, read from the app's own url_map."""
    config = HubConfig(
        data_dir=tmp_path, secret_key="list-rules", database_url=f"sqlite:///{tmp_path}/rules.db"
    )
    app = create_app(config)
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            values = dict.fromkeys(rule.arguments, 1)  # role checks come before any lookup
            found.append(
                (rule.endpoint, adapter.build(rule.endpoint, values), set(rule.methods or ()))
            )
    return found


def test_every_admin_page_and_action_refuses_students_and_helpers(hub, tmp_path):
    rules = admin_rules(tmp_path)
    posts = [path for _e, path, methods in rules if "POST" in methods]
    pages = [path for _e, path, methods in rules if "GET" in methods]
    assert len(posts) >= 13 and "/admin" in pages

    subjects_before = count(hub, Subject)
    for username in ("student1", "helper1"):
        someone = Staff(hub.url, username)
        for path in pages:
            assert someone.get(path).status_code == 403, f"{username} GET {path}"
        for path in posts:
            answer = someone.post_raw(path, active="0", approved="1", name="x", contact="x")
            assert answer.status_code == 403, f"{username} POST {path}"
    assert count(hub, Subject) == subjects_before
    assert db_one(hub, Site, id=1).invite_code == "NORD-2026"


def test_logged_out_visitor_is_sent_to_the_login_page(hub, tmp_path):
    visitor = Browserless(hub.url)
    answer = visitor.http.get(hub.url + "/admin", allow_redirects=False)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    token = visitor.csrf("/login")
    for _endpoint, path, methods in admin_rules(tmp_path):
        if "POST" in methods:
            answer = visitor.http.post(
                hub.url + path, data={"csrf_token": token}, allow_redirects=False
            )
            assert answer.status_code == 302 and "/login" in answer.headers["Location"], path


# ---------------------------------------------------------------------------------------------
# Mistakes


def test_bad_input_shows_a_clear_error_keeps_what_was_typed_and_changes_nothing(hub):
    admin = Staff(hub.url, "admin")
    subjects_before, users_before = count(hub, Subject), count(hub, User)

    page = admin.post("/admin/subjects", key="french", name_da="", name_en=" ")
    assert page.status_code == 400
    assert alerts(page.text) == ["Please fill in or correct: Danish name, English name."]
    assert 'name="key" type="text" value="french"' in page.text
    assert 'id="add-subject-name_da"' in page.text and 'aria-invalid="true"' in page.text

    page = admin.post("/admin/subjects", key="math", name_da="Matte", name_en="Maths")
    assert page.status_code == 409
    assert alerts(page.text) == ["A subject with that key already exists."]

    subject_id = ids(hub, Subject, key="math")
    page = admin.post(f"/admin/subjects/{subject_id}/rename", name_da="", name_en="Maths")
    assert page.status_code == 400 and alerts(page.text) == [
        "Please fill in or correct: Danish name."
    ]
    assert db_one(hub, Subject, key="math").name_da == "Matematik"

    page = admin.post("/admin/sites", name="", kind="school")
    assert page.status_code == 400 and alerts(page.text) == ["Please fill in or correct: Name."]
    page = admin.post("/admin/sites", name="Skolen", kind="prison")
    assert page.status_code == 400 and alerts(page.text) == [
        "Choose school, library or youth club."
    ]
    page = admin.post("/admin/organisations", name="Demo-frivillige")
    assert page.status_code == 409
    assert alerts(page.text) == ["An organisation with that name already exists."]

    new_user = {"role": "helper", "display_name": "Ny", "organisation_id": "1"}
    page = admin.post("/admin/users", **new_user, username="helper1", password=PASSWORD)
    assert page.status_code == 409
    assert alerts(page.text) == ["That username is taken. Please choose another."]
    assert 'value="helper1"' in page.text

    page = admin.post("/admin/users", **new_user, username="kort", password="1234567")
    assert page.status_code == 400
    assert alerts(page.text) == ["The password must be at least 8 characters."]
    assert "1234567" not in page.text  # a password is never sent back

    page = admin.post(
        "/admin/users", **{**new_user, "organisation_id": ""}, username="udenorg", password=PASSWORD
    )
    assert page.status_code == 400
    assert alerts(page.text) == [
        "Helpers and coordinators belong to a partner organisation. Choose one."
    ]

    page = admin.post(
        "/admin/users", role="site_staff", display_name="X", username="udensted", password=PASSWORD
    )
    assert page.status_code == 400
    assert alerts(page.text) == ["Site staff belong to a site. Choose one."]

    page = admin.post(
        "/admin/users", role="student", display_name="X", username="elev9", password=PASSWORD
    )
    assert page.status_code == 400 and alerts(page.text) == ["Choose one of the roles in the list."]

    assert (count(hub, Subject), count(hub, User)) == (subjects_before, users_before)
    assert count(hub, Site) == 4 and count(hub, Organisation) == 1


def test_changing_something_that_does_not_exist_says_so(hub):
    admin = Staff(hub.url, "admin")
    assert admin.post_raw("/admin/subjects/9999/active", active="0").status_code == 404
    assert admin.post_raw("/admin/languages/xx/active", active="0").status_code == 404
    assert admin.post_raw("/admin/users/9999/approval", approved="1").status_code == 404
    student_id = ids(hub, User, username="student1")
    page = admin.post(f"/admin/users/{student_id}/approval", approved="1")
    assert page.status_code == 400 and alerts(page.text) == ["Only helpers need approval."]


# ---------------------------------------------------------------------------------------------
# Language


@pytest.mark.parametrize("username", ["admin", "coordinator1", "staff1"])
def test_admin_pages_are_danish_by_default_and_english_on_request(hub, username):
    person = Staff(hub.url, username, lang=None)
    assert '<html lang="da">' in person.get("/admin").text
    person.post_raw("/lang/en", next="/admin")
    assert '<html lang="en">' in person.get("/admin").text
