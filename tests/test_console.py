"""The main pages of every role load in headless Chromium with a clean console: no failed
request (a missing favicon was one on every page), no error answer, no console error."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, Request, Response, expect

from tests.test_browser import browser, log_in  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

MAIN_PAGES = {
    "student1": ["/student", "/me/data", "/privacy", "/help/new"],
    "helper1": ["/helper", "/shifts", "/welcome", "/help/new"],
    "coordinator1": ["/admin", "/admin/reports", "/shifts/coverage", "/help/desk"],
    "staff1": ["/admin", "/admin/devices", "/admin/stats", "/help/desk"],
    "admin": [
        "/admin",
        "/admin/users",
        "/admin/catalog",
        "/admin/sites",
        "/admin/organisations",
        "/admin/schedule",
        "/admin/stats",
    ],
    None: ["/login", "/register", "/register/helper", "/privacy", "/help/new", "/help/follow"],
}


class Console:
    """Everything that went wrong while a page was open: console errors, failed requests and
    answers of 400 or more."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        self.icons: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("requestfinished", self._finished)

    def _console(self, message: object) -> None:
        if getattr(message, "type", "") == "error":
            self.problems.append(f"console: {getattr(message, 'text', '')}")

    def _failed(self, request: Request) -> None:
        # Aborted: the test went on to the next page before this one had all it asked for.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} {request.failure}")

    def _finished(self, request: Request) -> None:
        if "favicon" in request.url:
            self.icons.append(request.url)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.url}")


def visit(page: Page, console: Console, path: str) -> None:
    seen = len(console.icons)
    page.goto(path)
    expect(page.locator("main h1").first).to_be_visible()
    # The browser fetches the page's icon after it has loaded: wait for it, so a missing one
    # shows here and not on the next page.
    page.wait_for_function("() => document.readyState === 'complete'")
    for _ in range(40):
        if len(console.icons) > seen:
            break
        page.wait_for_timeout(50)


@pytest.mark.parametrize("username", list(MAIN_PAGES), ids=lambda u: u or "anonymous")
def test_the_main_pages_of_each_role_log_nothing_wrong(browser: Browser, hub, username):  # noqa: F811
    if username is None:
        page = browser.new_context(base_url=hub.url, locale="da-DK").new_page()
        page.set_default_timeout(10_000)
    else:
        page = log_in(browser, hub, username)
    console = Console(page)
    for path in MAIN_PAGES[username]:
        visit(page, console, path)
    assert console.problems == [], "\n".join(console.problems)
    assert console.icons, "no page asked for its icon"
