"""The learning room in headless Chromium against a real hub: a student and a helper with
Chromium's fake camera and microphone see and hear each other, chat, write and draw together,
come back after a reload, end the session and give feedback."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from PIL import Image
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    WebSocketRoute,
    expect,
    sync_playwright,
)

from hub.rooms.service import document_state
from tests.test_browser import (
    CHROMIUM_ARGS,
    UNLABELLED_FIELDS,
    ask,
    assert_no_sideways_scrolling,
    go_on_duty,
    log_in,
)

pytestmark = pytest.mark.browser

MEDIA_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-device-for-media-stream",  # a test pattern and a beep instead of real devices
    "--use-fake-ui-for-media-stream",  # no permission prompt
]
MEDIA = {"permissions": ["camera", "microphone"]}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True}
SLOW = 30_000  # ms: WebRTC on a busy two-core machine

# True once the element's video has a picture and its time moves on.
VIDEO_PLAYING = """async (testid) => {
  const v = document.querySelector(`[data-testid="${testid}"]`);
  if (!v || v.videoWidth === 0 || v.readyState < 2 || v.paused) return false;
  const before = v.currentTime;
  await new Promise((resolve) => setTimeout(resolve, 400));
  return v.currentTime > before;
}"""

# How many pixels of the whiteboard have ink on them.
INKED_PIXELS = """() => {
  const c = document.querySelector('[data-testid="whiteboard"]');
  const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return n;
}"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Playwright]:
    with sync_playwright() as p:  # one per process: both browsers come from it
        yield p


