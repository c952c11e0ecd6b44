"""The kiosk's appliance (everything on the device that is not pixels) against a real hub process:
local state, pairing, the Visit facade the kiosk UI uses from question to goodbye, real aiortc
calls with the synthetic camera, the health agent and recovery after the hub restarts."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from pycrdt import Map
from sqlalchemy import select

from appliance.doc import DocReplica, diff_text
from appliance.doclink import DocLink, socket_url
from appliance.media import MediaEngine, latency_ms, read_time, stamp_time
from appliance.pairing import PairingDenied
from appliance.state import Identity, KioskState
from appliance.visit import Options, Visit
from hub.devices.models import Device as DeviceRow
from hub.devices.models import DeviceCommand, KioskVisit
from hub.rooms.models import Feedback
from tests.conftest import start_hub
from tests.hubclient import Client
from tests.kiosks import StaffPage, helper_call, pair_into
from tests.test_matching import on_duty

SMALL = (320, 240)  # video in tests: small and quick to encode


@pytest.fixture
def hub_env() -> dict[str, str]:
    # A kiosk polls for its pairing every second; a student who dropped keeps the place in the
    # queue for 30 s (the hub's default is 60 s), long enough for a hub restart.
    return {"LEKTIECAFE_PAIRING_INTERVAL_S": "1", "LEKTIECAFE_STUDENT_GRACE_S": "30"}


def wait_until(condition: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what or condition}")


@dataclass
class Kiosk:
    visit: Visit
    device_id: int
    data_dir: Path
    restarts: list[float]


def kiosk_options(hub: Any, data_dir: Path) -> Options:
    return Options(data_dir=data_dir, hub_url=hub.url, fake_camera=True, video_size=SMALL)


@pytest.fixture
def kiosk(hub: Any, tmp_path: Path) -> Iterator[Kiosk]:
    """A paired kiosk (paired the way staff do it), its Visit open and connected."""
    data_dir = tmp_path / "kiosk"
    paired = pair_into(hub, data_dir)
    restarts: list[float] = []
    visit = Visit(kiosk_options(hub, data_dir), on_restart=lambda: restarts.append(time.time()))
    visit.open()
    try:
        wait_until(lambda: visit.snapshot().connection == "connected", what="connected")
        yield Kiosk(visit, paired["device_id"], data_dir, restarts)
    finally:
        visit.close()


def subject(visit: Visit, key: str = "math") -> int:
    catalog = visit.catalog().result(10)
    return next(s.id for s in catalog.subjects if s.key == key)


def restart_hub(hub: Any) -> None:
    """Kill the hub process and start a new one on the same port and database."""
    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait()
    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)


def in_room_with_helper(hub: Any, visit: Visit, nickname: str = "Ali") -> tuple[Client, str]:
    visit.start(nickname, 9, "en").result(15)
    helper = hub.client("helper1")
    on_duty(helper)
    visit.ask(subject(visit), None, "fractions", None).result(15)
    offer = helper.wait_for("offer", timeout=15)
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    wait_until(lambda: visit.snapshot().phase == "in_room", what="in_room")
    return helper, room_id


def chat_texts(visit: Visit) -> list[str]:
    return [line.text for line in visit.snapshot().chat]


# ---- on the device alone ----------------------------------------------------------------------


def test_state_and_outbox_survive_a_restart_of_the_kiosk(tmp_path):
    state = KioskState(tmp_path)
    state.hub_url = "https://hub.example/"
    state.store_identity(Identity("secret-token", 7, 3, "Demo-skole Nord"))
    first = state.enqueue("room:report", {"room_id": "r1", "text": "rude"}, visit_id=11)
    state.enqueue("visit:end", {}, visit_id=11)
    state.close()

    again = KioskState(tmp_path)
    assert again.hub_url == "https://hub.example"
    assert again.identity == Identity("secret-token", 7, 3, "Demo-skole Nord")
    assert [(i.event, i.visit_id) for i in again.outbox()] == [
        ("room:report", 11),
        ("visit:end", 11),
    ]
    again.remove(first.id)
    assert [i.event for i in again.outbox()] == ["visit:end"]
    again.remove_visit(11)
    again.forget_identity()
    assert again.outbox() == [] and again.identity is None
    again.close()


def test_the_replica_stores_the_smallest_edit_of_the_text():
    assert diff_text("hello world", "hello big world") == (6, 0, "big ")
    assert diff_text("abcdef", "abef") == (2, 2, "")
    assert diff_text("same", "same") == (4, 0, "")
    replica, updates = DocReplica(), []
    replica.on_update = updates.append
    for text in ("før", "før og efter", "fø og efter", "æ ø å 😀 fordi", "😀 fordi", "😀 fordi"):
        replica.set_text(text)  # pycrdt counts positions in UTF-8 bytes
        assert replica.text == text
    assert len(updates) == 5  # the same text again is no change


def test_two_media_engines_call_each_other_and_the_picture_carries_its_time():
    """The kiosk's engine answers, a second engine takes the helper's offering role; each side
    decodes the other's synthetic camera and reads the capture time back from the picture."""
    stamped = np.zeros((SMALL[1], SMALL[0], 3), dtype=np.uint8)
    stamp_time(stamped, 123456789)
    assert read_time(stamped) == 123456789

    helper = MediaEngine(fake=True, size=SMALL, fps=15, polite=False)
    student = MediaEngine(fake=True, size=SMALL, fps=15)
    helper.start()
    student.start()
    try:
        assert student.camera_ok  # the synthetic camera counts as a camera when asked for
        student.start_call([], "all", helper.signal)
        helper.start_call([], "all", student.signal)
        latencies = []
        deadline = time.monotonic() + 30
        while len(latencies) < 10 and time.monotonic() < deadline:
            frame = student.remote.rgb()
            if frame is not None:
                assert frame.shape == (SMALL[1], SMALL[0], 3)
                latency = latency_ms(frame)
                if latency is not None and (not latencies or latency != latencies[-1]):
                    latencies.append(latency)
            time.sleep(0.05)
        assert len(latencies) == 10, latencies
        assert sorted(latencies)[5] < 1000, latencies  # loopback: well under a second
        wait_until(lambda: helper.remote.rgb() is not None, what="video at the helper")
        assert read_time(helper.remote.rgb()) is not None
        assert student.rtc_state == helper.rtc_state == "connected"
        photo = student.snapshot_jpeg()
        assert photo is not None and photo[:2] == b"\xff\xd8"
    finally:
        helper.close()
        student.close()
    assert not [t for t in threading.enumerate() if t.name == "media"]
    assert student.remote.rgb() is None and student.local.rgb() is None


