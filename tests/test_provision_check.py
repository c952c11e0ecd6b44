"""`lektiecafe provision check`, the real command as a subprocess, against a running demo hub: a
paired kiosk with the synthetic camera, a wrong address, a hub that is down or silent, a revoked
kiosk, a school proxy that drops the WebSocket upgrade, certificates that are not right, a clock
that is off, and TURN through a real coturn on loopback over UDP and TLS (and with a wrong secret,
an untrusted certificate, or nothing listening); and the screen and sound checks on files shaped
like the kernel's."""

from __future__ import annotations

import email.utils
import http.server
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from appliance.state import KioskState
from hub import clock
from hub.db import Database
from hub.demo import seed_demo
from hub.server import prepare_database
from lektiecafe.cluster import wait_for_port
from provisioning.config import DeviceConfig, write_device_config
from provisioning.target import Target
from provisioning.units import DATA_DIR
from tests.conftest import ROOT, RunningHub, free_port, start_hub, stop
from tests.kiosks import StaffPage, pair_into
from tests.test_turn import Coturn, coturn  # noqa: F401 (fixture)

CHECKS = [
    "camera",
    "microphone",
    "speaker",
    "screen",
    "disk",
    "hub",
    "time",
    "websocket",
    "paired",
    "turn_udp",
    "turn_tls",
]
LIMIT_S = 15  # the whole run, even when the hub is down


def check(
    data_dir: Path | None,
    *options: str,
    lang: str = "en",
    human: bool = False,
    env: dict[str, str] | None = None,
    root: Path | None = None,
) -> tuple[int, Any, float]:
    """(exit code, the JSON results by id or the human output, seconds the run took)."""
    command = [sys.executable, "-m", "lektiecafe.cli", "provision", "--lang", lang]
    command += [*(["--root", str(root)] if root else []), "check"]
    command += ["--data-dir", str(data_dir)] if data_dir else []
    command += [*options, *([] if human else ["--json"])]
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    took = time.monotonic() - started
    assert done.returncode in (0, 1), done.stderr
    if human:
        return done.returncode, done.stdout, took
    results = json.loads(done.stdout)
    assert [r["id"] for r in results] == CHECKS
    return done.returncode, {r["id"]: r for r in results}, took


def failing(results: dict[str, Any]) -> set[str]:
    """The checks that make the run fail (not the warnings)."""
    return {key for key, r in results.items() if not r["ok"] and r["required"]}


def paired_kiosk(hub: Any, data_dir: Path) -> dict[str, Any]:
    """A kiosk paired through the real flow, its state as the kiosk keeps it (with its hub)."""
    answer = pair_into(hub, data_dir)
    state = KioskState(data_dir)
    state.hub_url = hub.url
    state.close()
    return answer


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """One demo hub for the tests that only read it (each pairs a kiosk of its own): a hub
    start is most of a test's time."""
    data_dir = tmp_path_factory.mktemp("hub")
    url = f"sqlite:///{data_dir / 'hub.db'}"
    db = Database(url)
    prepare_database(db)
    with db.transaction() as s:
        seed_demo(s, students=5, helpers=3, now=clock.now())
    process, hub_url, log = start_hub(url, data_dir)
    running = RunningHub(hub_url, db, data_dir, process, log)
    try:
        yield running
    finally:
        stop(process)
        running.close_clients()
        db.dispose()


@pytest.fixture
def hub_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The hub's TURN: none; "udp_and_tls", a real coturn on loopback over both; "broken", over
    UDP a coturn with another secret than the hub's and over TLS a port where nothing listens."""
    which = getattr(request, "param", None)
    if which is None:
        return {}
    if which == "udp_and_tls":
        turn = request.getfixturevalue("coturn_udp_and_tls")
        url, secret = turn.url, turn.secret
    else:
        turn = request.getfixturevalue("coturn")
        url = f"{turn.url},turns:127.0.0.1:{free_port()}?transport=tcp"
        secret = turn.secret + "-not"
    return {"LEKTIECAFE_TURN_URLS": url, "LEKTIECAFE_TURN_SECRET": secret}


