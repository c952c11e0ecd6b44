"""The learning room over real Socket.IO connections to a running hub: signalling, chat and the
shared document between the two members only, ending, reports, feedback, coming back after a
drop, and nothing acknowledged lost when the hub is killed."""

from __future__ import annotations

import base64
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pycrdt
import pytest
from sqlalchemy import func, select

from hub import clock, housekeeping
from hub.attachments.models import Attachment
from hub.config import HubConfig
from hub.db import Database
from hub.matching.models import HelpRequest
from hub.rooms.models import DocSnapshot, DocUpdate, Feedback, Report, Room, RoomMessage
from lektiecafe import ysync
from tests.conftest import RunningHub, both_backends, start_hub, stop
from tests.hubclient import Client, DocSocket
from tests.test_matching import ask, on_duty


def matched(hub: RunningHub, student: str = "student1", helper: str = "helper1"):
    """A student and a helper matched into a room, both joined. Returns (student, helper, room)."""
    s, h = hub.client(student), hub.client(helper)
    on_duty(h)
    ask(s, hub, note="Andengradsligninger")
    offer = h.wait_for("offer")
    room_id = h.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    assert s.wait_for("match")["room_id"] == room_id
    s.ok("room:join", {"room_id": room_id})
    h.ok("room:join", {"room_id": room_id})
    return s, h, room_id


def open_doc(
    hub: RunningHub, member: Client, room_id: str, sync: bool = True, state: bytes = b""
) -> DocSocket:
    """The member's document socket, with the ticket of a fresh `room:join`."""
    doc_url = member.ok("room:join", {"room_id": room_id})["doc_url"]
    return hub.doc_socket(doc_url, sync=sync, state=state)


