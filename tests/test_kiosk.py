"""The kiosk as a student meets it: `lektiecafe kiosk` started as a real process (pygame on SDL's
dummy video driver, the synthetic camera) against a real hub, and used only through its test
driver, the way a student taps and types. The helper is a Socket.IO client (tests.hubclient)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pygame
import pytest
import requests
from sqlalchemy import select

from appliance.visit import Options, Visit
from hub.rooms.models import Feedback
from kiosk_ui.app import App
from kiosk_ui.driver import DriverClient
from kiosk_ui.screen import Screen
from kiosk_ui.screens.ask import PhotoScreen, QuestionScreen, SubjectScreen
from kiosk_ui.screens.attract import AttractScreen, NicknameScreen
from kiosk_ui.screens.common import place_text
from kiosk_ui.screens.feedback import FeedbackScreen, ThanksScreen
from kiosk_ui.screens.overlays import Confirm, ReportDialog
from kiosk_ui.screens.room import RoomScreen
from kiosk_ui.screens.waiting import WaitingScreen
from kiosk_ui.settings import Settings
from kiosk_ui.theme import DESIGN_H, DESIGN_W
from tests.conftest import ROOT, start_hub
from tests.kiosks import StaffPage, helper_call, pair_into
from tests.test_matching import on_duty

pytestmark = pytest.mark.kiosk


@pytest.fixture
def hub_env() -> dict[str, str]:
    # Quick pairing; a student who dropped keeps the place in the queue through a hub restart.
    return {"LEKTIECAFE_PAIRING_INTERVAL_S": "1", "LEKTIECAFE_STUDENT_GRACE_S": "30"}


class Kiosk:
    """A running `lektiecafe kiosk` process and the test driver's connection to it."""

    def __init__(self, hub: Any, data_dir: Path, *extra: str, device_id: int | None = None) -> None:
        self.device_id = device_id
        self.sock = data_dir / "driver.sock"
        self.log = data_dir / "kiosk.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lektiecafe.cli",
                "kiosk",
                "--hub",
                hub.url,
                "--windowed",
                "--test-driver",
                str(self.sock),
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            cwd=ROOT,
            env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        self.driver = DriverClient(self.sock, timeout=30)

    def stop(self) -> None:
        with suppress(Exception):
            self.driver.close()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tree_text(self) -> str:
        return json.dumps(self.driver.tree(), ensure_ascii=False)


@pytest.fixture
def start_kiosk(hub: Any, tmp_path: Path) -> Iterator[Callable[..., Kiosk]]:
    """Start a kiosk; `paired=True` stores a device token first, as pairing would have."""
    started: list[Kiosk] = []

    def start(*extra: str, paired: bool = True, camera: str = "fake") -> Kiosk:
        """`camera`: "fake" (the synthetic one) or "none" (this machine has no webcam)."""
        data_dir = tmp_path / f"kiosk{len(started)}"
        device_id = None
        if paired:
            device_id = pair_into(hub, data_dir)["device_id"]
        options = ["--fake-camera"] if camera == "fake" else []
        kiosk = Kiosk(hub, data_dir, *options, *extra, device_id=device_id)
        started.append(kiosk)
        return kiosk

    yield start
    for kiosk in started:
        kiosk.stop()


def with_text(d: DriverClient, text: str, timeout: float = 20) -> str:
    """The id of the widget showing `text`, once it is on the screen."""
    deadline = time.monotonic() + timeout
    while True:
        found = [w["id"] for w in d.tree() if w["text"] == text]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {text!r} on {d.screen()}"
        time.sleep(0.1)


TAPPABLE = ("button", "keyboard_key", "text_input", "game_tile")


def big_enough_to_touch(d: DriverClient) -> None:
    """Every touch target on the screen is at least 64 px each way (the window is 1280×800)."""
    small = [w["id"] for w in d.tree() if w["kind"] in TAPPABLE and min(w["rect"][2:]) < 64]
    assert small == [], f"too small to touch on {d.screen()}: {small}"