def test_a_paired_kiosk_on_a_reachable_hub(demo_hub, tmp_path):
    answer = paired_kiosk(demo_hub, tmp_path / "kiosk")
    code, results, took = check(tmp_path / "kiosk", "--fake-camera")  # the hub from the state

    assert results["hub"] == {
        "id": "hub",
        "ok": True,
        "required": True,
        "detail": "Reachable over plain HTTP on this computer (a development hub).",
        "fix": None,
    }
    assert results["websocket"]["ok"], results["websocket"]
    assert results["paired"]["ok"]
    assert results["paired"]["detail"] == (
        f"Paired with {answer['site']['name']} (kiosk {answer['device_id']})."
    )
    assert results["camera"]["ok"]
    assert results["camera"]["detail"] == "the synthetic camera gives pictures (640×480)."
    assert results["time"]["ok"] and "of the hub's clock" in results["time"]["detail"]
    assert results["disk"]["ok"] and " free in " in results["disk"]["detail"]
    # This hub hands out no TURN: a warning, not a failure.
    for key in ("turn_udp", "turn_tls"):
        assert not results[key]["ok"] and not results[key]["required"]
        assert results[key]["detail"].startswith("The hub hands out no TURN server")
        assert "turn_urls" in results[key]["fix"]
    # The synthetic sound makes a missing sound card a warning; this machine has no screen.
    assert failing(results) <= {"screen"}
    assert code == (1 if failing(results) else 0)
    assert took < LIMIT_S
    # What the check asks for the TURN servers with is a kiosk's alone.
    refused = demo_hub.client("student1").call("device:ice", {})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"


WRONG_ADDRESSES = [
    ("http://127.0.0.1:{free}", "Nothing answers at 127.0.0.1:{free}.", "Check the address"),
    ("http://no-such-hub.invalid", "The name no-such-hub.invalid is not found (DNS).", "typing"),
    ("lektiecafe.example.dk", "“lektiecafe.example.dk” is not a web address.", "https://"),
    ("{hub}/login", "{hub}/login answers (HTTP 404), but not as a Lektiecafé hub.", "address"),
]


def test_a_new_kiosk_not_yet_paired_is_only_a_warning(demo_hub, tmp_path):
    # The set-up's third command is `provision check && sudo reboot`: the kiosk shows its
    # pairing code only after that restart, so "not paired" must not stop it.
    _code, results, _took = check(tmp_path / "new-kiosk", "--fake-camera", "--hub", demo_hub.url)
    assert results["paired"]["ok"] is False
    assert results["paired"]["required"] is False
    assert results["paired"]["fix"] == (
        f"Start the kiosk: it shows a code. Site staff type it in at {demo_hub.url}/admin/devices."
    )
    assert failing(results) - {"screen"} == set()  # this machine has no screen (no DRM)


def test_a_wrong_hub_address_says_what_is_wrong_and_what_to_do(demo_hub, tmp_path):
    paired_kiosk(demo_hub, tmp_path / "kiosk")
    values = {"free": free_port(), "hub": demo_hub.url}
    for address, detail, fix in WRONG_ADDRESSES:
        url = address.format(**values)
        code, results, took = check(tmp_path / "kiosk", "--fake-camera", "--hub", url)
        assert code == 1
        assert results["hub"]["detail"] == detail.format(**values)
        assert fix in results["hub"]["fix"]
        assert not results["paired"]["ok"]
        assert took < LIMIT_S