def joined_text(member: Client, room_id: str) -> str:
    """The document's text as `room:join` gives it (the whole state, base64)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    doc.apply_update(base64.b64decode(member.ok("room:join", {"room_id": room_id})["doc_state"]))
    return str(doc.get("text", type=pycrdt.Text))


def type_text(text: str) -> Callable[[DocSocket], None]:
    def fn(d: DocSocket) -> None:
        d.text += text

    return fn


@both_backends
def test_chat_goes_both_ways_is_stored_once_and_comes_back_on_join(hub):
    student, helper, room = matched(hub)
    sent = student.ok(
        "chat:send", {"room_id": room, "text": "Hej! Opgave 4", "client_msg_id": "c1"}
    )
    seen = helper.wait_for("chat:message")
    assert seen["text"] == "Hej! Opgave 4" and seen["from"] == "Elev 1"
    assert seen["from_role"] == "student" and seen["msg_id"] == sent["msg_id"]
    helper.ok("chat:send", {"room_id": room, "text": "Lad os se på den", "client_msg_id": "h1"})
    assert student.wait_for("chat:message", where=lambda m: m["from_role"] == "helper")
    helper.wait_for("chat:message", where=lambda m: m["from_role"] == "helper")  # its own, too

    again = student.ok(
        "chat:send", {"room_id": room, "text": "Hej! Opgave 4", "client_msg_id": "c1"}
    )
    assert again["msg_id"] == sent["msg_id"]
    helper.nothing("chat:message")

    history = student.ok("room:join", {"room_id": room})["chat_history"]
    assert [m["text"] for m in history] == ["Hej! Opgave 4", "Lad os se på den"]


def test_contact_details_are_not_delivered_and_the_sender_is_told_why(hub):
    student, helper, room = matched(hub)
    for text, reason in (
        ("skriv til mig på ali@example.com", "email"),
        ("ring 20 30 40 50", "phone"),
        ("følg mig på snapchat", "handle"),
        ("se www.example.dk", "link"),
    ):
        answer = student.call("chat:send", {"room_id": room, "text": text, "client_msg_id": text})
        assert answer["ok"] is False and answer["error"]["code"] == "blocked"
        assert answer["error"]["details"]["reason"] == reason
        blocked = student.wait_for("chat:blocked")
        assert blocked["client_msg_id"] == text and blocked["reason"] == reason
        assert blocked["message"]
    helper.nothing("chat:message")
    assert student.ok("room:join", {"room_id": room})["chat_history"] == []


def test_a_flood_of_chat_messages_is_slowed_down(hub):
    student, _helper, room = matched(hub)
    answers = [
        student.call("chat:send", {"room_id": room, "text": f"hej {i}", "client_msg_id": str(i)})
        for i in range(12)
    ]
    assert all(a["ok"] for a in answers[:10])
    assert answers[10]["error"]["code"] == "rate_limited"


@both_backends
def test_document_updates_reach_the_other_side_and_the_whole_document_comes_back_on_join(hub):
    student, helper, room = matched(hub)
    mine, theirs = open_doc(hub, student, room), open_doc(hub, helper, room)
    assert mine.write(type_text("x² + 2x = 0")) > 0  # the seq it is stored under
    theirs.wait_text("x² + 2x = 0")
    theirs.write(lambda d: d.strokes.append(pycrdt.Map({"color": "red", "pts": [1, 2]})))
    assert mine.updates.get(timeout=10) and len(mine.strokes) == 1
    time.sleep(0.3)
    assert mine.updates.empty() and theirs.updates.qsize() == 1  # nobody gets their own back

    assert joined_text(helper, room) == "x² + 2x = 0"
    late = open_doc(hub, helper, room)  # a new socket gets the whole document in sync step 2
    assert str(late.text) == "x² + 2x = 0" and len(late.strokes) == 1


def test_edits_made_while_disconnected_reach_the_hub_when_the_socket_opens_again(hub):
    student, helper, room = matched(hub)
    theirs = open_doc(hub, helper, room)
    mine = open_doc(hub, student, room)
    mine.write(type_text("Før. "))
    mine.close()
    mine.change(type_text("Skrevet uden net."))  # the page edits on while the socket is closed
    again = open_doc(hub, student, room, sync=False, state=mine.doc.get_update())
    # The hub's sync step 1 asks for what it lacks; the answer (step 2) is stored like an update.
    assert isinstance(again.answer(), int)
    theirs.wait_text("Før. Skrevet uden net.")
    assert joined_text(student, room) == "Før. Skrevet uden net."


def test_signalling_is_relayed_to_the_other_member_only_and_checked(hub):
    student, helper, room = matched(hub)
    offer = {"type": "offer", "sdp": "v=0\r\n"}
    helper.ok("rtc:signal", {"room_id": room, "kind": "offer", "data": offer})
    got = student.wait_for("rtc:signal")
    assert got == {"room_id": room, "kind": "offer", "data": offer, "from": "helper"}
    helper.nothing("rtc:signal")
    candidate = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    student.ok("rtc:signal", {"room_id": room, "kind": "candidate", "data": candidate})
    assert helper.wait_for("rtc:signal")["data"]["candidate"] == candidate["candidate"]
    student.ok("rtc:signal", {"room_id": room, "kind": "candidate", "data": None})
    assert helper.wait_for("rtc:signal")["data"] is None

    for bad in (
        {"room_id": room, "kind": "offer", "data": {"type": "answer", "sdp": "v=0"}},
        {"room_id": room, "kind": "offer", "data": "not an object"},
        {"room_id": room, "kind": "candidate", "data": {"candidate": 5}},
        {"room_id": room, "kind": "shout", "data": {}},
        {"room_id": room, "kind": "answer"},
    ):
        answer = helper.call("rtc:signal", bad)
        assert answer["ok"] is False and answer["error"]["code"] == "invalid", bad
    student.nothing("rtc:signal")
    # the room still works
    helper.ok("rtc:signal", {"room_id": room, "kind": "restart", "data": {}})
    assert student.wait_for("rtc:signal")["kind"] == "restart"


def test_malformed_document_updates_are_refused_and_the_document_is_unharmed(hub):
    student, helper, room = matched(hub)
    mine, theirs = open_doc(hub, student, room), open_doc(hub, helper, room)
    mine.write(type_text("hej"))
    theirs.wait_text("hej")
    for bad in (b"\x07\xff\xff\xff garbage", b"", b"x" * 600_000):
        mine.send_update(bad)
        answer = mine.answer()
        assert isinstance(answer, dict) and answer["code"] == "invalid", answer
        assert answer["message"]
    for frame in (b"\x00\x02\x7f", b"\x09\x00", b"\x00", b"\x00\x00\x05\x01"):
        mine.send(frame)  # no sync message, a length past the end, a state vector Yrs refuses
        answer = mine.answer()
        assert isinstance(answer, dict) and answer["code"] == "invalid", frame
    mine.send("text, not binary")
    assert mine.answer()["code"] == "invalid"  # type: ignore[index]
    time.sleep(0.3)
    assert theirs.updates.qsize() == 1
    # the socket and the room still work
    mine.write(type_text("!"))
    theirs.wait_text("hej!")
    assert joined_text(helper, room) == "hej!"


def test_the_document_messages_are_the_bytes_docs_protocol_names():
    """docs/protocol.md's table, as hub/static/js/doc.js reads it (lib0: varUint, varString)."""
    assert ysync.stored_message(300) == bytes([100, 0xAC, 0x02])
    error = ysync.error_message("conflict", "Rummet er slut")
    assert error[:2] == bytes([101, len(error) - 2])
    assert ysync.read(error) == ysync.Refused("conflict", "Rummet er slut")
    assert ysync.read(ysync.stored_message(300)) == ysync.Stored(300)
    assert ysync.step1_message(b"sv") == b"\x00\x00\x02sv"
    assert ysync.step2_message(b"up") == b"\x00\x01\x02up"
    assert ysync.read(pycrdt.create_update_message(b"up")) == ysync.Sync(ysync.UPDATE, b"up")
    assert ysync.read(b"\x01\x00") is None  # awareness: not used
    for unreadable in (b"", b"\x00", b"\x09\x00", b"\x65\x02{}"):
        with pytest.raises(ysync.Unreadable):
            ysync.read(unreadable)


