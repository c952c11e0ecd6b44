"""The kiosk and the helper station together, the interop proof of issue 4: a student at the kiosk
(the real `lektiecafe kiosk` process with the synthetic camera, driven only through its test
driver) and a helper in headless Chromium with a fake camera meet in a room. aiortc answers
Chrome's offers, pycrdt and Yjs edit one document, the chat is the same chat; the helper cannot
tell the difference. Afterwards the kiosk holds nothing of the visit, and neither does the hub."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from hub.accounts.models import User
from hub.devices.models import KioskVisit
from kiosk_ui.driver import DriverClient
from tests.test_browser import go_on_duty, log_in
from tests.test_kiosk import ask_for_help, start_kiosk, wait_items  # noqa: F401 (a fixture)
from tests.test_room_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    INKED_PIXELS,
    MEDIA,
    SLOW,
    VIDEO_PLAYING,
    chromium,
    draw,
    expect_video_from_the_other_side,
    media_browser,
    plain_browser,
    say,
)

pytestmark = [pytest.mark.kiosk, pytest.mark.browser, pytest.mark.slow]

NICKNAME = "Yasmin"  # a name no file holds by chance
SCREENSHOTS = Path("/tmp")  # kiosk-browser-*.png: the call as both sides saw it

# The offer's photo once it has loaded: its natural size, or null.
OFFER_PHOTO = """() => {
  const img = document.querySelector('[data-testid="offer-image"]');
  return img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight]
                                                     : null;
}"""


@pytest.fixture
def hub_env() -> dict[str, str]:
    # Quick pairing; the helper has time to look at the photo before accepting.
    return {"LEKTIECAFE_PAIRING_INTERVAL_S": "1", "LEKTIECAFE_OFFER_TIMEOUT_S": "60"}


def until(what: str, check: Any, timeout: float = 20) -> Any:
    """Poll `check()` until it returns something true; its last value in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        time.sleep(0.2)


def frames_arriving(d: DriverClient, more: int = 15) -> int:
    """The kiosk decodes the helper's video: `more` new frames after the first ones (up to 30 s
    for the first on a busy machine). Returns the count reached."""
    first = until("no frames decoded on the kiosk", lambda: d.ok("state")["remote_frames"], 30)
    return int(
        until(
            f"the kiosk's frames stopped at {first}",
            lambda: (n := d.ok("state")["remote_frames"]) >= first + more and n,
            15,
        )
    )


def visit_on_the_hub(hub: Any, device_id: int) -> tuple[bool, str]:
    """(ended, nickname) of the kiosk's one visit, as the hub stores them."""
    with hub.db.transaction() as s:
        visit = s.scalars(select(KioskVisit).where(KioskVisit.device_id == device_id)).one()
        user = s.get(User, visit.user_id)
        assert user is not None
        return visit.ended_at is not None, user.display_name


