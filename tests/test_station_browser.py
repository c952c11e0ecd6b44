"""The helper station's shift and duty messages in headless Chromium against a real hub: the
reminder before a shift appears live, a swap offer appears live, the hub taking the helper off
duty is shown with its reason and the switch is disabled, also after a reload and for a helper
not yet approved."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from hub.accounts.models import Role, User
from tests.hubclient import advance_clock
from tests.test_browser import browser, go_on_duty, log_in  # noqa: F401 (a fixture)
from tests.test_shifts import Staff, add_user, shifts, user_id  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

EXPIRED = (
    "Tjekket af din børneattest er udløbet. Bed din koordinator om at tjekke den igen, før du "
    "går på vagt."
)


def test_the_station_shows_the_reminder_and_why_the_hub_took_the_helper_off_duty(
    browser,  # noqa: F811 (the fixtures)
    hub,
    shifts,  # noqa: F811
):
    shift = shifts[0]
    Staff(hub.url, "helper1").post("/shifts/signup", key=shift.key)
    page = log_in(browser, hub, "helper1")
    assert page.url.endswith("/helper")
    reminder = page.get_by_test_id("shift-reminder")
    expect(reminder).to_be_hidden()
    go_on_duty(page)

    # The check runs out the day after the reminder.
    reminded_at = shift.starts_at - timedelta(minutes=45)
    with hub.db.transaction() as s:
        helper = s.scalar(select(User).where(User.username == "helper1"))
        assert helper is not None
        helper.certificate_expires_on = reminded_at.date() + timedelta(days=1)
    advance_clock(hub.url, (reminded_at - datetime.now(UTC)).total_seconds())
    expect(reminder).to_be_visible()
    expect(reminder).to_have_text(
        re.compile(r"Din vagt starter kl\. 15:00 \(om 4[45] minutter\)\.")
    )

    # Two days on, housekeeping takes the helper off duty and says why, live.
    advance_clock(hub.url, 2 * 24 * 3600)
    message = page.get_by_test_id("duty-message")
    expect(message).to_be_visible(timeout=15_000)
    expect(message).to_contain_text("børneattest er udløbet")
    toggle = page.get_by_test_id("duty-toggle")
    expect(toggle).to_be_disabled()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("duty-status")).to_have_text(EXPIRED)

    page.reload()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    expect(page.get_by_test_id("duty-toggle")).to_be_disabled()
    expect(page.get_by_test_id("duty-status")).to_have_text(EXPIRED)


def test_a_helper_not_yet_approved_sees_why_the_switch_is_off_and_a_swap_offer_arrives_live(
    browser,  # noqa: F811 (the fixtures)
    hub,
    shifts,  # noqa: F811
):
    add_user(hub, "newhelper", Role.HELPER, approved=False)
    newcomer = log_in(browser, hub, "newhelper")
    expect(newcomer.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    expect(newcomer.get_by_test_id("duty-toggle")).to_be_disabled()
    expect(newcomer.get_by_test_id("duty-status")).to_have_text(
        "En koordinator skal godkende dig, før du kan gå på vagt."
    )

    station = log_in(browser, hub, "helper2")
    expect(station.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    one = Staff(hub.url, "helper1")
    one.post("/shifts/signup", key=shifts[0].key)
    one.post("/shifts/swaps", key=shifts[0].key, to_helper_id=user_id(hub, "helper2"))
    offer = station.get_by_test_id("swap-offer-live")
    expect(offer).to_contain_text("Hjælper 1 tilbyder dig")
    expect(offer).to_contain_text("15.00–18.00")
    offer.get_by_role("link", name="Svar under Mine vagter").click()
    station.wait_for_url(re.compile(r"/shifts$"))
    expect(station.get_by_test_id("swap-offer")).to_contain_text("Hjælper 1 tilbyder dig")