@pytest.fixture(scope="module")
def media_browser(chromium: Playwright) -> Iterator[Browser]:
    """Chromium with a fake camera and microphone."""
    browser = chromium.chromium.launch(executable_path="/usr/bin/chromium", args=MEDIA_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def plain_browser(chromium: Playwright) -> Iterator[Browser]:
    """Chromium with no camera or microphone at all."""
    browser = chromium.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def close_pages(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's pages close after it: calls left running slow the next test's browser down."""
    yield
    for name in ("media_browser", "plain_browser"):
        if name in request.fixturenames:
            for context in request.getfixturevalue(name).contexts:
                context.close()


def meet(
    student_browser: Browser,
    helper_browser: Browser,
    hub,
    student_context: Mapping[str, object] | None = None,
    attach: Path | None = None,
) -> tuple[Page, Page]:
    """A student asks, a helper accepts; returns both pages once both are in the room."""
    student = log_in(student_browser, hub, "student1", **{**DESKTOP, **(student_context or {})})
    ask(student, hub, "Opgave 4: andengradsligninger", attach=attach)
    expect(student.get_by_test_id("queue-position")).to_have_text("1")
    helper = log_in(helper_browser, hub, "helper1", **DESKTOP, **MEDIA)
    go_on_duty(helper)
    helper.get_by_test_id("offer-accept").click()
    for page in (student, helper):
        expect(page.get_by_test_id("matched")).to_be_visible()
        expect(page.get_by_test_id("room")).to_have_attribute("data-state", "joined")
        expect(page.get_by_test_id("peer-status")).to_have_attribute("data-state", "present")
    return student, helper


def expect_video_from_the_other_side(page: Page) -> None:
    expect(page.get_by_test_id("rtc-state")).to_have_attribute(
        "data-state", "connected", timeout=SLOW
    )
    page.wait_for_function(VIDEO_PLAYING, arg="remote-video", timeout=SLOW, polling=250)


def say(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()


def draw(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag across the whiteboard, from and to fractions of its size."""
    board = page.get_by_test_id("whiteboard")
    board.scroll_into_view_if_needed()
    box = board.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=12)
    page.mouse.up()


def in_view(page: Page, testid: str) -> None:
    """The element is on the screen as it is, without scrolling."""
    box = page.get_by_test_id(testid).bounding_box()
    size = page.viewport_size
    assert box and size, f"{testid} is not shown"
    assert box["y"] >= 0 and box["y"] + min(box["height"], 44) <= size["height"], (
        f"{testid} is off the screen: {box}"
    )


def screenshot(page: Page, name: str) -> None:
    """What the screen shows, into LEKTIECAFE_SCREENSHOTS (docs/screens for the README) if set."""
    folder = os.environ.get("LEKTIECAFE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name))


def test_student_and_helper_see_each_other_chat_write_draw_and_come_back_after_a_reload(
    media_browser, hub, tmp_path
):
    picture = tmp_path / "opgave.png"
    Image.new("RGB", (400, 240), (30, 120, 200)).save(picture)
    student, helper = meet(media_browser, media_browser, hub, MEDIA, attach=picture)

    # Video both ways, from Chromium's fake camera.
    for page in (student, helper):
        expect(page.get_by_test_id("media-error")).to_be_hidden()
        page.wait_for_function(VIDEO_PLAYING, arg="local-video", timeout=SLOW, polling=250)
        expect_video_from_the_other_side(page)
    # The attached assignment is beside the document, for both.
    for page in (student, helper):
        expect(page.get_by_test_id("assignment-note")).to_have_text("Opgave 4: andengradsligninger")
        expect(page.get_by_test_id("assignment-image")).to_be_visible()

    # Chat both ways.
    say(student, "Hej! Jeg sidder fast i opgave 4")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Hej! Jeg sidder fast i opgave 4")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Elev 1")
    say(helper, "Hej Elev 1, lad os se på den sammen")
    expect(student.get_by_test_id("chat-log")).to_contain_text("lad os se på den sammen")
    expect(student.get_by_test_id("chat-log")).to_contain_text("Hjælper 1")

    # Contact details are refused in plain words; the typed text stays to be fixed.
    say(student, "skriv til mig på ali@example.com")
    expect(student.get_by_test_id("chat-error")).to_contain_text(re.compile("e-mail", re.I))
    expect(student.get_by_test_id("chat-input")).to_have_value("skriv til mig på ali@example.com")
    expect(student.get_by_test_id("chat-log")).not_to_contain_text("ali@example.com")
    expect(helper.get_by_test_id("chat-log")).not_to_contain_text("ali@example.com")

    # Text typed on one side appears on the other, and both can write.
    student_text = student.get_by_test_id("doc-text")
    helper_text = helper.get_by_test_id("doc-text")
    student_text.click()
    student_text.press_sequentially("x^2 - 5x + 6 = 0")
    expect(helper_text).to_have_value("x^2 - 5x + 6 = 0")
    helper_text.click()
    helper_text.press("Control+End")
    helper_text.press_sequentially("\n(x - 2)(x - 3) = 0")
    expect(student_text).to_have_value("x^2 - 5x + 6 = 0\n(x - 2)(x - 3) = 0")
    # The student's caret stays where it was while the helper writes at the end.
    student_text.press("Control+Home")
    student_text.press_sequentially("Opgave 4: ")
    expect(helper_text).to_have_value("Opgave 4: x^2 - 5x + 6 = 0\n(x - 2)(x - 3) = 0")

    # A stroke drawn on one side appears on the other.
    student.get_by_test_id("pen-red").click()
    draw(student, (0.2, 0.3), (0.7, 0.6))
    helper_board = helper.get_by_test_id("whiteboard")
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    expect(helper_board).to_have_attribute("data-strokes", "1")
    helper.wait_for_function(f"() => ({INKED_PIXELS})() > 200", polling=250)

    for page, who in ((student, "student"), (helper, "helper")):
        page.screenshot(path=f"/tmp/room-{who}-desktop.png", full_page=True)
        assert page.evaluate(UNLABELLED_FIELDS) == [], f"the {who}'s room has unlabelled fields"

    # The helper reloads: chat, notes and drawing are back, and the video reconnects.
    helper.reload()
    expect(helper.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Hej! Jeg sidder fast i opgave 4")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("lad os se på den sammen")
    expect(helper_text).to_have_value("Opgave 4: x^2 - 5x + 6 = 0\n(x - 2)(x - 3) = 0")
    expect(helper_board).to_have_attribute("data-strokes", "1")
    helper.wait_for_function(f"() => ({INKED_PIXELS})() > 200", polling=250)
    for page in (helper, student):
        expect(page.get_by_test_id("peer-status")).to_have_attribute(
            "data-state", "present", timeout=SLOW
        )
        expect_video_from_the_other_side(page)

    # What is written after the reload still reaches the other side.
    say(helper, "Nu er jeg tilbage")
    expect(student.get_by_test_id("chat-log")).to_contain_text("Nu er jeg tilbage")
    draw(helper, (0.1, 0.8), (0.9, 0.8))
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "2")

    # Clearing the whiteboard is shared too.
    helper.get_by_test_id("board-clear").click()
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "0")

    # The helper ends the session: both see it and give feedback.
    helper.get_by_test_id("end-session").click()
    helper.get_by_test_id("end-confirm").click()
    for page, rating in ((student, "5"), (helper, "4")):
        expect(page.get_by_test_id("room-ended")).to_be_visible()
        expect(page.get_by_test_id("rtc-state")).to_have_attribute("data-state", "closed")
        page.get_by_test_id("feedback-rating").get_by_label(rating).check()
        page.get_by_test_id("feedback-comment").fill("Godt")
        page.get_by_test_id("feedback-submit").click()
        expect(page.get_by_test_id("feedback-done")).to_be_visible()
    expect(student.get_by_test_id("room-ended-reason")).to_contain_text("Hjælper 1")
    expect(helper.get_by_test_id("room-ended-reason")).to_have_text("Du afsluttede sessionen.")
    expect(student.get_by_test_id("doc-text")).not_to_be_editable()
    student.screenshot(path="/tmp/room-student-ended.png", full_page=True)


