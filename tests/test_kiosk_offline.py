"""Nothing a student writes is lost on a flaky connection: the room screen says whether the shared
notes are stored yet, and chat and feedback written while the kiosk cannot reach the hub (its link
cut, or `visit:resume` getting no answer) reach the hub once it can, exactly once, even across a
restart of the kiosk program. The real kiosk runs in a network namespace whose link is cut
(tests/test_kiosk_network.py); the resume that gets no answer goes through a TCP forwarder that
holds packets (tests/flaky.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from appliance.hub import CALL_TIMEOUT_S
from hub.db import Database
from hub.rooms.models import Feedback, RoomMessage
from kiosk_ui.driver import DriverClient
from tests.conftest import RunningHub, stop
from tests.test_appliance import hub_env, in_room_with_helper, wait_until  # noqa: F401
from tests.test_kiosk import ask_for_help, wait_items
from tests.test_kiosk_network import (
    CUT_S,
    hub_on_the_link,  # noqa: F401 (fixtures)
    kiosk_in_namespace,  # noqa: F401
    kiosk_network,  # noqa: F401
    network,  # noqa: F401
    start_kiosk_in,
    visit,  # noqa: F401
)
from tests.test_matching import on_duty

pytestmark = pytest.mark.kiosk


def stored_chat(db: Database) -> list[str]:
    with db.transaction() as s:
        return list(s.scalars(select(RoomMessage.text)))


def meet_helper(hub: RunningHub, d: DriverClient) -> tuple[Any, str]:
    """The student asks at the kiosk; a helper on a Socket.IO connection accepts and joins."""
    helper = hub.client("helper1")
    on_duty(helper)
    d.wait_for("start")
    ask_for_help(d)
    offer = helper.wait_for("offer", timeout=30)
    room_id = helper.ok("offer:accept", {"offer_id": offer["offer_id"]})["room_id"]
    helper.ok("room:join", {"room_id": room_id})
    d.wait_screen("room")
    return helper, room_id


def write_chat(d: DriverClient, text: str) -> None:
    d.tap("chat.input")
    d.type(text + "\n")
    d.tap("key.hide")


@pytest.mark.slow
def test_the_room_screen_says_not_saved_while_the_link_is_cut_and_the_chat_arrives_once(
    hub_on_the_link,  # noqa: F811
    kiosk_network,  # noqa: F811
    kiosk_in_namespace,  # noqa: F811
):
    hub, net = hub_on_the_link, kiosk_network
    _process, d, _log = kiosk_in_namespace
    helper, _room_id = meet_helper(hub, d)
    d.wait_for("doc.saved", text="Gemt")
    d.tap("tab.text")
    d.tap("doc")
    d.type("før")
    d.wait_for("doc.saved", text="Gemt")
    d.tap("key.hide")

    net.cut()
    cut_at = time.monotonic()
    d.tap("doc")
    d.type(" under")
    d.tap("key.hide")
    d.wait_for("doc.saved", text="Ikke gemt endnu")
    write_chat(d, "skrevet uden net")
    time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
    d.wait_for("doc.saved", text="Ikke gemt endnu")  # still: nothing pretends it was stored
    net.mend()

    d.wait_for("doc.saved", timeout=60, text="Gemt")
    helper.wait_for("chat:message", timeout=60, where=lambda m: m["text"] == "skrevet uden net")
    texts = wait_items(d, "chat.messages", lambda texts: any("uden net" in t for t in texts))
    time.sleep(2)  # a second delivery would be stored by now
    assert stored_chat(hub.db).count("skrevet uden net") == 1
    assert sum("skrevet uden net" in t for t in texts) == 1, texts


@pytest.mark.slow
def test_chat_written_during_the_cut_arrives_after_the_kiosk_program_restarted(
    hub_on_the_link,  # noqa: F811
    kiosk_network,  # noqa: F811
    kiosk_in_namespace,  # noqa: F811
    tmp_path,
):
    """The kiosk is killed (a power cut) with the line still unsent; the program started again
    finds it on disk and delivers it in the room's visit before closing that visit."""
    hub, net = hub_on_the_link, kiosk_network
    process, d, _log = kiosk_in_namespace
    helper, room_id = meet_helper(hub, d)
    write_chat(d, "før")
    helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "før")

    net.cut()
    write_chat(d, "første uden net")
    write_chat(d, "anden uden net")
    time.sleep(1)  # the lines reach the disk as they are written; give the keys a moment
    process.kill()
    process.wait(10)
    d.close()
    restarted, d2, _ = start_kiosk_in(net, hub, tmp_path / "kiosk")
    try:
        d2.wait_screen("attract", timeout=30)
        time.sleep(3)
        net.mend()
        got = [
            helper.wait_for("chat:message", timeout=60, where=lambda m, t=t: m["text"] == t)
            for t in ("første uden net", "anden uden net")
        ]
        assert all(m["room_id"] == room_id for m in got)
        time.sleep(2)
        stored = stored_chat(hub.db)
        assert [stored.count(t) for t in ("første uden net", "anden uden net")] == [1, 1], stored
        assert stored.index("første uden net") < stored.index("anden uden net")
    finally:
        d2.close()
        stop(restarted)


def test_feedback_given_while_visit_resume_gets_no_answer_arrives_once_the_hub_answers(
    hub,
    network,  # noqa: F811
    visit,  # noqa: F811
):
    """After a drop the kiosk connects again, but the network stalls before the hub answers its
    `visit:resume` (a timeout on a connection that stays up, so no new reconnect comes to resume
    it): the feedback given meanwhile still reaches the hub once the network flows again."""
    helper, room_id = in_room_with_helper(hub, visit, "Hamza")
    helper.ok("room:join", {"room_id": room_id})
    visit.end_session().result(15)
    wait_until(lambda: visit.snapshot().phase == "ended", what="ended")

    network.hold()
    visit.feedback(5, "god hjælp trods nettet").result(15)  # kept; its call timed out
    network.hold_once_connected()
    network.cut()
    network.mend()
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    # held right after the connect: the resume gets no answer, nor does its retry, on a
    # connection that stays up all along
    time.sleep(CALL_TIMEOUT_S + 2)
    assert visit.snapshot().connection == "connected"
    assert not feedback_of(hub.db, room_id)
    network._flowing.set()  # the packets flow again on the same connection (no reconnect)

    wait_until(lambda: feedback_of(hub.db, room_id), timeout=30, what="the feedback stored")
    assert feedback_of(hub.db, room_id) == ["god hjælp trods nettet"]


def feedback_of(db: Database, room_id: str) -> list[str]:
    with db.transaction() as s:
        return list(s.scalars(select(Feedback.comment).where(Feedback.room_id == room_id)))