def to_the_photo_screen(
    d: DriverClient, nickname: str = "Ali", *, live: bool = True, touch: bool = False
) -> None:
    """From the attract screen to the photo screen: name, grade 9, maths; with `live`, until
    the camera's preview shows; with `touch`, every screen on the way checked for touch sizes."""

    def check() -> None:
        if touch:
            big_enough_to_touch(d)

    d.wait_for("start")
    check()
    d.tap("start")
    d.wait_screen("nickname")
    d.type(nickname)
    d.tap("grade.9")
    check()
    d.tap("next")
    d.wait_screen("subject")
    d.tap(with_text(d, "Matematik"))
    check()
    d.tap("next")
    d.wait_screen("photo")
    if live:
        d.wait_for("preview", live=True)


def ask_for_help(d: DriverClient, nickname: str = "Ali", note: str = "brøker") -> None:
    """From the attract screen to the waiting screen: name, grade, maths, a photo, a note."""
    to_the_photo_screen(d, nickname, touch=True)
    d.tap("take")
    d.wait_for("use")  # the scan, or the photo where no page was found
    big_enough_to_touch(d)
    d.tap("use")
    d.wait_screen("question")
    d.type(note)
    big_enough_to_touch(d)
    d.tap("ask")
    d.wait_screen("waiting")
    d.wait_for("stop")
    big_enough_to_touch(d)


def test_a_place_far_back_in_the_queue_is_shown_as_about_that_place():
    """The hub rounds places beyond 20 up (docs/protocol.md); the kiosk must not show them as
    exact. Danish, the kiosk's default."""
    assert place_text(1) == "Du er den næste!"
    assert place_text(20) == "Du er nummer 20 i køen"
    assert place_text(30) == "Du er cirka nummer 30 i køen"


def test_a_new_kiosk_shows_its_code_until_staff_confirm_it(hub, start_kiosk):
    kiosk = start_kiosk(paired=False)
    d = kiosk.driver
    code = d.wait_for("pairing.code")["text"]
    qr = d.wait_for("pairing.qr")
    assert qr["text"].endswith("code=" + code)  # the QR code opens the confirm page with the code
    assert StaffPage(hub.url).confirm(code).status_code == 200
    d.wait_screen("attract", timeout=20)
    assert d.wait_for("start")["text"] == "Start"


def test_a_student_asks_for_help_with_a_photo_and_waits_in_the_queue(hub, start_kiosk):
    d = start_kiosk().driver
    d.wait_for("start")
    helper = hub.client("helper1")
    on_duty(helper)
    ask_for_help(d)

    # The place in the queue shows at once; the helper is offered the request with the photo.
    assert d.wait_for("queue.position")["text"]
    offer = helper.wait_for("offer", timeout=15)
    assert (offer["request"]["nickname"], offer["request"]["note"]) == ("Ali", "brøker")
    (photo,) = offer["request"]["attachments"]
    picture = requests.get(
        hub.url + photo["url"], headers={"Authorization": f"Bearer {helper.token}"}, timeout=10
    )
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"

    # The break room: a message goes out; one with a phone number is refused in plain words.
    d.tap("breakroom.input")
    d.type("hej alle\n")
    d.type("ring på 12345678\n")
    messages = d.wait_for("breakroom.messages")
    deadline = time.monotonic() + 15
    while not any(i["id"].startswith("blocked.") for i in messages["items"]):
        assert time.monotonic() < deadline, messages
        time.sleep(0.2)
        messages = d.wait_for("breakroom.messages")
    texts = [i["text"] for i in messages["items"]]
    assert any(t.endswith("hej alle") for t in texts)
    blocked = next(i for i in messages["items"] if i["id"].startswith("blocked."))
    assert "telefon" in blocked["text"].lower()

    # The memory game answers taps while the student waits.
    d.tap("key.hide")
    d.tap("game.tile.0")
    assert d.wait_for("game.tile.0")["text"]  # face up: its shape's name


def test_the_idle_countdown_ends_the_visit_and_wipes_the_screen(hub, start_kiosk):
    kiosk = start_kiosk("--idle-after", "4", "--idle-countdown", "3")
    d = kiosk.driver
    d.wait_for("start")
    ask_for_help(d, nickname="Zainab", note="ligninger")
    # The waiting screen shows neither name nor note; the visit is under way until the countdown.
    assert d.ok("state")["phase"] == "waiting"

    countdown = d.wait_for("idle.countdown", timeout=15)
    assert countdown["text"] in ("1", "2", "3")
    d.wait_screen("attract", timeout=15)
    assert d.ok("state")["phase"] == "idle"
    d.tap("start")  # the next student finds nothing of Zainab's
    assert d.wait_for("nickname")["text"] == ""

    # The request is gone on the hub too: a helper going on duty is offered nothing.
    helper = hub.client("helper1")
    on_duty(helper)
    helper.nothing("offer")


