"""A relay-only call through a real coturn on loopback, with the credentials a running hub hands
out. coturn runs the config the project ships (deploy/coturn/turnserver.conf) with only what
loopback needs on top: listening and relaying on 127.0.0.1, and that one peer address allowed."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    VideoStreamTrack,
)
from av import VideoFrame

from lektiecafe.cluster import wait_for_port
from tests.conftest import ROOT, free_port, stop
from tests.test_matching import ask, on_duty
from tests.test_room_browser import (  # noqa: F401 (fixtures)
    chromium,
    expect_video_from_the_other_side,
    media_browser,
    meet,
)

pytestmark = [pytest.mark.turn, pytest.mark.slow]

WIDTH, HEIGHT = 320, 240
FRAMES = 30  # decoded frames each side must receive: one second of video


@dataclass
class Coturn:
    url: str
    secret: str
    log: Path

    def peer_packets(self) -> list[int]:
        """Packets each closed allocation received from its peer (coturn's verbose log); sessions
        without a username (the start-up probe) made no allocation."""
        usage = r"peer usage: realm=<[^>]*>, username=<[^>]+>, rp=(\d+),"
        return [int(n) for n in re.findall(usage, self.log.read_text())]


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """coturn in the foreground on a free loopback port with a fresh secret, logging to tmp_path."""
    if shutil.which("turnserver") is None:
        pytest.fail("coturn is missing: run scripts/ensure-test-tools (Debian package coturn)")
    port, secret, log = free_port(), secrets.token_hex(16), tmp_path / "turnserver.log"
    process = subprocess.Popen(
        [
            "turnserver",
            "-c",
            str(ROOT / "deploy/coturn/turnserver.conf"),
            f"--static-auth-secret={secret}",
            "--realm=lektiecafe.test",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            # Both relay addresses are 127.0.0.1, so the peers are loopback addresses.
            "--allow-loopback-peers",
            "--allowed-peer-ip=127.0.0.1",
            f"--pidfile={tmp_path / 'turnserver.pid'}",
            f"--userdb={tmp_path / 'turndb'}",
            "--verbose",  # logs each allocation's usage when it closes
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, log)
        yield Coturn(f"turn:127.0.0.1:{port}?transport=udp", secret, log)
    finally:
        stop(process)


@pytest.fixture
def hub_env(coturn: Coturn) -> dict[str, str]:
    return {
        "LEKTIECAFE_TURN_URLS": coturn.url,
        "LEKTIECAFE_TURN_SECRET": coturn.secret,
        "LEKTIECAFE_ICE_TRANSPORT_POLICY": "relay",
    }


class SolidVideo(VideoStreamTrack):
    """Frames of one grey level, so each side can tell the other's video from its own."""

    def __init__(self, luma: int) -> None:
        super().__init__()
        self.luma = luma

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        for plane, value in zip(frame.planes, (self.luma, 128, 128), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def peer(ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(
            iceServers=[RTCIceServer(**server) for server in ice_servers],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY,
        )
    )


async def decoded_lumas(pc: RTCPeerConnection) -> list[int]:
    """The first row's mean luma of the first FRAMES decoded frames of the remote video."""
    track = asyncio.get_running_loop().create_future()
    pc.on("track", track.set_result)
    remote = await track
    lumas = []
    while len(lumas) < FRAMES:
        frame = await remote.recv()
        assert (frame.width, frame.height) == (WIDTH, HEIGHT)
        row = bytes(frame.planes[0])[:WIDTH]
        lumas.append(sum(row) // WIDTH)
    return lumas


def selected_pair_types(pc: RTCPeerConnection) -> tuple[str, str]:
    """(local, remote) candidate type of the nominated pair. aiortc's getStats() has no
    candidate pairs, so this reads aioice's connection (pinned in constraints.txt)."""
    ice = pc.getTransceivers()[0].sender.transport.transport
    (pair,) = ice.iceGatherer._connection._nominated.values()
    return pair.local_candidate.type, pair.remote_candidate.type


async def relay_only_call(
    helper_ice: list[dict[str, Any]], student_ice: list[dict[str, Any]]
) -> dict[str, Any]:
    """The helper offers (as in the room), both send video, each decodes the other's."""
    helper, student = peer(helper_ice), peer(student_ice)
    try:
        helper.addTrack(SolidVideo(luma=200))
        student.addTrack(SolidVideo(luma=60))
        received = asyncio.gather(decoded_lumas(helper), decoded_lumas(student))
        await helper.setLocalDescription(await helper.createOffer())
        await student.setRemoteDescription(helper.localDescription)
        await student.setLocalDescription(await student.createAnswer())
        await helper.setRemoteDescription(student.localDescription)
        at_helper, at_student = await asyncio.wait_for(received, timeout=30)
        return {
            "sdp": [helper.localDescription.sdp, student.localDescription.sdp],
            "pairs": [selected_pair_types(helper), selected_pair_types(student)],
            "at_helper": at_helper,
            "at_student": at_student,
        }
    finally:
        await helper.close()
        await student.close()


def test_a_relay_only_call_connects_through_coturn(hub, coturn):
    student, helper = hub.client("student1"), hub.client("helper1")
    on_duty(helper)
    ask(student, hub)
    accepted = helper.ok("offer:accept", {"offer_id": helper.wait_for("offer")["offer_id"]})
    match = student.wait_for("match")
    for ice in (accepted["ice_servers"], match["ice_servers"]):
        (turn,) = ice
        assert turn["urls"] == [coturn.url]
        assert re.fullmatch(r"\d+:[0-9a-f]{16}", turn["username"])

    call = asyncio.run(relay_only_call(accepted["ice_servers"], match["ice_servers"]))

    for sdp in call["sdp"]:
        candidates = re.findall(r"a=candidate:.* typ (\w+)", sdp)
        assert candidates and set(candidates) == {"relay"}, sdp
    assert call["pairs"] == [("relay", "relay"), ("relay", "relay")]
    assert all(abs(luma - 60) < 10 for luma in call["at_helper"]), call["at_helper"]
    assert all(abs(luma - 200) < 10 for luma in call["at_student"]), call["at_student"]
    # Every decoded frame came through coturn: once the allocations close, coturn logs how many
    # packets each received from its peer, at least one per frame.
    deadline = time.monotonic() + 20
    while len(coturn.peer_packets()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    packets = coturn.peer_packets()
    assert len(packets) == 2 and min(packets) >= FRAMES, coturn.log.read_text()[-3000:]


# Keeps every RTCPeerConnection the page makes, so the test can ask it how the call is routed.
KEEP_PEER_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.peerConnections = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.peerConnections.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();"""

# The policy of the page's current connection, and its selected pair: the candidate types, the
# TURN server the local relay candidate came from and the bytes received over the pair.
CALL_ROUTE = """async () => {
  const pc = window.peerConnections.at(-1);
  const stats = [...(await pc.getStats()).values()];
  const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  if (!transport) return null;
  const pair = stats.find((s) => s.id === transport.selectedCandidatePairId);
  const local = stats.find((s) => s.id === pair.localCandidateId);
  const remote = stats.find((s) => s.id === pair.remoteCandidateId);
  return {
    policy: pc.getConfiguration().iceTransportPolicy,
    local: local.candidateType,
    remote: remote.candidateType,
    server: local.url,
    bytes: pair.bytesReceived,
  };
}"""


def test_two_browsers_call_each_other_through_coturn_only(hub, coturn, media_browser):  # noqa: F811
    student, helper = meet(
        media_browser, media_browser, hub, student_context={"init_script": KEEP_PEER_CONNECTIONS}
    )
    for page in (student, helper):
        expect_video_from_the_other_side(page)
    route = student.evaluate(CALL_ROUTE)
    assert route["policy"] == "relay" and (route["local"], route["remote"]) == ("relay", "relay")
    assert route["server"] == coturn.url and route["bytes"] > 10_000
