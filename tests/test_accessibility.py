"""Every page of every role, checked with axe-core (tests/axe.py) in headless Chromium against a
real hub: no serious or critical violation, with every collapsed form opened. And a student who
uses only the keyboard asks for help, meets the helper in the room and gives feedback."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.axe import axe_violations, describe
from tests.test_browser import ask, go_on_duty, log_in, subject_id
from tests.test_reports import reported_room
from tests.test_room_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    MEDIA,
    chromium,
    close_pages,
    media_browser,
    say,
)

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}}

# Each role's pages, found from the blueprints (GET routes that render a page for that role).
PAGES = {
    "student": ["/student", "/me/data", "/privacy", "/help/new", "/help/mine"],
    "helper": ["/helper", "/shifts", "/welcome", "/help/new", "/help/mine"],
    "coordinator1": ["/admin", "/admin/reports", "/shifts/coverage", "/help/desk"],
    "staff1": ["/admin", "/admin/stats", "/admin/devices", "/help/desk"],
    "admin": [
        "/admin",
        "/admin/catalog",
        "/admin/sites",
        "/admin/organisations",
        "/admin/users",
        "/admin/stats",
        "/admin/schedule",
        "/admin/devices",
        "/admin/reports",
        "/admin/audit",
        "/shifts/coverage",
        "/help/desk",
    ],
    "anonymous": [
        "/login",
        "/register",
        "/register/helper",
        "/privacy",
        "/help/new",
        "/help/follow",
        "/no-such-page",
    ],
}

OPEN_EVERYTHING = "() => document.querySelectorAll('details').forEach((d) => (d.open = true))"


class Findings:
    """What axe found, page by page; asserted once at the end so one run lists everything."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def check(self, page: Page, what: str) -> None:
        page.evaluate(OPEN_EVERYTHING)
        violations = axe_violations(page)
        if violations:
            self.found.append(f"{what} ({page.url}):\n{describe(violations)}")

    def visit(self, page: Page, path: str) -> None:
        page.goto(path)
        expect(page.locator("main h1:visible").first).to_be_visible()
        self.check(page, path)

    def assert_none(self) -> None:
        assert not self.found, "\n\n".join(self.found)


def anonymous(browser: Browser, hub, **context: object) -> Page:
    page = browser.new_context(base_url=hub.url, locale="da-DK", **context).new_page()
    page.set_default_timeout(10_000)
    return page


def ticket_path(page: Page) -> str:
    """Opens a helpdesk ticket from the page's user; its address."""
    page.goto("/help/new")
    page.get_by_test_id("ticket-category-camera").check()
    page.get_by_test_id("ticket-send").click()
    page.goto("/help/mine")
    link = page.locator("a[href^='/help/tickets/']").first
    href = link.get_attribute("href")
    assert href
    return href


@pytest.mark.parametrize("who", list(PAGES))
def test_every_page_of_every_role_has_no_serious_accessibility_problem(
    media_browser,  # noqa: F811
    hub,
    who,
):
    findings = Findings()
    if who == "anonymous":
        page = anonymous(media_browser, hub)
        for path in PAGES[who]:
            findings.visit(page, path)
        # A ticket sent without an account: the page with its code.
        page.goto("/help/new")
        page.get_by_test_id("ticket-category-login").check()
        page.get_by_test_id("ticket-send").click()
        findings.check(page, "the helpdesk's code for someone without an account")
        for path in ("/login", "/register", "/student"):
            findings.visit(anonymous(media_browser, hub, **PHONE), path)
        findings.assert_none()
        return

    if who in ("coordinator1", "admin"):
        reported_room(hub)
    username = {"student": "student1", "helper": "helper1"}.get(who, who)
    page = log_in(media_browser, hub, username, **DESKTOP)
    for path in PAGES[who]:
        findings.visit(page, path)
    findings.visit(page, ticket_path(page))
    if who in ("coordinator1", "admin"):
        page.goto("/admin/reports")
        page.get_by_test_id("report-link").first.click()
        findings.check(page, "a report from a room")
    if who == "student":
        page.goto("/student")
        ask(page, hub, "Brøker")
        expect(page.get_by_test_id("queue-position")).to_have_text("1")
        findings.check(page, "the break room")
        for game in page.get_by_role("tab").all():
            game.click()
            findings.check(page, f"the break room's game {game.inner_text()}")
    if who == "helper":
        page.goto("/helper")
        go_on_duty(page)
        findings.check(page, "the helper station on duty")
    # The same pages in English, on a phone.
    page.set_viewport_size(PHONE["viewport"])
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    for path in PAGES[who][:2]:
        findings.visit(page, path)
    if who == "student":  # last: the page after a student deleted their account
        page.goto("/me/data")
        page.get_by_test_id("delete-confirm").check()
        page.get_by_test_id("delete-account").click()
        expect(page.get_by_test_id("deleted")).to_be_visible()
        findings.check(page, "the page after deleting one's account")
    findings.assert_none()