def test_tapping_on_keeps_the_visit_when_asked_if_still_there(start_kiosk):
    d = start_kiosk("--idle-after", "3", "--idle-countdown", "30").driver
    d.tap("start")
    d.type("Omar")
    d.wait_for("idle.here", timeout=15)
    d.tap("idle.here")
    assert d.ok("state")["overlays"] == []
    assert d.wait_for("nickname")["text"] == "Omar"


def test_the_language_button_switches_to_english_until_the_visit_ends(start_kiosk):
    d = start_kiosk().driver
    assert d.wait_for("lang")["text"] == "English"
    danish = d.wait_for("tagline")["text"]
    d.tap("lang")
    d.wait_for("lang", text="Dansk")
    assert d.wait_for("tagline")["text"] != danish
    assert d.ok("state")["lang"] == "en"
    d.tap("start")
    assert d.wait_for("title")["text"] == "What should the helper call you?"
    d.tap("back")  # the visit ends: the next student starts in Danish
    d.wait_for("lang", text="English")
    assert d.ok("state")["lang"] == "da"


def test_the_attract_screen_says_when_the_hub_is_unreachable_and_recovers(hub, start_kiosk):
    d = start_kiosk().driver
    d.wait_for("start")
    hub.process.kill()
    hub.process.wait()
    d.wait_for("offline", timeout=30)
    assert not any(w["id"] == "start" for w in d.tree())
    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)
    d.wait_for("start", timeout=60)


@pytest.mark.slow
def test_a_whole_visit_with_a_helper_from_question_to_goodbye(hub, start_kiosk):
    kiosk = start_kiosk()
    d = kiosk.driver
    d.wait_for("start")
    helper = hub.client("helper1")
    on_duty(helper)
    ask_for_help(d, nickname="Ali", note="opgave 3")
    offer = helper.wait_for("offer", timeout=15)
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    d.wait_screen("room")
    joined = helper.ok("room:join", {"room_id": room_id})
    d.wait_for("peer", text="Du taler med Hjælper 1")

    # Video: the helper's side is a media engine that makes the offer, as a helper's browser does;
    # the kiosk draws the decoded frames large, and its own camera small.
    engine = helper_call(helper, joined, room_id, (320, 240))
    try:
        d.wait_for("video.remote", timeout=30, live=True)
        d.wait_for("video.local", live=True)
    finally:
        engine.close()

    # Chat both ways.
    helper.ok("chat:send", {"room_id": room_id, "text": "Hej Ali!", "client_msg_id": "h1"})
    big_enough_to_touch(d)
    d.tap("chat.input")
    big_enough_to_touch(d)
    d.type("hej, opgave 3 er svær\n")
    got = helper.wait_for("chat:message", where=lambda m: m["from_role"] == "student")
    assert got["text"] == "hej, opgave 3 er svær"
    items = wait_items(d, "chat.messages", lambda texts: any("Hej Ali!" in t for t in texts))
    assert any(t.endswith("hej, opgave 3 er svær") for t in items)
    d.tap("key.hide")

    # A finger on the whiteboard and keys in the shared text reach the helper's document.
    helper_doc = hub.doc_socket(joined["doc_url"])
    d.drag("board", [(0.1, 0.1), (0.3, 0.5), (0.6, 0.3)])
    helper_doc.updates.get(timeout=10)
    assert len(helper_doc.strokes) == 1
    d.tap("tab.text")
    d.tap("doc")
    d.type("3/4 æø")
    helper_doc.wait_text("3/4 æø")
    assert d.wait_for("doc")["text"] == "3/4 æø"
    d.tap("key.hide")

    # The helper ends the session: feedback, thank you, and back to the start with nothing left.
    helper.ok("room:end", {"room_id": room_id})
    d.wait_screen("feedback")
    assert d.wait_for("hint")["text"] == "Hjælper 1 har afsluttet samtalen."
    big_enough_to_touch(d)
    d.tap("rating.5")
    d.tap("comment")
    d.type("tak")
    d.tap("send")
    d.wait_screen("thanks")
    d.tap("done")
    d.wait_for("start")
    tree = kiosk.tree_text()
    assert "Ali" not in tree and "opgave" not in tree and "Hjælper 1" not in tree

    deadline = time.monotonic() + 15
    while True:
        with hub.db.transaction() as s:
            rows = s.scalars(select(Feedback)).all()
            given = [(f.rating, f.comment) for f in rows]
        if (5, "tak") in given or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (5, "tak") in given


