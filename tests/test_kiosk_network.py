"""A kiosk whose network drops in the middle of a session comes back by itself: the room, the
chat both ways and the student's place are all still there. First through a TCP forwarder that
fails on command (tests/flaky.py); then the real kiosk process in a network namespace of its own
whose link is cut for 20 s while it is in a call with a helper in Chromium: the call comes back
by a new ICE round and the chat written meanwhile arrives exactly once."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, expect
from sqlalchemy import select

from appliance.visit import Options, Visit
from hub.db import Database
from hub.rooms.models import RoomMessage
from kiosk_ui.driver import DriverClient
from lektiecafe import launch
from tests.conftest import FAST, ROOT, RunningHub, stop
from tests.flaky import FlakyNetwork
from tests.kiosks import pair_into
from tests.test_appliance import (
    SMALL,
    chat_texts,
    hub_env,  # noqa: F401 (the appliance tests' hub settings)
    in_room_with_helper,
    wait_until,
)
from tests.test_browser import log_in
from tests.test_kiosk import wait_items
from tests.test_kiosk_browser import meet
from tests.test_room_browser import (
    DESKTOP,
    MEDIA,
    MEDIA_ARGS,
    SLOW,
    chromium,  # noqa: F401 (a fixture)
    expect_video_from_the_other_side,
    say,
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


# ---- The real kiosk in a network namespace of its own, its link cut for 20 s ------------------

CUT_S = 20.0
# In the helper's page, before its scripts: every RTCPeerConnection rtc.js makes is kept, with
# the ICE username fragments of the descriptions it set, so the test reads the ICE rounds and the
# frames decoded on the receiving side from the browser's own WebRTC stack.
WATCH_CALLS = """(() => {
  const Native = window.RTCPeerConnection;
  window.lcCalls = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.lcCalls.push({ pc: this, ufrags: [] }); }
    async setLocalDescription(...args) {
      const done = await super.setLocalDescription(...args);
      const m = /a=ice-ufrag:(\\S+)/.exec((this.localDescription || {}).sdp || "");
      const call = window.lcCalls.find((c) => c.pc === this);
      if (m && call && !call.ufrags.includes(m[1])) call.ufrags.push(m[1]);
      return done;
    }
  };
})();"""
ICE_ROUNDS = "() => window.lcCalls.reduce((n, c) => n + c.ufrags.length, 0)"
FRAMES_DECODED = """async () => {
  const call = window.lcCalls[window.lcCalls.length - 1];
  if (!call) return 0;
  let frames = 0;
  (await call.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
  });
  return frames;
}"""
CHAT_COUNT = """(text) => [...document.querySelectorAll('[data-testid="chat-log"] [data-msg-id]')]
  .filter((li) => li.textContent.includes(text)).length"""


@dataclass
class KioskNetwork:
    """A network namespace for the kiosk, joined to the host by a veth pair on a private /30:
    the hub listens on `hub_ip` (the host's end), the kiosk is `kiosk_ip`."""

    namespace: str
    host_link: str
    kiosk_link: str
    hub_ip: str
    kiosk_ip: str

    def run(self, *command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"

    def inside(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *command]

    def cut(self) -> None:
        """The kiosk's link goes down, as when its cable is pulled or its Wi-Fi drops."""
        self.run(*self.inside("ip", "link", "set", self.kiosk_link, "down"))

    def mend(self) -> None:
        self.run(*self.inside("ip", "link", "set", self.kiosk_link, "up"))


class NoNamespace(Exception):
    """This machine cannot give the kiosk a network namespace of its own (why, in words)."""


@contextmanager
def namespace_link() -> Iterator[KioskNetwork]:
    """A fresh network namespace joined to the host by a veth pair on a free private /30,
    removed afterwards (benchmarks use it too: bench/netem.py). Raises NoNamespace when the
    machine cannot make one."""
    if os.geteuid() != 0:
        raise NoNamespace("a network namespace for the kiosk needs root (ip netns, veth)")
    tag = secrets.token_hex(3)
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True)
    words = set(routes.stdout.decode().replace("/", " ").split())
    subnet = ""
    while not subnet or any(word.startswith(f"{subnet}.") for word in words):  # a free one
        subnet = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
    net = KioskNetwork(f"lc-kiosk-{tag}", f"lck{tag}h", f"lck{tag}k", f"{subnet}.1", f"{subnet}.2")
    made = subprocess.run(["ip", "netns", "add", net.namespace], capture_output=True, text=True)
    if made.returncode != 0:
        raise NoNamespace(f"this machine cannot make a network namespace: {made.stderr.strip()}")
    try:
        pair = ["ip", "link", "add", net.host_link, "type", "veth", "peer", "name", net.kiosk_link]
        made = subprocess.run(pair, capture_output=True, text=True)
        if made.returncode != 0:
            raise NoNamespace(f"this machine cannot make a veth pair: {made.stderr.strip()}")
        net.run("ip", "link", "set", net.kiosk_link, "netns", net.namespace)
        net.run("ip", "addr", "add", f"{net.hub_ip}/30", "dev", net.host_link)
        net.run("ip", "link", "set", net.host_link, "up")
        net.run(*net.inside("ip", "addr", "add", f"{net.kiosk_ip}/30", "dev", net.kiosk_link))
        net.run(*net.inside("ip", "link", "set", net.kiosk_link, "up"))
        net.run(*net.inside("ip", "link", "set", "lo", "up"))
        yield net
    finally:
        subprocess.run(["ip", "link", "del", net.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", net.namespace], capture_output=True)


@pytest.fixture
def kiosk_network() -> Iterator[KioskNetwork]:
    try:
        with namespace_link() as net:
            yield net
    except NoNamespace as why:
        pytest.skip(str(why))


# The hub on the link for these tests: offers, students and rooms wait 60 s, the rest is FAST.
LINK_HUB_ENV = {
    **FAST,
    "LEKTIECAFE_PAIRING_INTERVAL_S": "1",
    "LEKTIECAFE_OFFER_TIMEOUT_S": "60",
    "LEKTIECAFE_STUDENT_GRACE_S": "60",
    "LEKTIECAFE_ROOM_GRACE_S": "60",
}


@contextmanager
def hub_on(
    net: KioskNetwork, database_url: str, data_dir: Path, env: Mapping[str, str] = LINK_HUB_ENV
) -> Iterator[RunningHub]:
    """A hub (on the migrated, seeded `database_url`) listening on the host's end of the link,
    stopped afterwards."""
    started = launch.start_hub(database_url, data_dir, "test-secret", dict(env), host=net.hub_ip)
    running = RunningHub(
        started.url, Database(database_url), data_dir, started.process, started.log
    )
    try:
        yield running
    finally:
        stop(running.process)
        running.close_clients()
        running.db.dispose()


@pytest.fixture
def hub_on_the_link(
    database_url: str, tmp_path: Path, kiosk_network: KioskNetwork
) -> Iterator[RunningHub]:
    """A hub listening on the host's end of the kiosk's link (the helper reaches it there too)."""
    with hub_on(kiosk_network, database_url, tmp_path) as running:
        yield running


@contextmanager
def link_chromium(
    playwright: Playwright, hub_url: str, executable: str = "/usr/bin/chromium"
) -> Iterator[Browser]:
    """Chromium with a fake camera and microphone for a call over the link: the hub's address
    on it counts as a secure origin (camera access), and host candidates carry real addresses,
    not mDNS names (aiortc on the kiosk resolves no mDNS in its namespace, as on most kiosk
    networks). `executable`: a wrapper that runs Chromium elsewhere (inside the namespace)."""
    browser = playwright.chromium.launch(
        executable_path=executable,
        args=[
            *MEDIA_ARGS,
            f"--unsafely-treat-insecure-origin-as-secure={hub_url}",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
        ],
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def helper_browser(chromium: Playwright, hub_on_the_link: RunningHub) -> Iterator[Browser]:  # noqa: F811
    """The helper's Chromium, on the host (`link_chromium`)."""
    with link_chromium(chromium, hub_on_the_link.url) as browser:
        yield browser


@pytest.fixture
def kiosk_in_namespace(
    hub_on_the_link: RunningHub, kiosk_network: KioskNetwork, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], DriverClient, Path]]:
    """`lektiecafe kiosk` (the synthetic camera) started inside the namespace, paired, driven
    through its test driver (a Unix socket, which no network cut touches)."""
    data_dir = tmp_path / "kiosk"
    pair_into(hub_on_the_link, data_dir)
    process, driver, log = start_kiosk_in(kiosk_network, hub_on_the_link, data_dir)
    try:
        yield process, driver, log
        driver.close()
    finally:
        stop(process)


def start_kiosk_in(
    net: KioskNetwork, hub: RunningHub, data_dir: Path
) -> tuple[subprocess.Popen[bytes], DriverClient, Path]:
    """`lektiecafe kiosk` on the kiosk state in `data_dir` (paired), inside the namespace; the
    caller stops the process."""
    sock, log = data_dir / "driver.sock", data_dir / "kiosk.log"
    command = [sys.executable, "-m", "lektiecafe.cli", "kiosk", "--hub", hub.url]
    command += ["--windowed", "--test-driver", str(sock), "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        net.inside(*command, "--fake-camera"),
        cwd=ROOT,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        return process, DriverClient(sock, timeout=30), log
    except BaseException:
        stop(process)
        raise


def kiosk_frames(d: DriverClient) -> int:
    return int(d.ok("state")["remote_frames"])


def kiosk_calls(log: Path) -> int:
    """How many peer connections the kiosk's media engine has had connect (its log says)."""
    return log.read_text(errors="replace").count("appliance.media: call connected")


def frames_flow(count: Callable[[], int], more: int, timeout: float, what: str) -> float:
    """Until `count()` has grown by `more`; how long that took."""
    started, first = time.monotonic(), count()
    wait_until(lambda: count() >= first + more, timeout=timeout, what=what)
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.browser
def test_a_kiosk_cut_off_for_20_s_resumes_the_call_by_ice_restart_and_its_chat_arrives_once(
    hub_on_the_link, kiosk_network, kiosk_in_namespace, helper_browser
):
    hub = hub_on_the_link
    _process, d, kiosk_log = kiosk_in_namespace
    helper = log_in(helper_browser, hub, "helper1", WATCH_CALLS, **DESKTOP, **MEDIA)
    meet(d, helper)
    expect_video_from_the_other_side(helper)
    frames_flow(lambda: kiosk_frames(d), 15, 30, "the helper's video on the kiosk")
    frames_flow(lambda: helper.evaluate(FRAMES_DECODED), 15, 30, "the kiosk's video in Chromium")
    say(helper, "Hej, er du klar?")
    wait_items(d, "chat.messages", lambda texts: any("er du klar" in t for t in texts))
    rounds = helper.evaluate(ICE_ROUNDS)
    calls = kiosk_calls(kiosk_log)

    kiosk_network.cut()
    cut_at = time.monotonic()
    # The student writes while the kiosk has no network; so does the helper.
    d.tap("chat.input")
    d.type("skrevet uden net\n")
    d.tap("key.hide")
    say(helper, "Jeg venter her")
    time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
    stalled = kiosk_frames(d)
    kiosk_network.mend()
    mended_at = time.monotonic()

    # The call comes back by a new ICE round (new credentials), and frames flow both ways,
    # counted where they are decoded.
    wait_until(lambda: helper.evaluate(ICE_ROUNDS) > rounds, timeout=60, what="a new ICE round")
    frames_flow(lambda: kiosk_frames(d), 15, 60, "the helper's video again")
    kiosk_back_s = time.monotonic() - mended_at
    frames_flow(lambda: helper.evaluate(FRAMES_DECODED), 15, 60, "the kiosk's video again")
    helper_back_s = time.monotonic() - mended_at
    expect(helper.get_by_test_id("rtc-state")).to_have_attribute(
        "data-state", "connected", timeout=SLOW
    )
    assert kiosk_frames(d) > stalled
    # aiortc cannot restart ICE on a connection: the kiosk answered the new round with a fresh
    # one, and that is the one the frames now come through.
    assert kiosk_calls(kiosk_log) > calls
    assert d.ok("state")["rtc"] == "connected"

    # The chat written during the cut arrives, exactly once on each side and in the room.
    chat_log = helper.get_by_test_id("chat-log")
    expect(chat_log).to_contain_text("skrevet uden net", timeout=SLOW)
    wait_items(d, "chat.messages", lambda texts: any("Jeg venter her" in t for t in texts))
    helper.wait_for_timeout(1000)
    assert helper.evaluate(CHAT_COUNT, "skrevet uden net") == 1
    texts = [i["text"] for i in d.wait_for("chat.messages")["items"]]
    assert [sum(phrase in t for t in texts) for phrase in ("skrevet uden net", "venter her")] == [
        1,
        1,
    ], texts
    with hub.db.transaction() as s:
        stored = list(s.scalars(select(RoomMessage.text)))
    assert [stored.count(t) for t in ("skrevet uden net", "Jeg venter her")] == [1, 1], stored
    # And new chat crosses both ways.
    say(helper, "Godt du er tilbage")
    wait_items(d, "chat.messages", lambda texts: any("tilbage" in t for t in texts))
    d.tap("chat.input")
    d.type("tak\n")
    expect(chat_log).to_contain_text("tak")
    print(
        f"after a {CUT_S:.0f} s cut: ICE rounds {rounds} -> {helper.evaluate(ICE_ROUNDS)}; "
        f"video flowing again {kiosk_back_s:.1f} s (kiosk) and {helper_back_s:.1f} s (helper) "
        "after the link came back"
    )
