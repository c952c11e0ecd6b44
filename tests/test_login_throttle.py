"""Wrong passwords slow the guesser down, never the real user (hub.accounts.throttle), over real
HTTP against a real hub. Each "address" is a loopback address of its own (Linux routes all of
127/8 to this machine), bound as the source of the test's requests; time moves on with the hub's
test clock."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from hub import clock
from hub.accounts.models import Organisation, Role, User
from hub.accounts.service import hash_password
from tests.hubclient import PASSWORD, Browserless, advance_clock
from tests.test_admin import Staff, texts
from tests.test_nginx import coturn_tls_port, front  # noqa: F401 (fixtures)

# The test hub lets 3 wrong passwords from one address for one account through (conftest FAST);
# these make the address and account limits quick to reach.
ADDRESS_LIMIT = 8
ACCOUNT_LIMIT = 6


# The first wait is a minute, so a slow machine cannot let it pass before the test looks.
SLOW = {"LEKTIECAFE_LOGIN_FIRST_WAIT_S": "60", "LEKTIECAFE_LOGIN_MAX_WAIT_S": "480"}


@pytest.fixture
def hub_env() -> dict[str, str]:
    return {
        **SLOW,
        "LEKTIECAFE_LOGIN_ADDRESS_FAILURES": str(ADDRESS_LIMIT),
        "LEKTIECAFE_LOGIN_ACCOUNT_FAILURES": str(ACCOUNT_LIMIT),
    }


class FromAddress(HTTPAdapter):
    """Connects from `address` (a loopback address) instead of 127.0.0.1."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(address: str) -> requests.Session:
    http = requests.Session()
    http.mount("http://", FromAddress(address))
    return http


def token(
    hub: Any,
    address: str,
    username: str,
    password: str = PASSWORD,
    lang: str = "",
    **options: Any,
) -> requests.Response:
    return from_address(address).post(
        hub.url + "/api/auth/token",
        json={"username": username, "password": password},
        headers={"Accept-Language": lang} if lang else None,
        timeout=10,
        **options,
    )


def browser_at(hub: Any, address: str, lang: str | None = None) -> Browserless:
    """A browser (own cookies) on the machine with `address`."""
    browser = Browserless(hub.url)
    browser.http.mount("http://", FromAddress(address))
    if lang:
        browser.choose_language(lang)
    return browser


def refused(answer: requests.Response) -> int:
    """The seconds a 429 says to wait; checks the header and the body agree."""
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert error["code"] == "rate_limited" and answer.json()["ok"] is False
    assert answer.headers["Retry-After"] == str(error["details"]["retry_after_s"])
    return int(error["details"]["retry_after_s"])


def fail_from(hub: Any, addresses: list[str], username: str) -> None:
    for address in addresses:
        assert token(hub, address, username, "wrong").status_code == 401


def about(seconds: int, expected: int) -> bool:
    """A wait the hub told: `expected`, less the few seconds the test took since."""
    return expected - 30 < seconds <= expected


@pytest.mark.parametrize("hub_env", [SLOW])  # without the account limit of the others
def test_guessing_from_one_address_waits_longer_and_longer(hub):
    fail_from(hub, ["127.0.0.2"] * 3, "helper2")
    for expected in (60, 120, 240, 480):
        wait = refused(token(hub, "127.0.0.2", "helper2"))  # even the right password
        assert about(wait, expected), (wait, expected)
        advance_clock(hub.url, wait)
        assert token(hub, "127.0.0.2", "helper2", "wrong").status_code == 401
    assert about(refused(token(hub, "127.0.0.2", "helper2")), 480)  # at most login_max_wait_s
    advance_clock(hub.url, 480)
    assert token(hub, "127.0.0.2", "helper2").status_code == 200  # and after the wait, it works
    fail_from(hub, ["127.0.0.2"] * 3, "helper2")  # the right password started the count again


def test_the_right_password_from_another_address_works_while_the_first_is_slowed(hub):
    fail_from(hub, ["127.0.0.2"] * 3, "helper2")
    assert refused(token(hub, "127.0.0.2", "helper2")) >= 1
    assert token(hub, "127.0.0.3", "helper2").status_code == 200
    helper = browser_at(hub, "127.0.0.4")
    assert helper.login("helper2").status_code == 302  # the login form too
    assert refused(token(hub, "127.0.0.2", "helper2")) >= 1  # the guesser still waits
    assert token(hub, "127.0.0.2", "helper3").status_code == 200  # for that account only