def test_a_document_socket_needs_a_ticket_for_its_own_room(hub):
    student, _helper, room = matched(hub)
    doc_url = student.ok("room:join", {"room_id": room})["doc_url"]
    path, ticket = doc_url.split("?ticket=")
    _, other_helper, other_room = matched(hub, "student2", "helper2")
    other_url = other_helper.ok("room:join", {"room_id": other_room})["doc_url"]
    refused = (
        path,  # no ticket
        f"{path}?ticket=forged{ticket[6:]}",
        f"/rooms/{other_room}/doc?ticket={ticket}",  # this room's ticket elsewhere
        f"{path}?ticket={other_url.split('?ticket=')[1]}",  # and the other way round
    )
    for url in refused:
        code, reason = hub.doc_socket(url, sync=False).wait_closed()
        assert code == 4401 and reason, url
    assert hub.doc_socket(doc_url).synced.is_set()


def test_a_third_user_is_refused_every_room_event(hub):
    _student, _helper, room = matched(hub)
    intruders = [hub.client("student2"), hub.client("helper2")]
    events: dict[str, dict[str, Any]] = {
        "room:join": {},
        "rtc:signal": {"kind": "restart", "data": {}},
        "chat:send": {"text": "hej", "client_msg_id": "x"},
        "room:end": {},
        "room:report": {"text": "hm"},
        "feedback:submit": {"rating": 5},
    }
    for intruder in intruders:
        for event, payload in events.items():
            answer = intruder.call(event, {"room_id": room, **payload})
            assert answer["ok"] is False and answer["error"]["code"] == "forbidden", event
    admin = hub.client("admin")
    assert admin.call("room:join", {"room_id": room})["error"]["code"] == "forbidden"
    assert intruders[0].call("room:join", {"room_id": "nope"})["error"]["code"] == "not_found"