def meet(d: DriverClient, helper: Page) -> None:
    """The student asks at the kiosk with a photo of the assignment; the helper on duty sees the
    photo in the offer and accepts; both are in the room."""
    d.wait_for("start")
    go_on_duty(helper)
    ask_for_help(d, nickname=NICKNAME, note="opgave 3")
    offer = helper.get_by_test_id("offer")
    expect(offer.get_by_test_id("offer-nickname")).to_have_text(NICKNAME, timeout=SLOW)
    expect(offer.get_by_test_id("offer-note")).to_have_text("opgave 3")
    width, height = helper.wait_for_function(OFFER_PHOTO, polling=250).json_value()
    assert (width, height) == (640, 480)  # the kiosk's camera picture
    helper.get_by_test_id("offer-accept").click()
    expect(helper.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect(helper.get_by_test_id("assignment-image")).to_be_visible()
    d.wait_screen("room")
    d.wait_for("peer", text="Du taler med Hjælper 1")
    expect(helper.get_by_test_id("peer-status")).to_have_attribute("data-state", "present")


def test_a_kiosk_student_and_a_helper_in_chromium_do_a_whole_session(
    hub,
    start_kiosk,  # noqa: F811
    media_browser,  # noqa: F811
):
    kiosk = start_kiosk()
    d = kiosk.driver
    helper = log_in(media_browser, hub, "helper1", **DESKTOP, **MEDIA)
    meet(d, helper)

    # Video both ways: Chrome plays the kiosk's synthetic camera, the kiosk decodes Chrome's.
    expect_video_from_the_other_side(helper)
    helper.wait_for_function(VIDEO_PLAYING, arg="local-video", timeout=SLOW, polling=250)
    frames_arriving(d)
    assert d.ok("state")["rtc"] == "connected"
    d.wait_for("video.remote", live=True)
    d.wait_for("video.local", live=True)
    size = helper.evaluate(
        "() => { const v = document.querySelector('[data-testid=remote-video]');"
        " return [v.videoWidth, v.videoHeight]; }"
    )
    assert size[0] > 0 and size[1] > 0

    # Chat both ways.
    greeting = f"Hej {NICKNAME}! Hvad driller?"
    say(helper, greeting)
    wait_items(d, "chat.messages", lambda texts: any(greeting in t for t in texts))
    d.tap("chat.input")
    d.type("hej, opgave 3 er svær\n")
    chat_log = helper.get_by_test_id("chat-log")
    expect(chat_log).to_contain_text("hej, opgave 3 er svær")
    expect(chat_log).to_contain_text(NICKNAME)
    d.tap("key.hide")

    # The whiteboard both ways: a finger on the kiosk, the mouse in Chromium.
    board = helper.get_by_test_id("whiteboard")
    d.drag("board", [(0.1, 0.1), (0.3, 0.5), (0.6, 0.3)])
    expect(board).to_have_attribute("data-strokes", "1")
    helper.wait_for_function(f"() => ({INKED_PIXELS})() > 200", polling=250)
    helper.get_by_test_id("pen-red").click()
    draw(helper, (0.2, 0.7), (0.8, 0.8))
    expect(board).to_have_attribute("data-strokes", "2")
    d.wait_for("board", strokes=2)
    d.screenshot(SCREENSHOTS / "kiosk-browser-kiosk.png")
    helper.screenshot(path=str(SCREENSHOTS / "kiosk-browser-helper.png"), full_page=True)

    # The shared text both ways: the kiosk's on-screen keyboard, then the helper's keys.
    d.tap("tab.text")
    d.tap("doc")
    d.type("3/4 af 20")
    notes = helper.get_by_test_id("doc-text")
    expect(notes).to_have_value("3/4 af 20")
    notes.click()
    notes.press("Control+End")
    notes.press_sequentially(" = 15")
    d.wait_for("doc", text="3/4 af 20 = 15")
    d.type("!")  # typed after the helper's edit: lands at the end, on both sides
    expect(notes).to_have_value("3/4 af 20 = 15!")
    d.tap("key.hide")
    d.screenshot(SCREENSHOTS / "kiosk-browser-kiosk-text.png")

    # The video still runs after all that.
    frames_arriving(d, more=10)
    helper.wait_for_function(VIDEO_PLAYING, arg="remote-video", timeout=SLOW, polling=250)

    # The helper ends the session; the kiosk asks for feedback, thanks, and starts over.
    helper.get_by_test_id("end-session").click()
    helper.get_by_test_id("end-confirm").click()
    expect(helper.get_by_test_id("room-ended")).to_be_visible()
    expect(helper.get_by_test_id("rtc-state")).to_have_attribute("data-state", "closed")
    d.wait_screen("feedback")
    assert d.wait_for("hint")["text"] == "Hjælper 1 har afsluttet samtalen."
    d.tap("rating.5")
    d.tap("send")
    d.wait_screen("thanks")
    d.tap("done")
    d.wait_for("start")

    # Nothing of the visit is left: not on the kiosk's screen or in its state, not on the hub.
    tree = kiosk.tree_text()
    traces = (NICKNAME, "opgave 3", "Hjælper 1", "3/4 af 20", "driller", "svær")
    for trace in traces:
        assert trace not in tree, f"{trace!r} is still on the kiosk's screen: {tree}"
    state = d.ok("state")
    assert (state["phase"], state["rtc"]) == ("idle", "idle")
    assert kiosk.device_id is not None
    device_id = kiosk.device_id
    until("the visit is still open on the hub", lambda: visit_on_the_hub(hub, device_id)[0])
    assert visit_on_the_hub(hub, device_id) == (True, "")  # the nickname is wiped
    # Nor in the kiosk's files (its state, outbox and log) or the hub's log.
    for path in [*kiosk.log.parent.iterdir(), hub.log]:
        if path.is_file():
            content = path.read_bytes()
            for trace in traces:
                assert trace.encode() not in content, f"{trace!r} is in {path}"


def test_a_helper_without_a_camera_sees_the_student_and_the_kiosk_says_there_is_no_camera(
    hub,
    start_kiosk,  # noqa: F811
    plain_browser,  # noqa: F811
):
    d = start_kiosk().driver
    helper = log_in(plain_browser, hub, "helper1", **DESKTOP)  # no camera, no microphone
    meet(d, helper)
    expect(helper.get_by_test_id("media-error")).to_be_visible(timeout=SLOW)
    expect_video_from_the_other_side(helper)
    # Instead of "starting the video" for ever, the student is told the helper has no camera.
    d.wait_for("video.remote", timeout=30, text="Intet kamera", live=False)
    assert d.ok("state")["rtc"] == "connected"
    say(helper, "Mit kamera virker ikke, men jeg kan se dig")
    wait_items(d, "chat.messages", lambda texts: any("jeg kan se dig" in t for t in texts))
