"""Which language the hub speaks: Danish, unless the person picked another with the switch (or a
program such as the kiosk asks for one); times are 24-hour in every language."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.hubclient import Browserless
from tests.test_browser import ask, browser, log_in  # noqa: F401 (a fixture)


def page_language(http: requests.Session, url: str, accept_language: str) -> str:
    page = http.get(url + "/login", headers={"Accept-Language": accept_language})
    match = re.search(r'<html lang="(\w+)">', page.text)
    assert match, page.text[:200]
    return match.group(1)


def test_a_danish_pupil_on_an_english_school_machine_gets_danish(hub):
    assert page_language(requests.Session(), hub.url, "en-US,en") == "da"
    assert page_language(requests.Session(), hub.url, "en-GB,en;q=0.5") == "da"


def test_a_browser_that_lists_danish_at_all_gets_danish(hub):
    assert page_language(requests.Session(), hub.url, "en, da;q=0.5") == "da"
    assert page_language(requests.Session(), hub.url, "da-DK") == "da"


def test_the_language_switch_is_remembered_across_pages_and_a_login(hub):
    pupil = Browserless(hub.url)
    assert page_language(pupil.http, hub.url, "en-US,en") == "da"
    pupil.choose_language("en")
    assert page_language(pupil.http, hub.url, "en-US,en") == "en"
    assert page_language(pupil.http, hub.url, "da-DK") == "en"  # the pick wins over the browser
    assert pupil.login("student1").status_code == 302
    assert '<html lang="en">' in pupil.http.get(hub.url + "/student").text
    pupil.choose_language("da")
    assert '<html lang="da">' in pupil.http.get(hub.url + "/student").text


def test_a_program_gets_the_language_it_asks_for(hub):
    """The kiosk reads the subjects in both languages through Accept-Language."""

    def names(lang: str) -> list[str]:
        answer = requests.get(hub.url + "/api/catalog", headers={"Accept-Language": lang})
        return [subject["name"] for subject in answer.json()["subjects"]]

    assert "Matematik" in names("da") and "Mathematics" in names("en")
    assert "Matematik" in names("")  # asking for nothing: Danish


@pytest.mark.browser
def test_a_chat_time_is_24_hour_in_english(browser, hub):  # noqa: F811
    pupil = log_in(browser, hub, "student1", locale="en-US", timezone_id="Europe/Copenhagen")
    expect(pupil.locator("html")).to_have_attribute("lang", "da")  # an English browser: Danish
    pupil.get_by_role("button", name="English").click()
    expect(pupil.locator("html")).to_have_attribute("lang", "en")
    ask(pupil, hub, "Fractions")
    pupil.get_by_test_id("breakroom-input").fill("Anyone else doing fractions?")
    pupil.get_by_test_id("breakroom-send").click()
    sent = pupil.get_by_test_id("breakroom-log").locator(".chat-time").last
    expect(sent).to_have_text(re.compile(r"^\d\d:\d\d$"))  # "14:05", never "02:05 PM"
