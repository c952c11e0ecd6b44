"""The fleet as site staff and admins see it: real `lektiecafe kiosk` processes (SDL's dummy video
driver) against a real hub, the kiosks page in headless Chromium and over plain HTTP. Staff restart
a kiosk from the page and watch it come back, unpair one and see it refused at once, push settings
that reach a running kiosk, read the history of problems, and admins see kiosks that have gone
silent; staff of another site and other roles can do none of it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from appliance.state import KioskState
from hub import clock
from hub.devices.models import Device
from hub.realtime.models import Connection
from tests.conftest import start_hub
from tests.kiosks import StaffPage, ask_for_code, pair, pair_into, paired_kiosk
from tests.test_admin import _find, alerts, row, rows, texts
from tests.test_browser import browser, log_in  # noqa: F401 (a fixture)
from tests.test_kiosk import Kiosk
from tests.test_kiosk_browser import until

pytestmark = pytest.mark.kiosk

HEALTHY = {"version": "1.0", "uptime_s": 60, "camera_ok": True, "disk_free_mb": 5000, "load": 0.1}


@pytest.fixture
def hub_env() -> dict[str, str]:
    return {"LEKTIECAFE_PAIRING_INTERVAL_S": "1"}


@pytest.fixture
def kiosks(hub: Any, tmp_path: Path) -> Iterator[Callable[..., Kiosk]]:
    """Start a kiosk process in `data_dir` (the same one again: the same device after a restart)."""
    started: list[Kiosk] = []

    def start(data_dir: Path, *extra: str, device_id: int | None = None) -> Kiosk:
        kiosk = Kiosk(hub, data_dir, *extra, device_id=device_id)
        started.append(kiosk)
        return kiosk

    yield start
    for kiosk in started:
        kiosk.stop()


def reloaded(page: Page) -> Page:
    page.reload()
    return page


def listed(staff: StaffPage, **match: str) -> dict[str, str]:
    return row(staff.page().text, "device", **match)


# ---------------------------------------------------------------------------------------------
# Commands and history, in Chromium


@pytest.mark.browser
def test_staff1_restarts_a_kiosk_from_the_page_and_the_history_shows_it_came_back(
    browser,  # noqa: F811 (the fixture imported above)
    hub,
    kiosks,
    tmp_path,
):
    data_dir = tmp_path / "kiosk"
    device_id = pair_into(hub, data_dir)["device_id"]
    # This machine has no webcam: the kiosk runs without one, and staff see that.
    first = kiosks(data_dir, device_id=device_id)
    first.driver.wait_for("start")

    page = log_in(browser, hub, "staff1", locale="en-GB")
    page.goto("/admin/devices")
    page.get_by_role("button", name="English").click()  # an English browser still gets Danish
    kiosk_row = page.locator(f'[data-testid="device-row"][data-device-id="{device_id}"]')
    problems = kiosk_row.get_by_test_id("device-problems")
    until(
        "the first heartbeat", lambda: reloaded(page) and "None yet" not in kiosk_row.inner_text()
    )
    expect(kiosk_row.get_by_test_id("device-status")).to_have_text("Online")
    expect(kiosk_row.get_by_test_id("device-health")).to_contain_text("Camera: not working")
    expect(problems).to_contain_text("The camera stopped working")
    expect(problems).to_contain_text("The kiosk program started")

    kiosk_row.get_by_test_id("command-restart_kiosk").click()
    expect(page.get_by_test_id("notice")).to_have_text(
        "Command sent. The kiosk's answer shows in the list."
    )
    assert first.process.wait(30) == 75  # systemd starts it again (Restart=on-failure)
    page.reload()
    expect(kiosk_row.get_by_test_id("device-command")).to_have_text(
        "Restart the kiosk program: done"
    )

    # It comes back, with the camera plugged in this time.
    second = kiosks(data_dir, "--fake-camera", device_id=device_id)
    second.driver.wait_for("start")
    until(
        "the restart in the history",
        lambda: reloaded(page) and problems.inner_text().count("The kiosk program started") == 2,
    )
    kinds = [
        li.get_attribute("data-kind") for li in problems.get_by_test_id("device-problem").all()
    ]
    assert kinds == ["camera_back", "started", "camera_lost", "started"], kinds  # newest first
    expect(kiosk_row.get_by_test_id("device-health")).to_contain_text("Camera: works")

    # The phone-sized page works too: every control is there and nothing needs scrolling sideways.
    page.set_viewport_size({"width": 375, "height": 740})
    page.reload()
    expect(kiosk_row.get_by_test_id("command-reboot")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_a_kiosk_tells_how_long_it_could_not_reach_the_hub(hub, kiosks, tmp_path):
    data_dir = tmp_path / "kiosk"
    device_id = pair_into(hub, data_dir)["device_id"]
    d = kiosks(data_dir, "--fake-camera", device_id=device_id).driver
    d.wait_for("start")
    hub.process.kill()
    hub.process.wait()
    # "Reconnecting" turns "offline" after 10 s: from then on it counts as a problem.
    until("offline", lambda: d.ok("state")["connection"] == "offline", timeout=30)
    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)
    d.wait_for("start", timeout=60)
    staff = StaffPage(hub.url)
    history = until(
        "the outage in the history",
        lambda: [p for p in texts(staff.page().text, "problem-text") if "reach the hub" in p],
    )
    assert len(history) == 1
    seconds = history[0].removeprefix("Could not reach the hub for ").split()
    assert seconds[1] == "seconds" and int(seconds[0]) >= 10, history


# ---------------------------------------------------------------------------------------------
# Unpairing


def test_an_unpaired_kiosk_is_refused_within_5_seconds_and_shows_the_pairing_code(
    hub, kiosks, tmp_path
):
    data_dir = tmp_path / "kiosk"
    paired = pair_into(hub, data_dir)
    kiosk = kiosks(data_dir, "--fake-camera", device_id=paired["device_id"])
    kiosk.driver.wait_for("start")
    with hub.db.transaction() as s:
        kiosk_user = s.get(Device, paired["device_id"]).user_id
        assert s.scalar(select(Connection.sid).where(Connection.user_id == kiosk_user))

    staff = StaffPage(hub.url)
    done = staff.post(f"/admin/devices/{paired['device_id']}/revoke")
    unpaired_at = time.monotonic()
    assert texts(done.text, "notice") == ["The kiosk is unpaired. To use it again, pair it anew."]
    kiosk.driver.wait_screen("pairing", timeout=5)
    assert time.monotonic() - unpaired_at < 5
    with hub.db.transaction() as s:  # its connection is closed, and it made no new one
        assert s.scalar(select(Connection.sid).where(Connection.user_id == kiosk_user)) is None
    kiosk.driver.wait_for("pairing.code")  # a new code, for pairing it anew
    assert listed(staff, name="Kiosk")["status"] == "Unpaired"


# ---------------------------------------------------------------------------------------------
# Settings pushed from the hub


def test_settings_from_the_hub_reach_a_running_kiosk_and_are_kept_on_it(hub, kiosks, tmp_path):
    data_dir = tmp_path / "kiosk"
    device_id = pair_into(hub, data_dir)["device_id"]
    kiosk = kiosks(data_dir, "--fake-camera", device_id=device_id)
    d = kiosk.driver
    d.wait_for("start")
    assert d.widget("notice") is None
    danish = d.wait_for("tagline")["text"]

    staff = StaffPage(hub.url)
    saved = staff.post(
        "/admin/devices/sites/1/settings",
        lang="en",
        idle_s="45",
        countdown_s="",
        room_idle_s="900",
        notice="Closed on Friday 12 December",
    )
    assert texts(saved.text, "notice") == [
        "Saved. The site's kiosks use the settings within a few seconds."
    ]
    assert d.wait_for("notice", timeout=10)["text"] == "Closed on Friday 12 December"
    d.wait_for("lang", text="Dansk")  # the attract screen is in English now
    assert d.wait_for("tagline")["text"] != danish
    state = d.ok("state")
    assert state["lang"] == "en"
    assert state["settings"] == {
        "lang": "en",
        "idle_s": 45,
        "countdown_s": 15,  # not set on the hub: the kiosk's own
        "room_idle_s": 900,
        "notice": "Closed on Friday 12 December",
    }

    # The kiosk's own settings come before its site's; a blank one is the site's again.
    staff.post(f"/admin/devices/{device_id}/settings", idle_s="30", notice="Only this kiosk")
    until("the kiosk's own settings", lambda: d.ok("state")["settings"]["idle_s"] == 30)
    assert d.wait_for("notice")["text"] == "Only this kiosk"
    staff.post(f"/admin/devices/{device_id}/settings", idle_s="", notice="")
    until("the site's again", lambda: d.ok("state")["settings"]["idle_s"] == 45)
    assert d.ok("state")["settings"]["room_idle_s"] == 900

    # While a student is at the screen (from the nickname on) `provision update` waits.
    marker = data_dir / "visit-active"
    assert not marker.exists()
    d.tap("start")
    d.wait_screen("nickname")
    until("the marker", marker.exists)
    assert marker.read_text() == str(kiosk.process.pid)
    staff.post(f"/admin/devices/{device_id}/command", name="restart_kiosk")
    time.sleep(2)
    assert kiosk.process.poll() is None  # the restart waits for the student
    d.tap("back")
    assert kiosk.process.wait(30) == 75  # ... and then happens
    assert not marker.exists()

    # Kept on the device: a restart without the hub still has them.
    kept = KioskState(data_dir)
    assert kept.hub_settings.notice == "Closed on Friday 12 December"
    assert kept.hub_settings.idle_s == 45
    kept.close()


def test_settings_are_checked_and_only_the_sites_own_staff_change_them(hub):
    staff = StaffPage(hub.url)
    page = staff.post("/admin/devices/sites/1/settings", idle_s="5", notice="x" * 201)
    assert page.status_code == 400
    assert alerts(page.text) == [
        "Please fill in or correct: Seconds without a touch before “Are you still there?”, "
        "Notice on the start screen."
    ]
    assert 'value="5"' in page.text  # what was typed stays
    assert staff.post("/admin/devices/sites/1/settings", lang="fr").status_code == 400

    kiosk = pair(hub, name="Nord")
    admin = StaffPage(hub.url, "admin")
    admin.post(
        "/admin/users",
        username="staff2",
        display_name="Personale 2",
        role="site_staff",
        site_id="2",
        password="demo-password",
    )
    staff2 = StaffPage(hub.url, "staff2")
    for path in (
        "/admin/devices/sites/1/settings",
        f"/admin/devices/{kiosk['device_id']}/settings",
    ):
        answer = staff2.post(path, notice="Ours now")
        assert answer.status_code == 404, path
    assert site_forms(staff2.page().text) == ["2"]
    assert site_forms(admin.page().text) == ["1", "2", "3", "4"]  # an admin sets every site's
    assert "Ours now" not in admin.page().text


def site_forms(html: str) -> list[str]:
    """The sites whose kiosk settings the page offers to change."""
    return sorted(str(node.attrs["data-site-id"]) for node in _find(html, "site-settings"))


# ---------------------------------------------------------------------------------------------
# Kiosks gone silent


def test_a_kiosk_silent_for_more_than_10_minutes_is_flagged_for_admins(hub):
    quiet = paired_kiosk(hub, name="Stille kiosk")
    quiet.ok("device:heartbeat", HEALTHY)
    recent = paired_kiosk(hub, name="Lige gået")
    recent.ok("device:heartbeat", HEALTHY)
    quiet.close()
    recent.close()
    admin = StaffPage(hub.url, "admin")
    assert texts(admin.http.get(hub.url + "/admin").text, "offline-kiosk") == []

    now = clock.now()
    with hub.db.transaction() as s:  # as if the heartbeats had stopped that long ago
        for name, ago in (("Stille kiosk", 11), ("Lige gået", 9)):
            s.execute(
                update(Device)
                .where(Device.name == name)
                .values(
                    heartbeat_at=now - timedelta(minutes=ago),
                    last_seen_at=now - timedelta(minutes=ago),
                )
            )
    overview = admin.http.get(hub.url + "/admin").text
    assert texts(overview, "offline-kiosk") == [
        "Stille kiosk at Demo-skole Nord: no sign of life for 11 minutes"
    ]
    flagged = [r["name"] for r in rows(admin.page().text, "device") if "flag" in r]
    assert flagged == ["Stille kiosk"]
    staff = StaffPage(hub.url)  # site staff see the flag on their kiosks page
    assert listed(staff, name="Stille kiosk")["flag"] == "No sign of life for 11 minutes"


# ---------------------------------------------------------------------------------------------
# The site a kiosk was set up for (`provision install --site`)


def test_a_kiosk_set_up_for_a_site_is_offered_to_that_sites_staff_only(
    hub, kiosks, tmp_path, monkeypatch
):
    # What `provision install --site` leaves in the kiosk unit's environment.
    monkeypatch.setenv("LEKTIECAFE_SITE_CODE", "BIBLIOTEK-2026")
    kiosk = kiosks(tmp_path / "kiosk", "--fake-camera")
    code = kiosk.driver.wait_for("pairing.code")["text"]

    admin = StaffPage(hub.url, "admin")
    found = admin.page(code)
    assert texts(found.text, "pending-site-hint")
    assert '<option value="3" selected>Demo-bibliotek</option>' in found.text

    staff1 = StaffPage(hub.url)  # Demo-skole Nord
    for attempt in (staff1.page(code), staff1.confirm(code)):
        assert attempt.status_code == 403
        assert alerts(attempt.text) == [
            "This kiosk was set up for another site. Staff of that site or an admin can pair it."
        ]
    assert admin.confirm(code, site_id="3").status_code == 200
    kiosk.driver.wait_screen("attract", timeout=20)
    assert listed(admin, site="Demo-bibliotek")["name"].startswith("Kiosk")

    # An unknown code is ignored without a word: anyone may ask for a pairing code.
    unknown = ask_for_code(hub, site_code="NO-SUCH-CODE")
    assert staff1.page(unknown["user_code"]).status_code == 200