def test_the_room_and_the_feedback_have_no_serious_accessibility_problem(
    media_browser,  # noqa: F811
    hub,
):
    findings = Findings()
    student = log_in(media_browser, hub, "student1", **PHONE, **MEDIA)
    ask(student, hub, "Opgave 4")
    student.get_by_test_id("breakroom-input").fill("Er der andre der venter?")
    student.get_by_test_id("breakroom-send").click()
    expect(student.get_by_test_id("breakroom-log")).to_contain_text("Er der andre der venter?")
    findings.check(student, "the break room with a message")
    helper = log_in(media_browser, hub, "helper1", **DESKTOP, **MEDIA)
    go_on_duty(helper)
    expect(helper.get_by_test_id("offer")).to_be_visible()
    expect(helper.get_by_test_id("moderation-log")).to_contain_text("Er der andre der venter?")
    findings.check(helper, "the helper station with an offer and the break room's messages")
    helper.get_by_test_id("offer-accept").click()
    for page in (student, helper):
        expect(page.get_by_test_id("room")).to_have_attribute("data-state", "joined")
        expect(page.get_by_test_id("peer-status")).to_have_attribute("data-state", "present")
    say(helper, "Hej")
    expect(student.get_by_test_id("chat-log")).to_contain_text("Hej")
    findings.check(student, "the student's room on a phone")
    findings.check(helper, "the helper's room")
    for tab in student.get_by_role("tab").all():
        tab.click()
        findings.check(student, f"the student's room on a phone, tab {tab.inner_text()}")
    student.get_by_test_id("report").click()
    findings.check(student, "the report form")
    student.get_by_test_id("end-session").click()
    findings.check(student, "the question before ending")
    student.get_by_test_id("end-confirm").click()
    for page, who in ((student, "student"), (helper, "helper")):
        expect(page.get_by_test_id("room-ended")).to_be_visible()
        findings.check(page, f"the {who}'s feedback form")
        page.get_by_test_id("feedback-submit").click()
        expect(page.get_by_test_id("feedback-error")).not_to_be_empty()
        findings.check(page, f"the {who}'s feedback form with an error")
    findings.assert_none()


# The focused element's test id, and whether its focus can be seen (an outline, as app.css
# draws for :focus-visible, or a focus ring the element's own label draws).
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return { testid: null, seen: false };
  const ring = (e) => e && getComputedStyle(e).outlineStyle !== "none";
  const seen = ring(el) || ring(el.closest("label"));
  return { testid: el.dataset.testid || el.id || el.tagName, seen };
}"""


def tab_to(page: Page, testid: str, backwards: bool = False, most: int = 40) -> None:
    """Presses Tab (Shift+Tab backwards) until the element is focused; its focus must be seen."""
    for _ in range(most):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focus = page.evaluate(FOCUS)
        if focus["testid"] == testid:
            assert focus["seen"], f"{testid} has the focus but shows no focus ring"
            return
    raise AssertionError(f"{most} presses of Tab never reached {testid}")


def choose(page: Page, testid: str, value: str) -> None:
    """A select with the focus: the arrow key moves down to the option with that value."""
    select = page.get_by_test_id(testid)
    for _ in range(20):
        if select.input_value() == value:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{testid} has no option {value}")


def test_a_student_asks_meets_the_helper_and_gives_feedback_with_the_keyboard_only(
    media_browser,  # noqa: F811
    hub,
):
    student = log_in(media_browser, hub, "student1", **PHONE, **MEDIA)
    expect(student.get_by_test_id("ask-subject")).to_be_visible()
    keys = student.keyboard

    # Ask: subject and note, then Enter on the button.
    tab_to(student, "ask-subject")
    choose(student, "ask-subject", subject_id(hub))
    tab_to(student, "ask-note")
    keys.type("Opgave 4, jeg forstår ikke")
    tab_to(student, "ask-submit")
    keys.press("Enter")
    expect(student.get_by_test_id("queue-position")).to_have_text("1")

    helper = log_in(media_browser, hub, "helper1", **DESKTOP, **MEDIA)
    go_on_duty(helper)
    helper.get_by_test_id("offer-accept").click()
    expect(student.get_by_test_id("room")).to_have_attribute("data-state", "joined")

    # In the room: the tabs with the arrow keys, then the chat and the notes.
    tab_to(student, "tab-video")
    keys.press("ArrowRight")
    expect(student.get_by_test_id("tab-chat")).to_be_focused()
    expect(student.get_by_test_id("tab-chat")).to_have_attribute("aria-selected", "true")
    tab_to(student, "chat-input")
    keys.type("Hej, jeg er her")
    keys.press("Enter")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Hej, jeg er her")
    tab_to(student, "tab-chat", backwards=True)
    keys.press("ArrowRight")
    expect(student.get_by_test_id("tab-notes")).to_have_attribute("aria-selected", "true")
    tab_to(student, "doc-text")
    keys.type("x = 2")
    expect(helper.get_by_test_id("doc-text")).to_have_value("x = 2")

    # End the session: the question, then Yes.
    tab_to(student, "end-session", backwards=True)
    keys.press("Enter")
    expect(student.get_by_test_id("end-cancel")).to_be_focused()  # the safe answer first
    tab_to(student, "end-confirm", backwards=True)
    keys.press("Space")
    expect(student.get_by_test_id("room-ended")).to_be_visible()
    expect(student.locator("#room-ended-title")).to_be_focused()

    # Feedback: the rating with Space and the arrow keys, a comment, Enter to send.
    student.keyboard.press("Tab")
    rating = student.get_by_test_id("feedback-rating")
    expect(rating.get_by_label("1")).to_be_focused()
    keys.press("Space")
    for _ in range(4):
        keys.press("ArrowRight")
    expect(rating.get_by_label("5")).to_be_checked()
    tab_to(student, "feedback-comment")
    keys.type("Godt")
    tab_to(student, "feedback-submit")
    keys.press("Enter")
    expect(student.get_by_test_id("feedback-done")).to_be_visible()
    expect(student.get_by_test_id("feedback-done")).to_be_focused()
    assert re.search("Tak", student.get_by_test_id("feedback-done").inner_text())