# ---- pairing -----------------------------------------------------------------------------------


def hand_over_threads() -> int:
    return sum(t.name == "hub-messages" for t in threading.enumerate())


def test_a_new_kiosk_pairs_when_staff_confirm_its_code_and_then_connects(hub, tmp_path):
    threads_before = hand_over_threads()
    visit = Visit(kiosk_options(hub, tmp_path))
    visit.open()
    try:
        assert visit.snapshot().paired is False
        assert visit.snapshot().connection == "unpaired"
        paired = visit.pair("Library kiosk")
        pairing = wait_until(
            lambda: (p := visit.snapshot().pairing) and p.status == "waiting" and p
        )
        assert len(pairing.user_code) == 9 and pairing.user_code[4] == "-"
        assert pairing.verification_uri_complete.endswith(pairing.user_code)
        assert len(pairing.qr) == len(pairing.qr[0]) > 21  # a square QR code with its margin
        assert 0 < pairing.expires_in_s <= 600
        assert StaffPage(hub.url).confirm(pairing.user_code).status_code == 200
        paired.result(20)
        wait_until(lambda: visit.snapshot().connection == "connected", what="connected")
        assert visit.snapshot().paired is True
    finally:
        visit.close()
    # A kiosk runs for months: its closed connections leave no thread behind.
    wait_until(lambda: hand_over_threads() == threads_before, what="hand-over threads ended")
    state = KioskState(tmp_path)  # the identity is on disk for the next start
    assert state.identity is not None and state.identity.site_name
    state.close()