def wait_items(d: DriverClient, list_id: str, done: Callable[[list[str]], bool]) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        texts = [i["text"] for i in d.wait_for(list_id)["items"]]
        if done(texts):
            return texts
        assert time.monotonic() < deadline, texts
        time.sleep(0.2)


def test_without_a_camera_the_student_is_told_and_can_still_ask(start_kiosk):
    d = start_kiosk(camera="none").driver  # this machine has no webcam
    to_the_photo_screen(d, live=False)
    preview = d.wait_for("preview")
    assert not preview["live"] and "kameraet virker ikke" in preview["text"].lower()
    assert not d.wait_for("take")["enabled"]
    d.tap("skip")
    d.tap("ask")
    d.wait_screen("waiting")


def test_the_visit_carries_on_after_the_hub_restarts(hub, start_kiosk):
    d = start_kiosk().driver
    d.wait_for("start")
    ask_for_help(d)
    hub.process.kill()
    hub.process.wait()
    assert "forbindelse" in d.wait_for("connection.text", timeout=30)["text"]
    assert d.screen() == "waiting"  # the student can go on playing meanwhile
    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)
    deadline = time.monotonic() + 60
    while any(w["id"] == "connection.text" for w in d.tree()):
        assert time.monotonic() < deadline, "still not connected"
        time.sleep(0.2)
    assert d.screen() == "waiting"
    helper = hub.client("helper1")
    on_duty(helper)
    assert helper.wait_for("offer", timeout=15)["request"]["nickname"] == "Ali"


def test_staff_restart_the_kiosk_program_from_the_hub(hub, start_kiosk):
    kiosk = start_kiosk()
    kiosk.driver.wait_for("start")
    staff = StaffPage(hub.url)
    answer = staff.post(f"/admin/devices/{kiosk.device_id}/command", name="restart_kiosk")
    assert answer.status_code == 200
    # The kiosk stops between visits with the status that makes systemd start it again.
    assert kiosk.process.wait(30) == 75


def test_a_screen_the_kiosk_leaves_goes_at_once_with_what_was_typed_on_it(tmp_path, monkeypatch):
    """Not whenever the garbage collector runs: a screen's widgets refer back to it (their taps),
    so the kiosk drops them when it leaves the screen or closes an overlay. In this process, on
    SDL's dummy driver, with a kiosk that is not paired."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    visit = Visit(Options(data_dir=tmp_path, fake_camera=True))
    visit.open()
    app = App(visit, Settings(), pygame.display.set_mode((DESIGN_W, DESIGN_H)))
    screens: list[Callable[[App], Screen]] = [
        NicknameScreen,
        SubjectScreen,
        PhotoScreen,
        QuestionScreen,
        WaitingScreen,
        RoomScreen,
        FeedbackScreen,
        ThanksScreen,
    ]
    gc.collect()
    gc.disable()
    try:
        for make in screens:
            screen = make(app)
            app.show(screen)
            app.open(ReportDialog(app, lambda: None))
            for layer in app.layers:
                layer.refresh()
            left = [weakref.ref(layer) for layer in (screen, *app.overlays)]
            del screen
            app.show(AttractScreen(app))
            assert [ref() for ref in left] == [None, None], make
        confirm = Confirm(app, "?", "yes", "no", lambda: None)
        app.open(confirm)
        confirm.refresh()
        closed = weakref.ref(confirm)
        app.close(confirm)
        del confirm
        assert closed() is None
    finally:
        gc.enable()
        visit.close()
        pygame.quit()