def test_an_unknown_username_is_slowed_like_a_real_one(hub):
    fail_from(hub, ["127.0.0.2"] * 3, "nobody-here")
    fail_from(hub, ["127.0.0.2"] * 3, "helper2")
    assert about(refused(token(hub, "127.0.0.2", "nobody-here")), 60)
    assert about(refused(token(hub, "127.0.0.2", "helper2")), 60)


def test_one_address_trying_many_accounts_is_stopped_and_others_are_not(hub):
    usernames = ["helper1", "helper2", "helper3", "student1", "student2", "admin", "staff1"]
    for username in [*usernames, "nobody-here"]:  # one wrong password each
        fail_from(hub, ["127.0.0.5"], username)
    assert len(usernames) + 1 == ADDRESS_LIMIT
    answer = token(hub, "127.0.0.5", "student3")  # an account it has not tried yet
    assert refused(answer) > 60
    assert "network" in token(hub, "127.0.0.5", "x", lang="en").json()["error"]["message"]
    assert token(hub, "127.0.0.6", "student3").status_code == 200
    for username in usernames:  # the accounts it tried are fine from anywhere else
        assert token(hub, "127.0.0.6", username).status_code == 200
    advance_clock(hub.url, 3600)
    assert token(hub, "127.0.0.5", "student3").status_code == 200  # the hour is over


def test_many_addresses_guessing_one_account_close_it_to_all_but_its_known_devices(hub):
    own_laptop = browser_at(hub, "127.0.1.1")
    assert own_laptop.login("helper2").status_code == 302
    assert own_laptop.http.cookies.get("lektiecafe_device")
    fail_from(hub, [f"127.0.2.{n}" for n in range(1, ACCOUNT_LIMIT + 1)], "helper2")

    message = token(hub, "127.0.3.1", "helper2", lang="en")
    assert refused(message) > 60  # a fresh address: the account is closed for the hour
    assert "ask your coordinator to unlock it" in message.json()["error"]["message"]
    assert token(hub, "127.0.3.1", "helper3").status_code == 200  # other accounts are not

    device = own_laptop.http.cookies["lektiecafe_device"]
    wrong_account = token(
        hub, "127.0.1.1", "helper3", "wrong", cookies={"lektiecafe_device": device}
    )
    assert wrong_account.status_code == 401  # the cookie is for helper2 only
    forged = token(hub, "127.0.3.2", "helper2", cookies={"lektiecafe_device": device + "x"})
    assert refused(forged) > 60

    assert own_laptop.login("helper2").status_code == 302  # the known device gets in
    assert token(hub, "127.0.3.1", "helper2").status_code == 200  # ... and that unlocked it


def test_the_api_remembers_a_known_device_too(hub):
    first = token(hub, "127.0.1.2", "helper2")
    assert first.status_code == 200
    device = first.cookies["lektiecafe_device"]
    fail_from(hub, [f"127.0.2.{n}" for n in range(1, ACCOUNT_LIMIT + 1)], "helper2")
    assert refused(token(hub, "127.0.1.3", "helper2")) > 60
    known = token(hub, "127.0.1.3", "helper2", cookies={"lektiecafe_device": device})
    assert known.status_code == 200


def add_coordinator_of_another_organisation(hub: Any) -> None:
    with hub.db.transaction() as s:
        other = Organisation(name="Anden forening", contact="Kim", offers="", approved=True)
        s.add(other)
        s.flush()
        s.add(
            User(
                username="coordinator9",
                display_name="Koordinator 9",
                role=Role.COORDINATOR.value,
                organisation_id=other.id,
                password_hash=hash_password(PASSWORD),
                created_at=clock.now(),
            )
        )


def user_id(hub: Any, username: str) -> int:
    with hub.db.transaction() as s:
        return int(s.scalar(select(User.id).where(User.username == username)))


def test_a_coordinator_unlocks_their_helper_and_no_one_else_may(hub):
    add_coordinator_of_another_organisation(hub)
    helper2 = user_id(hub, "helper2")
    # Logged in before the account closes (the staff log in from their own addresses).
    coordinator = Staff(hub.url, "coordinator1")
    others = {
        name: Staff(hub.url, name) for name in ("coordinator9", "staff1", "helper1", "student1")
    }
    fail_from(hub, [f"127.0.2.{n}" for n in range(1, ACCOUNT_LIMIT + 1)], "helper2")
    assert refused(token(hub, "127.0.3.1", "helper2")) > 60

    page = coordinator.get("/admin").text
    assert texts(page, "login-locked") == ["Login closed after wrong passwords"]
    for name, other in others.items():
        answer = other.post(f"/admin/users/{helper2}/unlock")
        assert answer.status_code == (404 if name == "coordinator9" else 403), name
    assert refused(token(hub, "127.0.3.1", "helper2")) > 60  # still closed

    unlocked = coordinator.post(f"/admin/users/{helper2}/unlock")
    assert unlocked.status_code == 200 and texts(unlocked.text, "notice") == ["Saved."]
    assert texts(unlocked.text, "login-locked") == []
    assert token(hub, "127.0.3.1", "helper2").status_code == 200