def test_a_kiosk_staff_turn_down_is_told_so(hub, tmp_path):
    visit = Visit(kiosk_options(hub, tmp_path))
    visit.open()
    try:
        paired = visit.pair()
        pairing = wait_until(
            lambda: (p := visit.snapshot().pairing) and p.status == "waiting" and p
        )
        staff = StaffPage(hub.url)
        assert staff.post("/admin/devices/deny", code=pairing.user_code).status_code == 200
        with pytest.raises(PairingDenied):
            paired.result(20)
        assert visit.snapshot().pairing.status == "denied"
        assert visit.snapshot().pairing.message
    finally:
        visit.close()


def test_an_unpaired_kiosk_goes_back_to_pairing(hub, kiosk):
    staff = StaffPage(hub.url)
    assert staff.post(f"/admin/devices/{kiosk.device_id}/revoke").status_code == 200
    wait_until(lambda: kiosk.visit.snapshot().connection == "unpaired", what="unpaired")
    assert kiosk.visit.snapshot().paired is False
    wait_until(lambda: "device_token" not in (kiosk.data_dir / "kiosk.json").read_text())


# ---- a visit -----------------------------------------------------------------------------------


def test_a_kiosk_visit_from_question_to_goodbye(hub, kiosk):
    visit = kiosk.visit
    visit.start("Ali", 9, "en").result(15)
    view = visit.snapshot()
    assert (view.phase, view.nickname, view.lang) == ("asking", "Ali", "en")

    catalog = visit.catalog().result(10)
    maths = next(s for s in catalog.subjects if s.key == "math")
    assert maths.names["da"] and maths.names["en"]
    assert catalog.grades == (8, 9, 10)
    wait_until(lambda: visit.local_frame() is not None, what="a preview frame")
    photo = visit.snapshot_jpeg()
    assert photo is not None

    helper = hub.client("helper1")
    on_duty(helper)
    visit.ask(maths.id, None, "fractions", photo).result(15)
    assert visit.snapshot().phase in ("waiting", "in_room")

    # The helper sees the nickname and the photographed assignment.
    offer = helper.wait_for("offer", timeout=15)
    assert offer["request"]["nickname"] == "Ali"
    assert offer["request"]["note"] == "fractions"
    (attachment,) = offer["request"]["attachments"]
    picture = requests.get(
        hub.url + attachment["url"],
        headers={"Authorization": f"Bearer {helper.token}"},
        timeout=10,
    )
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"

    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    wait_until(lambda: visit.snapshot().phase == "in_room", what="in_room")
    joined = helper.ok("room:join", {"room_id": room_id})
    assert joined["peer"]["display_name"] == "Ali"
    wait_until(lambda: visit.snapshot().peer_present, what="helper present")
    assert visit.snapshot().peer_name

    # Video both ways: the helper's side is a second engine in the offering role.
    engine = helper_call(helper, joined, room_id, SMALL)
    try:
        wait_until(
            lambda: (f := visit.remote_frame()) is not None and read_time(f) is not None,
            timeout=30,
            what="the helper's video on the kiosk",
        )
        assert visit.remote_frame().shape == (SMALL[1], SMALL[0], 3)
        wait_until(
            lambda: (f := engine.remote.rgb()) is not None and read_time(f) is not None,
            timeout=30,
            what="the kiosk's video at the helper",
        )
        assert visit.snapshot().rtc_state == "connected"
    finally:
        engine.close()

    # Chat both ways, and a refused line says why.
    visit.send_chat("Hi, I need help")
    got = helper.wait_for("chat:message", where=lambda m: m["text"] == "Hi, I need help")
    assert got["from"] == "Ali"
    helper.ok("chat:send", {"room_id": room_id, "text": "Sure!", "client_msg_id": "h1"})
    wait_until(lambda: "Sure!" in chat_texts(visit), what="helper's chat line")
    mine = next(line for line in visit.snapshot().chat if line.text == "Hi, I need help")
    assert mine.mine and not mine.pending
    visit.send_chat("call me on 12 34 56 78")
    blocked = wait_until(
        lambda: next((x for x in visit.snapshot().chat if x.blocked_reason), None),
        what="a blocked line",
    )
    assert blocked.blocked_reason == "phone"
    assert "phone numbers" in blocked.blocked_message  # in the visit's language

    # The shared text both ways over the document socket, and a stroke in the browser's shape.
    helper_doc = hub.doc_socket(joined["doc_url"])
    visit.set_text("2/4 = 1/2")
    helper_doc.wait_text("2/4 = 1/2")
    helper_doc.write(lambda d: d.text.insert(len(str(d.text)), " right"))
    wait_until(lambda: visit.snapshot().doc_text == "2/4 = 1/2 right", what="helper's text")

    handle = visit.add_stroke([10, 20, 30, 40], "#d62828", 6)
    visit.extend_stroke(handle, [50, 60])
    wait_until(
        lambda: len(helper_doc.strokes) == 1 and len(helper_doc.strokes[0]["points"]) == 6,
        what="the stroke at the helper",
    )
    wait_until(lambda: visit.snapshot().doc_unsaved == 0, what="the kiosk's changes stored")
    stroke = helper_doc.strokes[0]
    assert isinstance(stroke, Map)
    assert (stroke["mode"], stroke["color"], stroke["width"]) == ("pen", "#d62828", 6)
    assert list(stroke["points"]) == [10, 20, 30, 40, 50, 60]
    assert visit.snapshot().strokes[0].points == (10, 20, 30, 40, 50, 60)

    # The helper ends; the student gives feedback and leaves; nothing of the visit is left.
    helper.ok("room:end", {"room_id": room_id})
    wait_until(lambda: visit.snapshot().phase == "ended", what="ended")
    assert visit.snapshot().room_ended_by == "helper"
    visit.feedback(5, "Tak").result(10)
    visit.finish()
    view = visit.snapshot()
    assert (view.phase, view.nickname, view.chat, view.doc_text, view.strokes) == (
        "idle",
        "",
        (),
        "",
        (),
    )
    assert visit.remote_frame() is None

    def visit_ended() -> bool:
        with hub.db.transaction() as s:
            row = s.scalar(select(KioskVisit).where(KioskVisit.device_id == kiosk.device_id))
            return row is not None and row.ended_at is not None

    wait_until(visit_ended, what="the visit ended on the hub")
    with hub.db.transaction() as s:
        ratings = s.scalars(select(Feedback.rating).where(Feedback.room_id == room_id)).all()
    assert 5 in ratings
    assert "Ali" not in (kiosk.data_dir / "kiosk.json").read_text()