def test_a_hub_that_is_down_fails_fast_and_one_that_is_silent_within_the_limit(hub, tmp_path):
    paired_kiosk(hub, tmp_path / "kiosk")
    stop(hub.process)
    code, results, took = check(tmp_path / "kiosk", "--fake-camera")
    assert code == 1
    port = int(hub.url.rsplit(":", 1)[1])
    assert results["hub"]["detail"] == f"Nothing answers at 127.0.0.1:{port}."
    assert "the hub is down" in results["hub"]["fix"]
    # What depends on the hub is not checked, and says so (a warning: the hub is the failure).
    assert results["websocket"]["detail"] == "Not checked: the hub cannot be reached (see Hub)."
    assert results["paired"]["detail"].endswith("not checked with the hub (see Hub).")
    assert failing(results) - {"screen"} == {"hub"}
    assert took < LIMIT_S

    # A hub that takes the connection and never answers (a firewall, a hung proxy).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code, results, took = check(tmp_path / "kiosk", "--fake-camera", "--hub", url)
    assert code == 1
    assert results["hub"]["detail"].endswith("in time.")
    assert "firewall" in results["hub"]["fix"]
    assert took < LIMIT_S


def test_a_revoked_kiosk_is_told_to_reset_and_pair_again(demo_hub, tmp_path):
    answer = paired_kiosk(demo_hub, tmp_path / "kiosk")
    staff = StaffPage(demo_hub.url)
    assert staff.post(f"/admin/devices/{answer['device_id']}/revoke").status_code == 200

    code, results, _took = check(tmp_path / "kiosk", "--fake-camera")
    assert code == 1
    assert results["hub"]["ok"] and results["websocket"]["ok"]
    assert results["paired"] == {
        "id": "paired",
        "ok": False,
        "required": True,
        "detail": "Unpaired or revoked: the hub no longer knows this kiosk.",
        "fix": "Run `lektiecafe provision reset` and pair the kiosk again.",
    }

    # The same for site staff, in Danish, with the real camera and sound this machine lacks, on
    # a kiosk as install leaves it: the hub's address in its configuration, the state beside it.
    root = tmp_path / "root"
    write_device_config(Target(root), DeviceConfig(hub=demo_hub.url))
    shutil.copytree(tmp_path / "kiosk", Target(root).path(DATA_DIR))
    code, output, _took = check(None, root=root, lang="da", human=True)
    assert code == 1
    lines = output.splitlines()
    assert lines[0] == f"Tjek af kiosken (hub: {demo_hub.url})"
    assert "✓ Hub: Kan nås over almindelig HTTP på denne computer (en udviklings-hub)." in lines
    paired = lines.index(
        "✗ Parring: Afparret eller tilbagekaldt: hubben kender ikke længere kiosken."
    )
    assert lines[paired + 1] == "    → Kør `lektiecafe provision reset`, og par kiosken igen."
    if not Path("/dev/video0").exists():
        assert "✗ Kamera: Intet kamera på /dev/video0." in lines
    if not Path("/proc/asound/pcm").exists():
        assert any(line.startswith("✗ Mikrofon: Ingen mikrofon") for line in lines)
    assert lines[-1].startswith("Problemer, der skal løses, før kiosken virker: ")


class UpgradeDroppingProxy:
    """A school's web proxy: passes each HTTP request on to the hub, without the headers a
    WebSocket upgrade needs. One request per connection (both sides are told "Connection:
    close"), so it sees every request's headers."""

    DROPPED = (b"upgrade:", b"connection:", b"sec-websocket-")

    def __init__(self, port: int) -> None:
        self.port = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.port)) as upstream:
            if self._head(client, upstream):
                threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
                if self._head(upstream, client):
                    self._pipe(upstream, client)

    def _head(self, source: socket.socket, sink: socket.socket) -> bool:
        """Pass on a request's or response's head without the dropped headers (False: EOF)."""
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = source.recv(65536)
            if not chunk:
                return False
            head += chunk
        top, _sep, rest = head.partition(b"\r\n\r\n")
        kept = [h for h in top.split(b"\r\n") if not h.lower().startswith(self.DROPPED)]
        sink.sendall(b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + rest)
        return True

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


