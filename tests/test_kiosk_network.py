"""A kiosk whose network drops in the middle of a session comes back by itself: the room, the
chat both ways and the student's place are all still there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.visit import Options, Visit
from tests.flaky import FlakyNetwork
from tests.kiosks import pair_into
from tests.test_appliance import (
    SMALL,
    chat_texts,
    hub_env,  # noqa: F401 (the appliance tests' hub settings)
    in_room_with_helper,
    wait_until,
)

pytestmark = pytest.mark.kiosk


@pytest.fixture
def network(hub: Any) -> Iterator[FlakyNetwork]:
    net = FlakyNetwork(int(hub.url.rsplit(":", 1)[1]))
    yield net
    net.close()


@pytest.fixture
def visit(hub: Any, network: FlakyNetwork, tmp_path: Path) -> Iterator[Visit]:
    """A paired kiosk that reaches the hub only through `network`."""
    pair_into(hub, tmp_path / "kiosk")
    options = Options(
        data_dir=tmp_path / "kiosk", hub_url=network.url, fake_camera=True, video_size=SMALL
    )
    kiosk = Visit(options, on_restart=lambda: None)
    kiosk.open()
    try:
        wait_until(lambda: kiosk.snapshot().connection == "connected", what="connected")
        yield kiosk
    finally:
        kiosk.close()


def test_a_kiosk_in_a_session_comes_back_by_itself_when_the_network_drops(hub, network, visit):
    """What either side wrote during the outage, chat and document, reaches the other after it."""
    helper, room_id = in_room_with_helper(hub, visit, "Hamza")
    helper_doc = hub.doc_socket(helper.ok("room:join", {"room_id": room_id})["doc_url"])
    visit.send_chat("før")
    visit.set_text("før")
    helper.wait_for("chat:message", where=lambda m: m["text"] == "før")
    helper_doc.wait_text("før")

    network.cut()
    assert helper.wait_for("peer:left", timeout=30) == {"room_id": room_id}
    wait_until(lambda: visit.snapshot().connection != "connected", what="the kiosk notices")
    helper.ok("chat:send", {"room_id": room_id, "text": "er du der?", "client_msg_id": "h1"})
    helper_doc.write(lambda d: d.text.insert(0, "hjælper: "))
    visit.send_chat("under")
    visit.set_text("før og under")
    assert visit.snapshot().doc_unsaved > 0
    time.sleep(2)

    network.mend()
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    assert helper.wait_for("peer:back", timeout=30) == {"room_id": room_id}
    helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "under")
    wait_until(lambda: "er du der?" in chat_texts(visit), timeout=20, what="helper's message")
    helper_doc.wait_text("hjælper: før og under", timeout=20)
    wait_until(lambda: visit.snapshot().doc_text == "hjælper: før og under", what="helper's edit")
    wait_until(lambda: visit.snapshot().doc_unsaved == 0, what="the kiosk's edits stored")
    visit.send_chat("efter")
    helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "efter")
    assert visit.snapshot().phase == "in_room"
    assert [chat_texts(visit).count(t) for t in ("før", "under")] == [1, 1]  # no doubles


def test_a_chat_line_written_while_a_call_hangs_across_a_drop_is_sent_after_it(hub, network, visit):
    """The kiosk's worker sends one call at a time. A line written while an earlier call hangs on
    a dead connection is sent when that call gives up, which may be after the kiosk has already
    connected again but before it resumed the visit there: the hub would refuse it (the
    connection is the kiosk's own until then), and a refused line was never sent again."""
    helper, room_id = in_room_with_helper(hub, visit, "Hamza")
    helper.ok("room:join", {"room_id": room_id})
    network.hold()
    visit.send_chat("første")  # its chat:send hangs until the call times out
    time.sleep(0.5)
    visit.send_chat("anden")  # waits behind it
    network.cut()
    network.mend()
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    for text in ("første", "anden"):
        helper.wait_for("chat:message", timeout=40, where=lambda m, t=text: m["text"] == t)
    assert not [line for line in visit.snapshot().chat if line.blocked_reason]