def test_the_document_link_asks_for_a_fresh_ticket_when_the_hub_refuses_its_own(hub, kiosk):
    """A DocLink on its own against the hub, with the helper's ticket spoilt at first (4401)."""
    helper, room_id = in_room_with_helper(hub, kiosk.visit)
    doc_url = helper.ok("room:join", {"room_id": room_id})["doc_url"]
    other = hub.doc_socket(doc_url)
    lock, replica, renewed, changes = threading.RLock(), DocReplica(), [], []

    def renew() -> None:
        renewed.append(True)
        link.use(socket_url(hub.url, doc_url))

    def text() -> str:
        with lock:
            return replica.text

    link = DocLink(replica, lock, changed=lambda: changes.append(True), renew=renew)
    try:
        link.use(socket_url(hub.url, doc_url.replace("ticket=", "ticket=spoilt")))
        with lock:
            replica.set_text("skrevet før forbindelsen")
            assert link.unsaved == 1
        other.wait_text("skrevet før forbindelsen")
        wait_until(lambda: link.unsaved == 0, what="stored")
        other.write(lambda d: d.text.insert(0, "> "))
        wait_until(lambda: changes and text() == "> skrevet før forbindelsen", what="changed")
        assert renewed == [True]
    finally:
        link.close()


def test_a_student_can_cancel_and_ask_again(hub, kiosk):
    visit = kiosk.visit
    visit.start("Sara", 8).result(15)
    visit.ask(subject(visit), None, "", None).result(15)
    view = visit.snapshot()
    assert view.phase == "waiting" and view.queue_position == 1
    assert view.no_helper  # nobody on duty: no estimate
    visit.send_breakroom("hej alle")
    wait_until(
        lambda: any(x.text == "hej alle" and not x.pending for x in visit.snapshot().breakroom),
        what="break-room line acknowledged",
    )
    visit.cancel().result(10)
    assert visit.snapshot().phase == "asking"
    visit.finish()
    assert visit.snapshot().phase == "idle"