def test_an_admin_unlocks_any_account_from_the_users_page(hub):
    admin = Staff(hub.url, "admin")
    fail_from(hub, [f"127.0.2.{n}" for n in range(1, ACCOUNT_LIMIT + 1)], "student1")
    page = admin.get("/admin/users").text
    assert texts(page, "login-locked") == ["Login closed after wrong passwords"]
    assert admin.post(f"/admin/users/{user_id(hub, 'student1')}/unlock").status_code == 200
    assert token(hub, "127.0.3.1", "student1").status_code == 200


def test_the_login_page_says_how_long_to_wait_in_danish_and_in_english(hub):
    guesser = browser_at(hub, "127.0.0.7")
    for _ in range(3):
        assert guesser.login("helper2", "wrong").status_code == 401
    page = guesser.login("helper2")
    assert page.status_code == 429 and about(int(page.headers["Retry-After"]), 60)
    seconds = page.headers["Retry-After"]
    assert texts(page.text, "login-error") == [
        f"For mange forkerte adgangskoder. Prøv igen om {seconds} sekunder."
    ]
    guesser.choose_language("en")
    page = guesser.login("helper2")
    assert page.status_code == 429 and '<html lang="en">' in page.text
    seconds = page.headers["Retry-After"]
    assert texts(page.text, "login-error") == [
        f"Too many wrong passwords. Try again in {seconds} seconds."
    ]


def test_the_limits_are_logged_without_usernames_or_addresses(hub):
    fail_from(hub, ["127.0.0.2"] * 3, "helper2")
    assert refused(token(hub, "127.0.0.2", "helper2")) >= 1
    fail_from(hub, [f"127.0.2.{n}" for n in range(1, ACCOUNT_LIMIT + 1)], "helper3")
    assert refused(token(hub, "127.0.1.1", "helper3")) > 60
    log = hub.log.read_text()
    assert "login slowed" in log and "login limited" in log
    assert not re.search(r"helper[23]|127\.0\.0\.2\b|127\.0\.[12]\.[0-9]|Hjælper", log), log


@pytest.mark.parametrize("hub_env", [{"LEKTIECAFE_TRUSTED_PROXIES": "127.0.0.1"}])
def test_behind_a_trusted_proxy_its_x_forwarded_for_is_the_address(hub):
    def through_proxy(client: str, password: str) -> requests.Response:
        return requests.post(
            hub.url + "/api/auth/token",
            json={"username": "helper2", "password": password},
            headers={"X-Forwarded-For": client},
            timeout=10,
        )

    for _ in range(3):
        assert through_proxy("203.0.113.5", "wrong").status_code == 401
    assert refused(through_proxy("203.0.113.5", PASSWORD)) >= 1
    assert through_proxy("203.0.113.6", PASSWORD).status_code == 200


def test_without_a_trusted_proxy_x_forwarded_for_changes_nothing(hub):
    for n in range(3):
        answer = from_address("127.0.0.2").post(
            hub.url + "/api/auth/token",
            json={"username": "helper2", "password": "wrong"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
            timeout=10,
        )
        assert answer.status_code == 401
    spoofed = from_address("127.0.0.2").post(
        hub.url + "/api/auth/token",
        json={"username": "helper2", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.99"},
        timeout=10,
    )
    assert refused(spoofed) >= 1


@pytest.mark.slow
def test_through_the_shipped_nginx_each_client_address_counts_on_its_own(hub, front):  # noqa: F811
    """nginx hands the client's address on in X-Forwarded-For, which the hub trusts from
    loopback: a guesser is slowed, another machine behind the same nginx is not."""

    def through_nginx(address: str, password: str) -> requests.Response:
        http = requests.Session()
        http.mount("https://", FromAddress(address))
        return http.post(
            front.url + "/api/auth/token",
            json={"username": "helper2", "password": password},
            verify=front.ca,
            timeout=10,
        )

    for _ in range(3):
        assert through_nginx("127.0.0.2", "wrong").status_code == 401
    assert refused(through_nginx("127.0.0.2", PASSWORD)) >= 1
    assert through_nginx("127.0.0.3", PASSWORD).status_code == 200
