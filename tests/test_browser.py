"""The student's page and the helper station in headless Chromium, against a real hub."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select

from hub.accounts.models import User
from hub.catalog.models import Subject
from hub.matching.models import HelpRequest
from tests.hubclient import PASSWORD

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
]

UNLABELLED_FIELDS = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML)"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(
    browser: Browser, hub, username: str, init_script: str | None = None, **context: object
) -> Page:
    """A new browser (own cookies) logged in through the login form, in Danish by default.
    `init_script` runs in every page of it before the page's own scripts."""
    options: dict[str, object] = {"base_url": hub.url, "locale": "da-DK", **context}
    browser_context = browser.new_context(**options)
    if init_script:
        browser_context.add_init_script(init_script)
    page = browser_context.new_page()
    page.set_default_timeout(10_000)
    page.goto("/login")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(lambda url: not url.endswith("/login"))
    return page


def subject_id(hub, key: str = "math") -> str:
    with hub.db.transaction() as s:
        return str(s.scalar(select(Subject.id).where(Subject.key == key)))


def ask(page: Page, hub, note: str, grade: str = "9", attach: Path | None = None) -> None:
    page.get_by_test_id("ask-subject").select_option(subject_id(hub))
    page.get_by_test_id("ask-grade").select_option(grade)
    page.get_by_test_id("ask-note").fill(note)
    if attach is not None:
        page.get_by_test_id("ask-file").set_input_files(attach)
        expect(page.get_by_test_id("ask-file-status")).to_have_attribute("data-state", "attached")
    page.get_by_test_id("ask-submit").click()


def go_on_duty(page: Page) -> None:
    toggle = page.get_by_test_id("duty-toggle")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")


def test_student_and_helper_go_from_login_to_matched(browser, hub):
    student = log_in(browser, hub, "student1")
    assert student.url.endswith("/student")
    expect(student.get_by_test_id("ask-grade")).to_have_value("8")  # the student's own grade
    ask(student, hub, "Jeg forstår ikke andengradsligninger, opgave 4")
    expect(student.get_by_test_id("queue-position")).to_have_text("1")
    expect(student.get_by_test_id("queue-eta")).not_to_be_empty()

    helper = log_in(browser, hub, "helper1")
    assert helper.url.endswith("/helper")
    go_on_duty(helper)
    offer = helper.get_by_test_id("offer")
    expect(offer.get_by_test_id("offer-note")).to_have_text(
        "Jeg forstår ikke andengradsligninger, opgave 4"
    )
    expect(offer.get_by_test_id("offer-subject")).to_have_text("Matematik")
    expect(offer.get_by_test_id("offer-nickname")).to_have_text("Elev 1")
    helper.get_by_test_id("offer-accept").click()

    expect(helper.get_by_test_id("matched")).to_be_visible()
    expect(helper.get_by_test_id("matched")).to_contain_text("Elev 1")
    expect(offer).to_be_hidden()
    expect(student.get_by_test_id("matched")).to_be_visible()
    expect(student.get_by_test_id("matched")).to_contain_text("Hjælper 1")
    room = student.get_by_test_id("matched").get_attribute("data-room-id")
    assert room and room == helper.get_by_test_id("matched").get_attribute("data-room-id")


def test_a_student_far_back_in_a_long_queue_is_told_about_where_they_are(browser, hub):
    """Beyond 20 the hub tells places rounded up (docs/protocol.md); the page says "about"."""
    with hub.db.transaction() as s:
        math = s.scalar(select(Subject.id).where(Subject.key == "math"))
        earlier = datetime.now(UTC) - timedelta(hours=1)
        for n in range(28):
            waiting = User(
                username=f"queued{n}",
                password_hash="!",
                role="student",
                display_name=f"Kø {n}",
                created_at=earlier,
            )
            s.add(waiting)
            s.flush()
            s.add(HelpRequest(student_id=waiting.id, subject_id=math, grade=9, created_at=earlier))
    student = log_in(browser, hub, "student1")
    ask(student, hub, "Brøker")  # number 29
    expect(student.get_by_test_id("queue-position")).to_have_text("ca. 30")


def test_a_declined_offer_disappears_and_a_reload_keeps_the_students_place(browser, hub):
    student = log_in(browser, hub, "student1")
    ask(student, hub, "Tysk grammatik")
    expect(student.get_by_test_id("queue-position")).to_have_text("1")

    helper = log_in(browser, hub, "helper1")
    go_on_duty(helper)
    expect(helper.get_by_test_id("offer-note")).to_have_text("Tysk grammatik")
    helper.get_by_test_id("offer-decline").click()
    expect(helper.get_by_test_id("offer")).to_be_hidden()
    expect(helper.get_by_test_id("duty-toggle")).to_have_attribute("aria-pressed", "true")

    student.reload()
    expect(student.get_by_test_id("queue-position")).to_have_text("1")
    expect(student.locator("#wait-view")).to_be_visible()
    expect(student.locator("#ask-view")).to_be_hidden()