def test_the_visit_resumes_by_itself_after_the_hub_restarts(hub, kiosk):
    visit = kiosk.visit
    visit.start("Omar", 10).result(15)
    visit.ask(subject(visit), None, "algebra", None).result(15)
    assert visit.snapshot().phase == "waiting"

    restart_hub(hub)
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    time.sleep(1)
    assert visit.snapshot().phase == "waiting"  # the hub still had the request

    helper = hub.client("helper1")
    on_duty(helper)
    offer = helper.wait_for("offer", timeout=15)
    assert offer["request"]["note"] == "algebra"
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    wait_until(lambda: visit.snapshot().phase == "in_room", what="in_room")
    helper.ok("room:join", {"room_id": room_id})

    # A second restart during the room: the kiosk joins the room again on its own.
    restart_hub(hub)
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    helper = hub.client("helper1")
    helper.ok("room:join", {"room_id": room_id})
    visit.send_chat("still here")
    helper.wait_for("chat:message", timeout=15, where=lambda m: m["text"] == "still here")
    assert visit.snapshot().phase == "in_room"


def test_feedback_given_while_the_hub_is_down_waits_in_the_outbox(hub, kiosk):
    visit = kiosk.visit
    helper, room_id = in_room_with_helper(hub, visit, "Lina")
    helper.ok("room:end", {"room_id": room_id})
    wait_until(lambda: visit.snapshot().phase == "ended", what="ended")

    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait()
    wait_until(lambda: visit.snapshot().connection != "connected", what="the drop noticed")
    visit.feedback(4, "good help").result(10)  # queued: nothing to wait for
    visit.finish()
    assert visit.snapshot().phase == "idle"
    outbox = (kiosk.data_dir / "kiosk.json").read_text()
    assert "good help" in outbox and "visit:end" in outbox and "Lina" not in outbox

    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)

    def delivered() -> bool:
        with hub.db.transaction() as s:
            ratings = s.scalars(select(Feedback.rating).where(Feedback.room_id == room_id)).all()
            visit_row = s.scalar(select(KioskVisit).where(KioskVisit.device_id == kiosk.device_id))
            return 4 in ratings and visit_row is not None and visit_row.ended_at is not None

    wait_until(delivered, timeout=30, what="feedback and visit:end delivered")
    wait_until(lambda: "good help" not in (kiosk.data_dir / "kiosk.json").read_text())


def test_the_agent_reports_health_and_carries_out_commands(hub, kiosk):
    def device() -> DeviceRow:
        with hub.db.transaction() as s:
            row = s.get(DeviceRow, kiosk.device_id)
            assert row is not None
            s.expunge(row)
            return row

    beat = wait_until(lambda: (d := device()).heartbeat_at is not None and d, what="heartbeat")
    assert beat.camera_ok is True and beat.version and beat.disk_free_mb > 0

    staff = StaffPage(hub.url)

    def command(name: str) -> DeviceCommand:
        page = staff.post(f"/admin/devices/{kiosk.device_id}/command", name=name)
        assert page.status_code == 200, page.text[-500:]

        def done() -> DeviceCommand | None:
            with hub.db.transaction() as s:
                row = s.scalars(
                    select(DeviceCommand)
                    .where(DeviceCommand.device_id == kiosk.device_id)
                    .order_by(DeviceCommand.id.desc())
                ).first()
                if row is None or row.name != name or row.done_at is None:
                    return None
                s.expunge(row)
                return row

        return wait_until(done, what=f"{name} done")

    assert command("reload_config").ok is True
    reboot = command("reboot")
    assert reboot.ok is False and "refused" in reboot.detail
    assert command("restart_kiosk").ok is True
    wait_until(lambda: kiosk.restarts, what="the restart")