def test_the_room_fits_a_phone_in_english(media_browser, hub):
    phone = {"viewport": {"width": 360, "height": 740}, **MEDIA}
    student, helper = meet(media_browser, media_browser, hub, phone)
    for page in (student, helper):
        page.set_viewport_size({"width": 360, "height": 740})
    student.get_by_role("button", name="English").click()
    expect(student.locator("html")).to_have_attribute("lang", "en")
    expect(student.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect(student.get_by_test_id("peer-status")).to_have_text("Hjælper 1 is in the room.")
    expect_video_from_the_other_side(student)
    expect_video_from_the_other_side(helper)
    # Each part on its tab, every button big enough for a finger.
    tabs = {"Video": ["mute-toggle"], "Chat": ["chat-send"], "Whiteboard": ["pen-blue"]}
    tabs["Notes"] = []
    for tab, testids in tabs.items():
        student.get_by_role("tab", name=tab).click()
        if tab == "Whiteboard":
            draw(student, (0.3, 0.3), (0.6, 0.5))
            testids.append("board-clear")
        if tab == "Notes":
            student.get_by_test_id("doc-text").fill("Notes on a phone")
        assert_no_sideways_scrolling(student, f"the student's room, tab {tab}")
        student.screenshot(path=f"/tmp/room-student-phone-{tab.lower()}.png", full_page=True)
        for testid in [*testids, "end-session", "report", "tab-video", "tab-chat", "tab-board"]:
            box = student.get_by_test_id(testid).bounding_box()
            assert box and box["height"] >= 44 and box["width"] >= 44, f"{testid}: {box}"
    expect(helper.get_by_test_id("doc-text")).to_have_value("Notes on a phone")
    expect(helper.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    assert_no_sideways_scrolling(helper, "the helper's room")
    helper.screenshot(path="/tmp/room-helper-phone.png", full_page=True)

    # A report goes to the coordinators.
    student.get_by_test_id("report").click()
    student.get_by_test_id("report-text").fill("Testing the report form")
    student.get_by_test_id("report-submit").click()
    expect(student.get_by_test_id("report-done")).to_be_visible()

    # The student reloads: a new page, so both sides need a fresh connection.
    student.reload()
    expect(student.get_by_test_id("doc-text")).to_have_value("Notes on a phone")
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    expect_video_from_the_other_side(student)
    expect_video_from_the_other_side(helper)


def test_a_student_without_camera_is_told_so_and_can_still_chat_and_write(
    plain_browser, media_browser, hub
):
    student, helper = meet(plain_browser, media_browser, hub)
    error = student.get_by_test_id("media-error")
    expect(error).to_be_visible(timeout=SLOW)
    expect(error).to_contain_text(re.compile("kamera", re.I))
    expect(student.get_by_test_id("mute-toggle")).to_be_hidden()

    say(student, "Mit kamera virker ikke, men jeg kan skrive")
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Mit kamera virker ikke")
    student.get_by_test_id("doc-text").fill("Jeg skriver her i stedet")
    expect(helper.get_by_test_id("doc-text")).to_have_value("Jeg skriver her i stedet")
    # The student still sees the helper.
    expect_video_from_the_other_side(student)
    student.screenshot(path="/tmp/room-student-no-camera.png", full_page=True)


def test_notes_chat_and_drawing_made_offline_arrive_when_the_connection_is_back(plain_browser, hub):
    student, helper = meet(plain_browser, plain_browser, hub)  # no cameras needed here
    helper.context.set_offline(True)
    expect(helper.get_by_test_id("connection")).not_to_have_attribute("data-state", "connected")

    helper.get_by_test_id("doc-text").press_sequentially("Skrevet uden net")
    say(helper, "Sendt uden net")
    draw(helper, (0.2, 0.2), (0.5, 0.4))
    expect(helper.get_by_test_id("doc-text")).not_to_have_attribute("data-pending", "0")
    expect(student.get_by_test_id("doc-text")).to_have_value("")

    helper.context.set_offline(False)
    expect(student.get_by_test_id("peer-status")).to_have_attribute(
        "data-state", "present", timeout=SLOW
    )
    expect(student.get_by_test_id("doc-text")).to_have_value("Skrevet uden net")
    expect(student.get_by_test_id("chat-log")).to_contain_text("Sendt uden net")
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    expect(helper.get_by_test_id("doc-text")).to_have_attribute("data-pending", "0")
    expect(helper.get_by_test_id("chat-log").locator(".pending")).to_have_count(0)


# Every state the notes' "saved" line shows on a page, from its first script on, in order.
RECORD_SAVED_STATES = """(() => {
  window.savedStates = [];
  new MutationObserver(() => {
    const el = document.getElementById("room-doc-saved");
    const state = el && el.dataset.state;
    if (state && state !== window.savedStates.at(-1)) window.savedStates.push(state);
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
})();"""

NOT_SAVED = "Ikke gemt endnu — gemmes når forbindelsen er tilbage"

ROOM_DATABASES = """async () => (await indexedDB.databases())
  .map((d) => d.name).filter((n) => n.startsWith("lektiecafe-doc-"))"""


def stored_document(hub, room_id: str) -> tuple[str, int]:
    """The room document as the hub has it in its database: the notes, and how many strokes."""
    with hub.db.transaction() as s:
        state, _ = document_state(s, room_id)
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(state)
    return str(doc.get("text", type=pycrdt.Text)), len(doc.get("strokes", type=pycrdt.Array))


def test_notes_and_drawing_made_offline_survive_a_reload_and_are_saved_when_the_hub_is_back(
    plain_browser, hub
):
    student, helper = meet(
        plain_browser, plain_browser, hub, student_context={"init_script": RECORD_SAVED_STATES}
    )
    room_id = student.get_by_test_id("room").get_attribute("data-room-id")
    assert room_id
    saved = student.get_by_test_id("doc-saved")
    expect(saved).to_have_attribute("data-state", "saved")
    expect(saved).to_have_text("Gemt")

    # The document socket of the student's browser can be kept from reaching the hub.
    doc_socket_blocked = True

    def doc_socket(ws: WebSocketRoute) -> None:
        if doc_socket_blocked:
            ws.close()
        else:
            ws.connect_to_server()

    student.context.route_web_socket(re.compile(r"/rooms/[^/?]+/doc"), doc_socket)

    student.context.set_offline(True)
    expect(student.get_by_test_id("connection")).not_to_have_attribute("data-state", "connected")
    student.evaluate("window.savedStates = []")
    student.get_by_test_id("doc-text").press_sequentially("Skrevet uden net")
    draw(student, (0.2, 0.2), (0.5, 0.4))
    expect(saved).to_have_attribute("data-state", "offline")
    expect(saved).to_have_text(NOT_SAVED)
    student.wait_for_timeout(1500)
    assert "saved" not in student.evaluate("window.savedStates")
    assert stored_document(hub, room_id) == ("", 0)

    # A reload with the hub still out of reach for the document: the edits come from IndexedDB.
    student.context.set_offline(False)
    student.reload()
    expect(student.get_by_test_id("room")).to_have_attribute("data-state", "joined")
    expect(student.get_by_test_id("doc-text")).to_have_value("Skrevet uden net")
    expect(student.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    expect(saved).not_to_have_attribute("data-state", "saved")
    student.wait_for_timeout(1500)
    assert "saved" not in student.evaluate("window.savedStates")
    assert stored_document(hub, room_id) == ("", 0)
    expect(helper.get_by_test_id("doc-text")).to_have_value("")

    # The hub is back: the edits go out, the hub stores them, then and only then "saved".
    doc_socket_blocked = False
    expect(helper.get_by_test_id("doc-text")).to_have_value("Skrevet uden net", timeout=SLOW)
    expect(helper.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    expect(saved).to_have_attribute("data-state", "saved", timeout=SLOW)
    expect(saved).to_have_text("Gemt")
    assert stored_document(hub, room_id) == ("Skrevet uden net", 1)
    assert student.evaluate(ROOM_DATABASES) == [f"lektiecafe-doc-{room_id}"]

    # The session ends: the browser's copy of the room goes.
    student.get_by_test_id("end-session").click()
    student.get_by_test_id("end-confirm").click()
    expect(student.get_by_test_id("room")).to_have_attribute("data-state", "ended")
    student.wait_for_function(f"({ROOM_DATABASES})().then((names) => names.length === 0)")


def test_logging_out_deletes_the_browsers_copy_of_the_room_document(plain_browser, hub):
    student, _ = meet(plain_browser, plain_browser, hub)
    student.get_by_test_id("doc-text").press_sequentially("Hemmeligt")
    expect(student.get_by_test_id("doc-saved")).to_have_attribute("data-state", "saved")
    assert len(student.evaluate(ROOM_DATABASES)) == 1
    student.get_by_test_id("logout").click()
    student.wait_for_url(re.compile(r"/login"))
    assert student.evaluate(ROOM_DATABASES) == []


# Each side's offer or answer goes out 1.5 s after the browser set it, so the candidates that
# the browser gathers meanwhile reach the other side before the description they belong to (as
# when the hub relays a small candidate before a large offer). Counts the candidates added.
LATE_DESCRIPTIONS = """(() => {
  const proto = RTCPeerConnection.prototype;
  const setLocal = proto.setLocalDescription;
  proto.setLocalDescription = async function (...args) {
    await setLocal.apply(this, args);
    await new Promise((resolve) => setTimeout(resolve, 1500));
  };
  const add = proto.addIceCandidate;
  window.candidatesAdded = 0;
  proto.addIceCandidate = async function (...args) {
    await add.apply(this, args);
    window.candidatesAdded += 1;
  };
})();"""


def test_candidates_that_overtake_the_offer_or_answer_are_kept_until_it_comes(media_browser, hub):
    complaints: list[str] = []

    def listen(page: Page, who: str) -> Page:
        def on_console(m: ConsoleMessage) -> None:
            if m.type in ("warning", "error") and re.search("candidate", m.text, re.I):
                complaints.append(f"{who}: {m.type}: {m.text}")

        page.on("console", on_console)
        return page

    student, helper = (
        listen(log_in(media_browser, hub, who, LATE_DESCRIPTIONS, **DESKTOP, **MEDIA), who)
        for who in ("student1", "helper1")
    )
    ask(student, hub, "Opgave 7")
    go_on_duty(helper)
    helper.get_by_test_id("offer-accept").click()
    for page in (student, helper):
        expect_video_from_the_other_side(page)
    assert complaints == []
    for page in (student, helper):
        assert page.evaluate("window.candidatesAdded") > 0, "no candidate of the other side used"


def test_on_a_phone_the_notes_are_one_tap_away_the_video_stays_in_view_and_new_chat_is_counted(
    media_browser, hub
):
    student, helper = meet(media_browser, media_browser, hub, {**PHONE, **MEDIA})
    expect_video_from_the_other_side(student)
    screenshot(student, "room-phone-video.png")

    # The notes: one tap on a tab that is on the screen, no scrolling.
    notes_tab = student.get_by_role("tab", name="Noter")
    in_view(student, "tab-notes")
    notes_tab.tap()
    expect(notes_tab).to_have_attribute("aria-selected", "true")
    notes = student.get_by_test_id("doc-text")
    expect(notes).to_be_visible()
    in_view(student, "doc-text")
    assert student.evaluate("window.scrollY") == 0
    # The helper stays in view, small, and still moving.
    in_view(student, "remote-video")
    student.wait_for_function(VIDEO_PLAYING, arg="remote-video", timeout=SLOW, polling=250)
    expect(student.get_by_test_id("chat-log")).to_be_hidden()
    notes.press_sequentially("x = 2")
    expect(helper.get_by_test_id("doc-text")).to_have_value("x = 2")

    # A message from the helper while the notes are open is counted on the Chat tab.
    badge = student.get_by_test_id("chat-badge")
    expect(badge).to_be_hidden()
    say(helper, "Godt, hvad så med x = 3?")
    expect(badge).to_have_text("1")
    expect(student.get_by_test_id("chat-unread")).to_have_text("1 ny besked i chatten")
    expect(student.get_by_role("tab", name="Chat")).to_have_accessible_description(
        "1 ny besked i chatten"
    )
    screenshot(student, "room-phone-notes.png")
    student.get_by_role("tab", name="Chat").tap()
    expect(student.get_by_test_id("chat-log")).to_contain_text("Godt, hvad så med x = 3?")
    expect(badge).to_be_hidden()
    expect(student.get_by_test_id("chat-unread")).to_have_text("")
    say(student, "Jeg prøver")  # her own words are not news to her
    expect(helper.get_by_test_id("chat-log")).to_contain_text("Jeg prøver")
    student.get_by_test_id("tab-notes").tap()
    expect(student.get_by_test_id("chat-log").locator(".pending")).to_have_count(0)
    expect(badge).to_be_hidden()

    # The whiteboard is one tap away too; the small video opens the call again.
    student.get_by_test_id("tab-board").tap()
    draw(student, (0.2, 0.3), (0.6, 0.5))
    expect(helper.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    in_view(student, "remote-video")
    screenshot(student, "room-phone-whiteboard.png")
    student.get_by_test_id("remote-video").tap()
    expect(student.get_by_test_id("tab-video")).to_have_attribute("aria-selected", "true")
    expect(student.get_by_test_id("mute-toggle")).to_be_visible()

    # A wide screen keeps every part in view, with no tabs.
    expect(helper.get_by_test_id("room-tabs")).to_be_hidden()
    for testid in ("remote-video", "chat-log", "doc-text", "whiteboard"):
        expect(helper.get_by_test_id(testid)).to_be_visible()