def test_the_break_room_chat_passes_kind_words_and_refuses_phone_numbers(browser, hub):
    ali = log_in(browser, hub, "student1")
    ask(ali, hub, "Brøker")
    omar = log_in(browser, hub, "student2")
    ask(omar, hub, "Procent")
    expect(omar.get_by_test_id("queue-position")).to_have_text("2")
    helper = log_in(browser, hub, "helper2")  # reads along; stays off duty

    ali.get_by_test_id("breakroom-input").fill("Nogen der også laver brøker?")
    ali.get_by_test_id("breakroom-send").click()
    expect(omar.get_by_test_id("breakroom-log")).to_contain_text("Nogen der også laver brøker?")
    expect(omar.get_by_test_id("breakroom-log")).to_contain_text("Elev 1")
    expect(helper.get_by_test_id("moderation-log")).to_contain_text("Nogen der også laver brøker?")

    ali.get_by_test_id("breakroom-input").fill("ring til mig på 20 30 40 50")
    ali.get_by_test_id("breakroom-send").click()
    expect(ali.get_by_test_id("breakroom-error")).to_be_visible()
    expect(ali.get_by_test_id("breakroom-error")).to_contain_text(re.compile("phone|telefon", re.I))
    expect(ali.get_by_test_id("breakroom-input")).to_have_value("ring til mig på 20 30 40 50")
    expect(ali.get_by_test_id("breakroom-log")).not_to_contain_text("20 30 40 50")

    helper.get_by_test_id("moderation-remove").click()
    expect(omar.get_by_test_id("breakroom-log")).not_to_contain_text("brøker")
    expect(helper.get_by_test_id("moderation-log")).to_be_hidden()
    expect(omar.get_by_test_id("breakroom-log")).not_to_contain_text("20 30 40 50")


def assert_no_sideways_scrolling(page: Page, what: str) -> None:
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client, f"{what} scrolls sideways on a phone: {scroll} > {client}"


def fits_and_is_labelled(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("main h1").first).to_be_visible()
    assert_no_sideways_scrolling(page, path)
    assert page.evaluate(UNLABELLED_FIELDS) == [], f"{path} has fields without a label"


def test_the_pages_switch_to_english_fit_a_phone_and_label_every_field(browser, hub):
    phone = {"viewport": {"width": 360, "height": 740}}
    anon = browser.new_context(base_url=hub.url, locale="da-DK", **phone).new_page()
    fits_and_is_labelled(anon, "/login")

    student = log_in(browser, hub, "student1", **phone)
    expect(student.locator("html")).to_have_attribute("lang", "da")
    student.get_by_role("button", name="English").click()
    expect(student.locator("html")).to_have_attribute("lang", "en")
    expect(student.get_by_role("heading", level=1)).to_have_text("Ask for help")
    expect(student.get_by_label("Language the helper should speak (optional)")).to_be_visible()
    fits_and_is_labelled(student, "/student")
    ask(student, hub, "Engelsk stil")
    expect(student.get_by_test_id("queue-position")).to_have_text("1")
    expect(student.get_by_role("tab", name="Memory")).to_be_visible()
    assert_no_sideways_scrolling(student, "the break room")

    helper = log_in(browser, hub, "helper1", **phone)
    helper.get_by_role("button", name="English").click()
    expect(helper.locator("html")).to_have_attribute("lang", "en")
    expect(helper.get_by_role("heading", level=1)).to_have_text("Helper station")
    fits_and_is_labelled(helper, "/helper")


def test_a_helper_waiting_for_approval_is_told_so_and_cannot_go_on_duty(browser, hub):
    with hub.db.transaction() as s:
        s.scalars(select(User).where(User.username == "helper3")).one().approved = False
    helper = log_in(browser, hub, "helper3")
    expect(helper.get_by_test_id("not-approved")).to_be_visible()
    expect(helper.get_by_test_id("duty-toggle")).to_be_disabled()
    expect(helper.get_by_test_id("duty-toggle")).to_have_attribute("aria-pressed", "false")
    helper.get_by_test_id("profile-save").click()  # the profile can be filled in meanwhile
    expect(helper.get_by_test_id("profile-saved")).to_be_visible()


def test_the_helper_sees_the_photo_the_student_attached(browser, hub, tmp_path):
    picture = tmp_path / "opgave.png"
    Image.new("RGB", (320, 200), (30, 120, 200)).save(picture)

    student = log_in(browser, hub, "student3")
    ask(student, hub, "Se billedet af opgaven", grade="10", attach=picture)
    expect(student.get_by_test_id("queue-position")).to_have_text("1")

    helper = log_in(browser, hub, "helper1")
    go_on_duty(helper)
    image = helper.get_by_test_id("offer-image")
    expect(image).to_be_visible()
    helper.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=offer-image]');"
        " return img && img.complete && img.naturalWidth === 320; }"
    )
