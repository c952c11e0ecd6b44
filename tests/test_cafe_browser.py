"""Running the café in Chromium, the way its staff do it: an admin sets the opening hours, a new
volunteer signs up with their organisation, the coordinator checks the certificate, approves them
and puts them on a shift, and the helper then goes on duty and finds the shift in their plan; an
admin reads the statistics of known sessions.

With LEKTIECAFE_SCREENSHOTS set to a folder (docs/screens for the README), the shift plan and the
dashboard are saved there as PNG files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.hubclient import PASSWORD
from tests.test_browser import browser, go_on_duty, log_in  # noqa: F401 (a fixture)
from tests.test_stats import PERIOD, known_sessions

pytestmark = pytest.mark.browser

NEW_HELPER = "Nadia Frivillig"


def screenshot(target: Page | Locator, name: str) -> None:
    """`target` (what a page shows, or a part of a page) saved as `name` in LEKTIECAFE_SCREENSHOTS,
    if that is set."""
    folder = os.environ.get("LEKTIECAFE_SCREENSHOTS")
    if folder:
        target.screenshot(path=str(Path(folder) / name))


def test_a_coordinator_approves_a_new_helper_and_puts_them_on_a_shift(browser, hub):  # noqa: F811
    admin = log_in(browser, hub, "admin")
    admin.get_by_role("link", name="Åbningstider").click()
    for weekday in range(7):
        admin.locator(f"[name=day{weekday}]").fill("15:00–18:00")
    admin.get_by_role("button", name="Gem åbningstider").click()
    expect(admin.get_by_test_id("notice")).to_be_visible()

    # The volunteer signs up on their own and may not go on duty yet.
    volunteer = browser.new_context(base_url=hub.url, locale="da-DK").new_page()
    volunteer.goto("/register/helper")
    volunteer.get_by_test_id("sign-up-organisation").filter(has_text="Demo-frivillige").click()
    volunteer.get_by_label("Dit navn").fill(NEW_HELPER)
    volunteer.get_by_label("Brugernavn").fill("nadia")
    volunteer.get_by_label("Adgangskode").fill(PASSWORD)
    volunteer.get_by_role("button", name="Skriv mig op").click()
    volunteer.goto("/helper")
    expect(volunteer.get_by_test_id("not-approved")).to_be_visible()
    expect(volunteer.get_by_test_id("duty-toggle")).to_be_disabled()

    # The coordinator records the certificate check and the introduction, and approves.
    coordinator = log_in(browser, hub, "coordinator1", viewport={"width": 1280, "height": 900})
    row = coordinator.get_by_test_id("user-row").filter(has_text="nadia")
    expect(row.get_by_test_id("user-approved")).to_have_text("Nej")
    approval = row.get_by_test_id("approval")
    approval.locator("summary").click()
    approval.get_by_label("Børneattest tjekket den").fill("2026-11-30")
    approval.get_by_label("Introduktion givet").check()
    approval.get_by_test_id("approve").click()
    row = coordinator.get_by_test_id("user-row").filter(has_text="nadia")
    expect(row.get_by_test_id("user-approved")).to_have_text("Ja")
    expect(row.get_by_test_id("user-checked-on")).to_have_text("2026-11-30")

    # ... and assigns the first shift of the plan; the gaps it closes are shown.
    coordinator.get_by_role("link", name="Vagter").click()
    first = coordinator.get_by_test_id("coverage-shift").first
    expect(first.get_by_test_id("coverage-helpers")).to_have_text("Ingen har vagten endnu.")
    first.get_by_test_id("assign-form").locator("select").select_option(label=NEW_HELPER)
    first.get_by_test_id("assign-form").get_by_role("button").click()
    first = coordinator.get_by_test_id("coverage-shift").first
    expect(first.get_by_test_id("coverage-helpers")).to_contain_text(NEW_HELPER)
    screenshot(coordinator, "shift-plan.png")
    heatmap = coordinator.locator("section", has=coordinator.locator("#heat-title"))
    screenshot(heatmap, "shift-heatmap.png")

    # The helper may now go on duty, and the shift is in their own plan.
    volunteer.reload()
    expect(volunteer.get_by_test_id("not-approved")).to_have_count(0)
    go_on_duty(volunteer)
    volunteer.goto("/shifts")
    mine = volunteer.get_by_test_id("shift-row").filter(
        has=volunteer.get_by_test_id("shift-mine").filter(has_text="Skrevet op")
    )
    expect(mine).to_have_count(1)
    expect(mine.get_by_test_id("shift-helpers")).to_have_text("1")


@pytest.mark.demo(students=20, helpers=1)
def test_an_admin_reads_the_dashboard_of_known_sessions(browser, hub):  # noqa: F811
    known_sessions(hub)
    admin = log_in(browser, hub, "admin", viewport={"width": 1280, "height": 900})
    admin.goto(f"/admin/stats?from={PERIOD['from']}&to={PERIOD['to']}&by=day")
    expect(admin.get_by_test_id("summary-sessions")).to_have_text("23")
    expect(admin.get_by_role("img", name=re.compile("^Sessioner pr. dag"))).to_be_visible()
    screenshot(admin.locator("main"), "dashboard.png")