def test_ending_tells_both_pauses_the_helper_and_feedback_and_reports_still_work(hub):
    student, helper, room = matched(hub)
    admin, coordinator = hub.client("admin"), hub.client("coordinator1")
    helper.ok("room:end", {"room_id": room})
    for side in (student, helper):
        ended = side.wait_for("room:ended")
        assert ended == {"room_id": room, "reason": "ended", "by": "helper"}
    assert helper.wait_for("duty:status", where=lambda d: d["status"] == "paused")
    late = student.call("chat:send", {"room_id": room, "text": "hej", "client_msg_id": "z"})
    assert late["error"]["code"] == "conflict" and late["error"]["details"]["reason"] == "ended"
    assert student.call("room:end", {"room_id": room})["error"]["code"] == "conflict"
    doc = open_doc(hub, student, room)  # the notes can still be read, not changed
    doc.send_update(doc.change(type_text("for sent")))
    refused = doc.answer()
    assert isinstance(refused, dict) and refused["code"] == "conflict" and refused["message"]

    student.ok("feedback:submit", {"room_id": room, "rating": 5, "comment": "God hjælp"})
    student.ok("feedback:submit", {"room_id": room, "rating": 4})  # changed their mind
    helper.ok("feedback:submit", {"room_id": room, "rating": 5})
    bad = student.call("feedback:submit", {"room_id": room, "rating": 6})
    assert bad["error"]["code"] == "invalid"
    report_id = student.ok("room:report", {"room_id": room, "text": "Han var uhøflig"})["report_id"]
    assert admin.wait_for("report:new")["report_id"] == report_id
    assert coordinator.wait_for("report:new")["report_id"] == report_id
    rejoined = student.ok("room:join", {"room_id": room})
    assert rejoined["ended"] is True and rejoined["feedback_given"] is True
    with hub.db.transaction() as s:
        ratings = sorted(s.scalars(select(Feedback.rating).where(Feedback.room_id == room)))
        assert ratings == [4, 5]


def test_the_helper_is_offered_the_next_student_only_after_choosing_to_go_on(hub):
    _student, helper, room = matched(hub)
    helper.ok("room:end", {"room_id": room})
    helper.wait_for("room:ended")
    waiting = hub.client("student2")
    ask(waiting, hub)
    helper.nothing("offer")
    helper.ok("duty:set", {"status": "available"})
    assert helper.wait_for("offer")["request"]["nickname"] == "Elev 2"


def test_a_member_who_drops_and_comes_back_finds_the_room_intact(hub):
    student, helper, room = matched(hub)
    student.ok("chat:send", {"room_id": room, "text": "Er du der?", "client_msg_id": "a"})
    open_doc(hub, helper, room).write(type_text("Trin 1"))
    helper.close()
    assert student.wait_for("peer:left") == {"room_id": room}
    back = hub.client("helper1")
    assert back.wait_for("room:rejoined")["room_id"] == room
    joined = back.ok("room:join", {"room_id": room})
    assert student.wait_for("peer:back") == {"room_id": room}
    assert joined["peer_present"] is True and joined["ended"] is False
    assert joined["ice_transport_policy"] == "all" and isinstance(joined["ice_servers"], list)
    assert [m["text"] for m in joined["chat_history"]] == ["Er du der?"]
    assert joined_text(back, room) == "Trin 1"


def test_after_the_grace_period_the_room_ends_cleanly(database_url, tmp_path):
    process, url, log = start_hub(database_url, tmp_path, {"LEKTIECAFE_ROOM_GRACE_S": "1"})
    hub = RunningHub(url, Database(database_url), tmp_path, process, log)
    try:
        student, helper, room = matched(hub)
        student.close()
        helper.wait_for("peer:left")
        ended = helper.wait_for("room:ended", timeout=10)
        assert ended == {"room_id": room, "reason": "peer_gone", "by": None}
        assert helper.wait_for("duty:status", where=lambda d: d["status"] == "paused")
        back = hub.client("student1")
        back.nothing("room:rejoined")
        assert back.ok("room:join", {"room_id": room})["ended"] is True
    finally:
        stop(process)
        hub.close_clients()
        hub.db.dispose()


@both_backends
def test_nothing_acknowledged_is_lost_when_the_hub_is_killed(hub):
    student, _helper, room = matched(hub)
    doc = open_doc(hub, student, room)
    for i in range(30):
        doc.write(type_text(f"{i} "))
    for i in range(8):  # within the chat's rate limit
        student.ok("chat:send", {"room_id": room, "text": f"besked {i}", "client_msg_id": str(i)})
    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait()
    port = int(hub.url.rsplit(":", 1)[1])
    hub.process, _url, _log = start_hub(hub.db.url, hub.data_dir, port=port)
    back = hub.client("helper1")
    assert back.wait_for("room:rejoined")["room_id"] == room
    assert joined_text(back, room) == str(doc.text)
    joined = back.ok("room:join", {"room_id": room})
    assert [m["text"] for m in joined["chat_history"]] == [f"besked {i}" for i in range(8)]


