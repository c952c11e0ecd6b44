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
    helper, room_id = in_room_with_helper(hub, visit, "Hamza")
    helper.ok("room:join", {"room_id": room_id})
    visit.send_chat("før")
    helper.wait_for("chat:message", where=lambda m: m["text"] == "før")

    network.cut()
    assert helper.wait_for("peer:left", timeout=30) == {"room_id": room_id}
    wait_until(lambda: visit.snapshot().connection != "connected", what="the kiosk notices")
    helper.ok("chat:send", {"room_id": room_id, "text": "er du der?", "client_msg_id": "h1"})
    time.sleep(2)

    network.mend()
    wait_until(lambda: visit.snapshot().connection == "connected", timeout=30, what="back")
    assert helper.wait_for("peer:back", timeout=30) == {"room_id": room_id}
    wait_until(lambda: "er du der?" in chat_texts(visit), timeout=20, what="helper's message")
    visit.send_chat("efter")
    helper.wait_for("chat:message", timeout=20, where=lambda m: m["text"] == "efter")
    assert visit.snapshot().phase == "in_room"
    assert chat_texts(visit).count("før") == 1  # nothing doubled by the resend