def test_a_proxy_that_drops_the_websocket_upgrade(demo_hub, tmp_path):
    paired_kiosk(demo_hub, tmp_path / "kiosk")
    proxy = UpgradeDroppingProxy(int(demo_hub.url.rsplit(":", 1)[1]))
    try:
        code, results, took = check(tmp_path / "kiosk", "--fake-camera", "--hub", proxy.url)
    finally:
        proxy.close()
    assert code == 1
    assert results["hub"]["ok"]  # plain HTTP gets through ...
    assert not results["websocket"]["ok"] and results["websocket"]["required"]  # ... WebSocket not
    assert results["websocket"]["detail"].startswith("The WebSocket upgrade was answered with HTTP")
    assert results["websocket"]["fix"] == (
        "A proxy or firewall stops WebSocket connections. Ask the IT department to allow "
        "WebSocket (HTTP Upgrade) to 127.0.0.1."
    )
    assert results["paired"]["ok"], results["paired"]  # checked over HTTP, the WebSocket blocked
    assert took < LIMIT_S


@contextmanager
def healthz_only(context: ssl.SSLContext | None = None, clock_off_s: float = 0) -> Iterator[int]:
    """A web server that answers /healthz as a hub does (over TLS with `context`), its clock
    (the Date header) `clock_off_s` seconds off: its port."""

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def date_time_string(self, timestamp: float | None = None) -> str:
            return email.utils.formatdate(time.time() + clock_off_s, usegmt=True)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` and its key, in `folder`."""
    cert, key = folder / f"{host}.pem", folder / f"{host}.key"
    name = ["-subj", f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *name, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_hub(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A hub over TLS with a self-signed certificate for the name other.example: (its
    https://localhost address, the certificate)."""
    cert, key = self_signed(tmp_path, "other.example")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with healthz_only(context) as port:
        yield f"https://localhost:{port}", cert


def test_certificate_problems_are_explained(tls_hub, tmp_path):
    url, cert = tls_hub
    _code, results, _took = check(tmp_path / "kiosk", "--fake-camera", "--hub", url)
    assert results["hub"]["detail"] == (
        "The certificate is not from a trusted authority (self-signed certificate)."
    )
    assert "Let's Encrypt" in results["hub"]["fix"]

    trusted = {"REQUESTS_CA_BUNDLE": str(cert)}  # trusted now, but made for another name
    _code, results, _took = check(tmp_path / "kiosk", "--fake-camera", "--hub", url, env=trusted)
    assert results["hub"]["detail"] == "The certificate is not made for the name localhost."
    assert "a certificate for localhost" in results["hub"]["fix"]


def test_a_clock_that_is_off_the_hubs_is_a_failure_with_the_fix(tmp_path):
    with healthz_only(clock_off_s=-300) as port:
        _code, results, _took = check(
            tmp_path / "kiosk", "--fake-camera", "--hub", f"http://127.0.0.1:{port}"
        )
    assert results["hub"]["ok"]
    assert results["time"]["ok"] is False and results["time"]["required"]
    assert re.match(r"The clock is 30[01] seconds off the hub's", results["time"]["detail"])
    assert "timedatectl set-ntp true" in results["time"]["fix"]


@pytest.fixture
def coturn_udp_and_tls(tmp_path: Path) -> Iterator[Coturn]:
    """coturn as tests/test_turn.py starts it, also over TLS, with a self-signed certificate for
    localhost (tmp_path/localhost.pem): the `turn:` and the `turns:` URL, comma-separated."""
    cert, key = self_signed(tmp_path, "localhost")
    udp, tls = free_port(), free_port()
    secret, log = secrets.token_hex(16), tmp_path / "turnserver.log"
    command = [
        "turnserver",
        *("-c", str(ROOT / "deploy/coturn/turnserver.conf")),
        *(f"--static-auth-secret={secret}", "--realm=lektiecafe.test"),
        *("--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={udp}"),
        *(f"--tls-listening-port={tls}", f"--cert={cert}", f"--pkey={key}"),
        f"--pidfile={tmp_path / 'turnserver.pid'}",
        f"--userdb={tmp_path / 'turndb'}",
    ]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(tls, process, log)
        urls = f"turn:127.0.0.1:{udp}?transport=udp,turns:localhost:{tls}?transport=tcp"
        yield Coturn(urls, secret, log)
    finally:
        stop(process)


@pytest.mark.turn
@pytest.mark.parametrize("hub_env", ["udp_and_tls"], indirect=True)
def test_turn_over_udp_and_tls_through_a_real_coturn(hub, tmp_path):
    paired_kiosk(hub, tmp_path / "kiosk")
    trusted = {"SSL_CERT_FILE": str(tmp_path / "localhost.pem")}
    _code, results, took = check(tmp_path / "kiosk", "--fake-camera", env=trusted)
    assert results["turn_udp"]["ok"], results["turn_udp"]
    assert re.fullmatch(
        r"turn:127\.0\.0\.1:\d+\?transport=udp gives a relay\.", results["turn_udp"]["detail"]
    )
    assert results["turn_tls"]["ok"], results["turn_tls"]
    assert re.fullmatch(
        r"turns:localhost:\d+\?transport=tcp gives a relay\.", results["turn_tls"]["detail"]
    )
    assert took < LIMIT_S

    # Without trusting that certificate, as a kiosk would not: explained; UDP still gives a relay.
    _code, results, _took = check(tmp_path / "kiosk", "--fake-camera")
    assert results["turn_udp"]["ok"]
    assert results["turn_tls"]["detail"] == (
        "The certificate is not from a trusted authority (self-signed certificate)."
    )
    assert not results["turn_tls"]["required"]


@pytest.mark.turn
@pytest.mark.parametrize("hub_env", ["broken"], indirect=True)
def test_turn_that_does_not_work_says_why(hub, tmp_path):
    paired_kiosk(hub, tmp_path / "kiosk")
    code, results, took = check(tmp_path / "kiosk", "--fake-camera")
    assert code == 1
    assert results["turn_udp"]["detail"].endswith("refuses the hub's TURN credentials.")
    assert "static-auth-secret" in results["turn_udp"]["fix"]
    assert results["turn_tls"]["detail"].startswith("No answer from 127.0.0.1 on TCP port ")
    assert "allow TCP" in results["turn_tls"]["fix"]
    assert {"turn_udp", "turn_tls"} <= failing(results)  # no way to a relay at all
    assert took < LIMIT_S


def test_screen_and_sound_as_the_kernel_lists_them(tmp_path):
    """The parts of the check that read sysfs and procfs, on files shaped like a Raspberry Pi's
    with a USB headset and an HDMI screen (this machine has neither)."""
    from provisioning.check import Context, check_screen, check_sound

    ctx = Context("en", tmp_path, None, fake=False)
    drm = tmp_path / "drm"
    for name, status, modes in [
        ("card1-HDMI-A-1", "connected", "1920x1080\n1280x720\n"),
        ("card1-HDMI-A-2", "disconnected", ""),
    ]:
        (drm / name).mkdir(parents=True)
        (drm / name / "status").write_text(status + "\n")
        (drm / name / "modes").write_text(modes)
    assert check_screen(ctx, drm).detail == "HDMI-A-1 1920x1080"
    assert check_screen(ctx, drm).ok
    (drm / "card1-HDMI-A-1" / "modes").write_text("800x480\n")
    small = check_screen(ctx, drm)
    assert not small.ok and not small.required and "1024×600" in (small.fix or "")
    (drm / "card1-HDMI-A-1" / "status").write_text("disconnected\n")
    unplugged = check_screen(ctx, drm)
    assert unplugged.detail == "No screen is connected (outputs: HDMI-A-1, HDMI-A-2)."
    assert not unplugged.ok and unplugged.required

    pcm = tmp_path / "pcm"
    pcm.write_text(
        "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n"
        "01-00: USB Audio : USB Audio : playback 1 : capture 1\n"
    )
    microphone, speaker = check_sound(ctx, pcm)
    assert (microphone.ok, microphone.detail) == (True, "USB Audio")
    assert (speaker.ok, speaker.detail) == (True, "bcm2835 Headphones, USB Audio")
    pcm.write_text("00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n")
    microphone, speaker = check_sound(ctx, pcm)
    assert not microphone.ok and microphone.required and "arecord -l" in (microphone.fix or "")
    assert speaker.ok