def test_the_document_is_compacted_into_a_snapshot_without_losing_an_edit(database_url, tmp_path):
    env = {"LEKTIECAFE_DOC_COMPACT_EVERY": "7"}
    process, url, log = start_hub(database_url, tmp_path, env)
    hub = RunningHub(url, Database(database_url), tmp_path, process, log)
    try:
        student, helper, room = matched(hub)
        doc = open_doc(hub, student, room)
        for i in range(40):
            doc.write(type_text(f"{i},"))
        with hub.db.transaction() as s:
            assert s.get(DocSnapshot, room) is not None
            left = s.scalar(select(func.count()).where(DocUpdate.room_id == room))
            assert left < 7
        assert joined_text(helper, room) == str(doc.text)
        assert str(open_doc(hub, helper, room).text) == str(doc.text)
    finally:
        stop(process)
        hub.close_clients()
        hub.db.dispose()


def test_retention_deletes_old_chat_documents_and_attachments_but_keeps_reported_rooms(hub):
    rooms = []
    for student, helper in (("student1", "helper1"), ("student2", "helper2")):
        s, h, room = matched(hub, student, helper)
        s.ok("chat:send", {"room_id": room, "text": "hej", "client_msg_id": "1"})
        open_doc(hub, s, room).write(type_text("tekst"))
        h.ok("room:end", {"room_id": room})
        rooms.append(room)
    old, reported = rooms
    hub.client("student2").ok("room:report", {"room_id": reported, "text": "Noget var galt"})
    config = HubConfig(data_dir=hub.data_dir)
    config.attachments_dir.mkdir(parents=True, exist_ok=True)
    with hub.db.transaction() as s:
        request_id = s.get(Room, old).request_id
        s.add(
            Attachment(
                id="photo",
                owner_id=s.get(HelpRequest, request_id).student_id,
                request_id=request_id,
                mime="image/jpeg",
                size=1,
                created_at=clock.now(),
            )
        )
        (config.attachments_dir / "photo").write_bytes(b"jpeg")

    with hub.db.transaction() as s:  # 29 days later: everything is still there
        housekeeping.run(s, config, clock.now() + timedelta(days=29))
    with hub.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RoomMessage)) == 2

    with hub.db.transaction() as s:
        housekeeping.run(s, config, clock.now() + timedelta(days=31))
    with hub.db.transaction() as s:
        assert list(s.scalars(select(RoomMessage.room_id))) == [reported]
        assert list(s.scalars(select(DocUpdate.room_id).distinct())) == [reported]
        assert s.get(Attachment, "photo") is None
        assert s.get(Room, old).chat_deleted_at is not None  # the statistics keep the room
        report = s.scalar(select(Report).where(Report.room_id == reported))
        report.closed_at = clock.now()
    assert not (config.attachments_dir / "photo").exists()

    with hub.db.transaction() as s:  # once the report is closed, the clock runs for the room
        housekeeping.run(s, config, clock.now() + timedelta(days=31))
    with hub.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RoomMessage)) == 0
        assert s.scalar(select(func.count()).select_from(Report)) == 1  # kept like a ticket
    later = timedelta(days=config.ticket_retention_days + 1)
    with hub.db.transaction() as s:
        housekeeping.run(s, config, clock.now() + later)
    with hub.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Report)) == 0


@pytest.mark.parametrize(
    "payload",
    [None, [], "room", {"room_id": 5}, {"room_id": ""}, {"room_id": "x" * 40}],
)
def test_malformed_room_payloads_are_refused(hub, payload):
    student = hub.client("student1")
    for event in ("room:join", "chat:send", "rtc:signal", "room:end"):
        answer = student.call(event, payload)
        assert answer["ok"] is False and answer["error"]["code"] == "invalid", (event, payload)


def test_a_student_sees_their_room_chat_in_their_data_and_deleting_removes_it(hub):
    student, _helper, room = matched(hub)
    student.ok("chat:send", {"room_id": room, "text": "tak for hjælpen", "client_msg_id": "t"})
    web = hub.browserless()
    web.login("student1")
    assert "tak for hjælpen" in web.http.get(hub.url + "/me/data").text
    form = {"csrf_token": web.csrf("/me/data"), "confirm": "yes"}
    assert web.http.post(hub.url + "/me/delete", data=form).status_code == 200
    with hub.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(RoomMessage)) == 0
        assert s.get(Room, room) is None
