"""`lektiecafe provision check`: is this computer ready to be a kiosk? One line per check with ✓
or ✗ and, for each ✗, what to do about it, in plain words for site staff (Danish or English), or
a JSON list for machines.

The hardware checks open the devices the way the kiosk does (the camera through aiortc's
MediaPlayer, ALSA's sound cards, the DRM screen connectors); the network checks talk to the hub
the way the kiosk does (HTTP with requests, the Engine.IO WebSocket, Socket.IO with the device
token, TURN allocations with the credentials the hub hands out). `--root` only says where the
kiosk's files are; the hardware and the network are always this computer's.

A failed check is either *required* (the kiosk cannot work: exit code 1) or a warning (it works,
but worse, or it could not be checked because another check failed: shown with ⚠). Every check
has a short timeout, and the hardware and the network are checked side by side, so a run takes
seconds even when the hub is down."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import shutil
import socket
import ssl
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance.texts import _, translate
from provisioning.config import read_device_config
from provisioning.target import Target
from provisioning.units import DATA_DIR

HUB_TIMEOUT_S = 3.0  # connecting and answering, each
WEBSOCKET_TIMEOUT_S = 4.0
SOCKETIO_TIMEOUT_S = 5.0
ICE_TIMEOUT_S = 2.0
TURN_TIMEOUT_S = 3.0
CAMERA_TIMEOUT_S = 5.0
CAMERA_FRAMES = 3
MAX_SKEW_S = 60  # beyond this, TLS and the hub's tokens fail
DISK_NEEDED_MB = 200  # the state file and the logs
DISK_UPDATE_MB = 1024  # `provision update` installs a new version beside the old one
MIN_SCREEN = (1024, 600)  # kiosk_ui draws for 1280×800 and scales

LABELS = {
    "camera": _("Camera"),
    "microphone": _("Microphone"),
    "speaker": _("Speaker"),
    "screen": _("Screen"),
    "disk": _("Free disk"),
    "hub": _("Hub"),
    "time": _("Clock"),
    "websocket": _("WebSocket"),
    "paired": _("Pairing"),
    "turn_udp": _("TURN over UDP"),
    "turn_tls": _("TURN over TCP/TLS"),
}


@dataclass(frozen=True)
class Result:
    """One line of the checklist; `fix` is None when there is nothing to do."""

    id: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = True


@dataclass(frozen=True)
class Context:
    """What every check needs; `_` translates a text into the run's language."""

    lang: str
    data_dir: Path
    hub_url: str | None
    fake: bool

    def _(self, message: str, **values: Any) -> str:
        text = translate(message, self.lang)
        return text % values if values else text


@dataclass(frozen=True)
class HubProbe:
    """What the first contact with the hub found out, for the checks that follow it."""

    reachable: bool
    skew_s: float | None = None  # this clock minus the hub's (from its Date header)


def run(args: argparse.Namespace) -> int:
    # The checklist is the output; the libraries' chatter would hide it.
    logging.getLogger().setLevel(logging.WARNING)
    data_dir = args.data_dir or Target(args.root).path(DATA_DIR)
    ctx = Context(
        args.lang, data_dir, args.hub or configured_hub_url(args.root, data_dir), args.fake_camera
    )
    results = check_all(ctx)
    if args.json:
        print(json.dumps([asdict(r) for r in results], ensure_ascii=False, indent=1))
    else:
        print(report(ctx, results))
    return 0 if all(r.ok or not r.required for r in results) else 1


def check_all(ctx: Context) -> list[Result]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        hardware = pool.submit(check_hardware, ctx)
        network = pool.submit(check_network, ctx)
        found = {r.id: r for r in [*hardware.result(), *network.result()]}
    return [found[key] for key in LABELS]


def report(ctx: Context, results: list[Result]) -> str:
    lines = [ctx._("Checking this kiosk (hub: %(url)s)", url=ctx.hub_url or "?"), ""]
    for r in results:
        mark = "✓" if r.ok else ("✗" if r.required else "⚠")
        lines.append(f"{mark} {ctx._(LABELS[r.id])}: {r.detail}")
        if r.fix:
            lines.append(f"    → {r.fix}")
    failed = sum(not r.ok and r.required for r in results)
    lines.append("")
    if failed:
        lines.append(ctx._("Problems to fix before the kiosk works: %(n)d.", n=failed))
    else:
        lines.append(ctx._("Everything the kiosk needs works."))
    return "\n".join(lines)


def configured_hub_url(root: Path, data_dir: Path) -> str | None:
    """The kiosk's hub: the one install configured (the unit starts the kiosk with it), else
    the one the kiosk stored in its state (a kiosk started by hand)."""
    config = read_device_config(root)
    if config is not None:
        return config.hub
    if not (data_dir / "kiosk.json").exists():
        return None
    state = _state(data_dir)
    try:
        return state.hub_url
    finally:
        state.close()


def _state(data_dir: Path) -> Any:
    from appliance.state import KioskState

    return KioskState(data_dir)


# ---- hardware --------------------------------------------------------------------------------


def check_hardware(ctx: Context) -> list[Result]:
    return [
        check_camera(ctx),
        *check_sound(ctx),
        check_screen(ctx),
        check_disk(ctx),
    ]


def check_camera(ctx: Context) -> Result:
    from appliance.media import SyntheticVideo
    from appliance.visit import Options

    options = Options()
    if ctx.fake:
        track: Any = SyntheticVideo(*options.video_size, fps=options.fps)
        source = ctx._("the synthetic camera")
    else:
        if not Path(options.camera).exists():
            return Result(
                "camera",
                False,
                ctx._("No camera at %(device)s.", device=options.camera),
                ctx._("Plug the webcam into a USB port and run the check again."),
            )
        from aiortc.contrib.media import MediaPlayer

        try:
            player = MediaPlayer(
                options.camera,
                format="v4l2",
                options={
                    "framerate": str(options.fps),
                    "video_size": f"{options.video_size[0]}x{options.video_size[1]}",
                },
            )
        except Exception as exc:
            return Result(
                "camera",
                False,
                ctx._(
                    "%(device)s could not be opened (%(error)s).", device=options.camera, error=exc
                ),
                ctx._(
                    "The running kiosk uses the camera: stop it first (`systemctl stop "
                    "lektiecafe-kiosk`). Otherwise unplug the webcam and plug it in again."
                ),
            )
        track, source = player.video, options.camera
    try:
        frame = asyncio.run(_frames(track))
    except Exception:  # no frame in time, or the device failed while reading
        frame = None
    finally:
        track.stop()
    if frame is None:
        return Result(
            "camera",
            False,
            ctx._("%(source)s gives no pictures.", source=source),
            ctx._("Unplug the webcam and plug it in again, or try another USB port."),
        )
    return Result(
        "camera",
        True,
        ctx._(
            "%(source)s gives pictures (%(width)d×%(height)d).",
            source=source,
            width=frame.width,
            height=frame.height,
        ),
    )


async def _frames(track: Any) -> Any:
    async def read() -> Any:
        frame = None
        for _i in range(CAMERA_FRAMES):
            frame = await track.recv()
        return frame

    return await asyncio.wait_for(read(), CAMERA_TIMEOUT_S)


def sound_devices(pcm: Path) -> dict[str, list[str]]:
    """ALSA's PCM devices by direction ("playback", "capture"): their names."""
    found: dict[str, list[str]] = {"playback": [], "capture": []}
    if not pcm.exists():
        return found
    for line in pcm.read_text().splitlines():
        # "00-00: USB Audio : USB Audio : playback 1 : capture 1"
        parts = [p.strip() for p in line.split(":")]
        for part in parts[3:]:
            direction = part.split(" ")[0]
            if direction in found and parts[2] not in found[direction]:
                found[direction].append(parts[2])
    return found


def check_sound(ctx: Context, pcm: Path = Path("/proc/asound/pcm")) -> list[Result]:
    devices = sound_devices(pcm)
    fake_note = ctx._(" The synthetic sound is used (--fake-camera).") if ctx.fake else ""
    results = []
    for check, direction, missing, fix in (
        (
            "microphone",
            "capture",
            _("No microphone: ALSA finds no sound card that records."),
            _("Plug in the headset (USB). `arecord -l` should then list it."),
        ),
        (
            "speaker",
            "playback",
            _("No speaker: ALSA finds no sound card that plays."),
            _("Plug in the headset (USB). `aplay -l` should then list it."),
        ),
    ):
        names = devices[direction]
        if names:
            results.append(Result(check, True, ", ".join(names)))
        else:
            results.append(
                Result(check, False, ctx._(missing) + fake_note, ctx._(fix), required=not ctx.fake)
            )
    return results


def check_screen(ctx: Context, drm: Path = Path("/sys/class/drm")) -> Result:
    connectors = sorted(drm.glob("card*-*"))
    connected = []
    for connector in connectors:
        try:
            if (connector / "status").read_text().strip() != "connected":
                continue
            modes = (connector / "modes").read_text().split()
        except OSError:
            continue
        connected.append((connector.name.split("-", 1)[1], modes[0] if modes else "?"))
    if not connectors:
        return Result(
            "screen",
            False,
            ctx._("No screen output found (no DRM connectors in /sys/class/drm)."),
            ctx._(
                "The kiosk needs a screen on this computer's own HDMI or DisplayPort output. "
                "On a Raspberry Pi, check that the KMS graphics driver is enabled."
            ),
        )
    if not connected:
        return Result(
            "screen",
            False,
            ctx._(
                "No screen is connected (outputs: %(names)s).",
                names=", ".join(c.name.split("-", 1)[1] for c in connectors),
            ),
            ctx._("Connect the screen with its cable, switch it on and run the check again."),
        )
    detail = ", ".join(f"{name} {mode}" for name, mode in connected)
    width, _x, height = connected[0][1].partition("x")
    if (
        width.isdigit()
        and height.isdigit()
        and (int(width) < MIN_SCREEN[0] or int(height) < MIN_SCREEN[1])
    ):
        return Result(
            "screen",
            False,
            ctx._("%(found)s: smaller than the kiosk is made for.", found=detail),
            ctx._("Use a screen of at least 1024×600 (1280×800 is best)."),
            required=False,
        )
    return Result("screen", True, detail)


def check_disk(ctx: Context) -> Result:
    where = ctx.data_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    free_mb = shutil.disk_usage(where).free // 2**20
    detail = ctx._("%(free)s free in %(dir)s.", free=_size(free_mb), dir=where)
    if free_mb < DISK_NEEDED_MB:
        fix = ctx._(
            "Delete what is not needed (e.g. `journalctl --vacuum-size=100M`) or use a "
            "bigger SD card."
        )
        return Result("disk", False, detail, fix)
    if free_mb < DISK_UPDATE_MB:
        fix = ctx._(
            "Enough to run, not enough for `lektiecafe provision update` (1 GB). Free "
            "some space or use a bigger SD card."
        )
        return Result("disk", False, detail, fix, required=False)
    return Result("disk", True, detail)


def _size(mb: int) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb} MB"


# ---- network ---------------------------------------------------------------------------------


def check_network(ctx: Context) -> list[Result]:
    hub, probe = check_hub(ctx)
    results = [hub, check_time(ctx, probe.skew_s)]
    if not probe.reachable:
        not_checked = ctx._("Not checked: the hub cannot be reached (see Hub).")
        return [
            *results,
            Result("websocket", False, not_checked, required=False),
            check_paired(ctx, probe)[0],
            *turn_not_checked(ctx, not_checked),
        ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        websocket = pool.submit(check_websocket, ctx)
        paired, ice = check_paired(ctx, probe)
    results += [websocket.result(), paired]
    if ice is None:
        reason = (
            ctx._("Not checked: the hub did not say which TURN servers it uses (an older hub?).")
            if paired.ok
            else ctx._("Not checked: only a paired kiosk gets the TURN servers (see Pairing).")
        )
        return [*results, *turn_not_checked(ctx, reason)]
    return [*results, *check_turn(ctx, ice)]


def check_hub(ctx: Context) -> tuple[Result, HubProbe]:
    import requests

    url = ctx.hub_url
    if not url:
        return Result(
            "hub",
            False,
            ctx._("No hub address is set."),
            ctx._(
                "Run `lektiecafe provision install --hub https://…`, or give the check "
                "`--hub https://…`."
            ),
        ), HubProbe(False)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Result(
            "hub",
            False,
            ctx._("“%(url)s” is not a web address.", url=url),
            ctx._(
                "Give the hub's address as the browser shows it, e.g. "
                "https://lektiecafe.example.dk."
            ),
        ), HubProbe(False)
    try:
        started = time.monotonic()
        response = requests.get(url + "/healthz", timeout=HUB_TIMEOUT_S)
        elapsed_ms = (time.monotonic() - started) * 1000
    except requests.RequestException as exc:
        detail, fix = explain_connection_error(ctx, exc, parts.hostname, _port(parts))
        return Result("hub", False, detail, fix), HubProbe(False)
    probe = HubProbe(True, _skew(response.headers.get("Date")))
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.history:
        moved = response.url.removesuffix("/healthz")
        return Result(
            "hub",
            False,
            ctx._("The hub's address leads on to %(url)s.", url=moved),
            ctx._(
                "Use %(url)s as the hub's address (`lektiecafe provision install --hub %(url)s`).",
                url=moved,
            ),
        ), probe
    if response.status_code != 200 or body != {"ok": True}:
        return Result(
            "hub",
            False,
            ctx._(
                "%(url)s answers (HTTP %(status)d), but not as a Lektiecafé hub.",
                url=url,
                status=response.status_code,
            ),
            ctx._(
                "Check the address. If it is right, the hub behind it is not running: tell "
                "whoever runs the hub."
            ),
        ), HubProbe(False)  # the other checks would talk to whatever this is
    if parts.scheme == "https":
        return Result("hub", True, ctx._("Reachable over HTTPS (%(ms)d ms).", ms=elapsed_ms)), probe
    if _loopback(parts.hostname):
        return Result(
            "hub", True, ctx._("Reachable over plain HTTP on this computer (a development hub).")
        ), probe
    return Result(
        "hub",
        False,
        ctx._(
            "Reachable, but over plain HTTP: anyone on the network can read what the kiosk sends."
        ),
        ctx._("Use the hub's https:// address. Plain HTTP is only for a hub on this computer."),
    ), probe


def explain_connection_error(
    ctx: Context, exc: BaseException, host: str, port: int
) -> tuple[str, str]:
    """(what happened, what to do) for a failed connection to `host`, in site staff's words."""
    cause = _root_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return explain_certificate(ctx, cause, host)
    if isinstance(cause, socket.gaierror):
        return (
            ctx._("The name %(host)s is not found (DNS).", host=host),
            ctx._(
                "Check the address for typing errors, and that this computer is on the "
                "network (cable or Wi-Fi)."
            ),
        )
    if isinstance(cause, ConnectionRefusedError):
        return (
            ctx._("Nothing answers at %(host)s:%(port)d.", host=host, port=port),
            ctx._(
                "Check the address and the port. If they are right, the hub is down: tell "
                "whoever runs it."
            ),
        )
    if isinstance(cause, TimeoutError | socket.timeout) or "timed out" in str(exc):
        return (
            ctx._("No answer from %(host)s:%(port)d in time.", host=host, port=port),
            ctx._(
                "A firewall may block the way, or the hub is down. Check this computer's "
                "network, then ask the IT department or whoever runs the hub."
            ),
        )
    if isinstance(cause, ssl.SSLError):
        return (
            ctx._(
                "The secure connection to %(host)s failed (%(error)s).",
                host=host,
                error=cause.reason or cause,
            ),
            ctx._(
                "Check that the address starts with https:// only if the hub speaks HTTPS "
                "there; otherwise tell whoever runs the hub."
            ),
        )
    return (
        ctx._(
            "The connection to %(host)s:%(port)d failed (%(error)s).",
            host=host,
            port=port,
            error=cause,
        ),
        ctx._("Check this computer's network (cable or Wi-Fi) and the address."),
    )


def explain_certificate(
    ctx: Context, error: ssl.SSLCertVerificationError, host: str
) -> tuple[str, str]:
    code = error.verify_code
    if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return (
            ctx._("The certificate is not made for the name %(host)s.", host=host),
            ctx._(
                "Use the address the certificate is made for, or ask whoever runs the hub "
                "for a certificate for %(host)s.",
                host=host,
            ),
        )
    if code in (9, 10):  # not yet valid, expired
        return (
            ctx._("The certificate is not valid now (%(error)s).", error=error.verify_message),
            ctx._(
                "If this computer's clock is wrong, set it right first (see Clock). "
                "Otherwise whoever runs the hub must renew the certificate."
            ),
        )
    if code in (18, 19, 20, 21):  # self-signed, unknown authority
        return (
            ctx._(
                "The certificate is not from a trusted authority (%(error)s).",
                error=error.verify_message,
            ),
            ctx._(
                "Whoever runs the hub should use a certificate from a public authority, e.g. "
                "Let's Encrypt."
            ),
        )
    return (
        ctx._("The certificate was refused (%(error)s).", error=error.verify_message),
        ctx._("Tell whoever runs the hub."),
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception (requests and urllib3 wrap the socket's error in layers)."""
    seen = exc
    while True:
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            for arg in seen.args:  # urllib3's MaxRetryError carries its reason as an argument
                if isinstance(arg, BaseException):
                    return _root_cause(arg)
            reason = getattr(seen, "reason", None)
            return _root_cause(reason) if isinstance(reason, BaseException) else seen
        seen = inner


def _port(parts: Any) -> int:
    return int(parts.port or (443 if parts.scheme in ("https", "wss") else 80))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _skew(date: str | None) -> float | None:
    try:
        return time.time() - parsedate_to_datetime(date).timestamp() if date else None
    except (TypeError, ValueError):
        return None


def ntp_synchronised() -> bool | None:
    """What systemd says of the clock; None where it cannot say (no systemd, a container)."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        answer = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=2,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = answer.stdout.strip()
    return {"yes": True, "no": False}.get(value) if answer.returncode == 0 else None


def check_time(ctx: Context, skew_s: float | None) -> Result:
    ntp = ntp_synchronised()
    sync_fix = ctx._(
        "Turn on time synchronisation (`timedatectl set-ntp true`); the network "
        "must let NTP (UDP port 123) through."
    )
    if skew_s is not None and abs(skew_s) > MAX_SKEW_S:
        return Result(
            "time",
            False,
            ctx._(
                "The clock is %(s)d seconds off the hub's: secure connections and sign-ins fail.",
                s=round(abs(skew_s)),
            ),
            sync_fix,
        )
    if skew_s is not None:
        detail = ctx._("Within %(s)d s of the hub's clock.", s=max(1, round(abs(skew_s))))
        if ntp is False:
            return Result(
                "time",
                False,
                detail + " " + ctx._("But it is not synchronised, so it will drift."),
                sync_fix,
                required=False,
            )
        return Result("time", True, detail)
    if ntp:
        return Result("time", True, ctx._("Synchronised (NTP); not compared with the hub."))
    if ntp is False:
        return Result("time", False, ctx._("Not synchronised (NTP)."), sync_fix)
    return Result(
        "time",
        False,
        ctx._("Could not be checked (no answer from the hub, and timedatectl cannot say)."),
        ctx._("Check again when the hub can be reached."),
        required=False,
    )


def check_websocket(ctx: Context) -> Result:
    """An Engine.IO WebSocket handshake, as the kiosk's Socket.IO connection starts (proxies
    that drop the Upgrade header let HTTPS through but not this)."""
    import websocket

    assert ctx.hub_url is not None
    parts = urlsplit(ctx.hub_url)
    url = "ws" + ctx.hub_url.removeprefix("http") + "/socket.io/?EIO=4&transport=websocket"
    blocked_fix = ctx._(
        "A proxy or firewall stops WebSocket connections. Ask the IT department "
        "to allow WebSocket (HTTP Upgrade) to %(host)s.",
        host=parts.hostname,
    )
    try:
        conn = websocket.create_connection(url, timeout=WEBSOCKET_TIMEOUT_S)
        try:
            first = conn.recv()
        finally:
            conn.close()
    except websocket.WebSocketBadStatusException as exc:
        return Result(
            "websocket",
            False,
            ctx._(
                "The WebSocket upgrade was answered with HTTP %(status)d.", status=exc.status_code
            ),
            blocked_fix,
        )
    except (websocket.WebSocketException, OSError) as exc:
        if isinstance(exc, websocket.WebSocketTimeoutException | TimeoutError):
            return Result("websocket", False, ctx._("No WebSocket answer in time."), blocked_fix)
        detail, fix = explain_connection_error(ctx, exc, parts.hostname or "", _port(parts))
        return Result("websocket", False, detail, fix)
    if not (isinstance(first, str) and first.startswith("0{") and '"sid"' in first):
        return Result(
            "websocket",
            False,
            ctx._("Something else than the hub answered the WebSocket."),
            blocked_fix,
        )
    return Result("websocket", True, ctx._("The hub's WebSocket opens."))


def check_paired(ctx: Context, probe: HubProbe) -> tuple[Result, list[dict[str, Any]] | None]:
    """Connects with the device token (over any transport: a blocked WebSocket is the other
    check's finding), and asks for the ICE servers while connected."""
    identity = None
    if (ctx.data_dir / "kiosk.json").exists():
        state = _state(ctx.data_dir)
        try:
            identity = state.identity
        finally:
            state.close()
    if identity is None:
        # A warning: a new kiosk pairs only once it runs, after the check that precedes its
        # first start (docs/kiosk.md, "Set up a kiosk": `provision check && sudo reboot`).
        return Result(
            "paired",
            False,
            ctx._("This kiosk is not paired."),
            ctx._(
                "Start the kiosk: it shows a code. Site staff type it in at %(url)s.",
                url=f"{ctx.hub_url or '…'}/admin/devices",
            ),
            required=False,
        ), None
    if not probe.reachable:
        return Result(
            "paired",
            False,
            ctx._(
                "Paired with %(site)s; not checked with the hub (see Hub).", site=identity.site_name
            ),
            required=False,
        ), None
    import socketio

    from appliance.hub import REJECTED

    client = socketio.Client(reconnection=False)
    refused: list[bool] = []
    client.on(
        "connect_error",
        lambda data=None: refused.append(
            isinstance(data, dict) and data.get("message") == REJECTED
        ),
    )
    try:
        client.connect(
            ctx.hub_url,
            auth={"device_token": identity.device_token, "lang": ctx.lang},
            wait_timeout=SOCKETIO_TIMEOUT_S,
        )
    except socketio.exceptions.ConnectionError as exc:
        client.shutdown()
        if any(refused):
            return Result(
                "paired",
                False,
                ctx._("Unpaired or revoked: the hub no longer knows this kiosk."),
                ctx._("Run `lektiecafe provision reset` and pair the kiosk again."),
            ), None
        return Result(
            "paired",
            False,
            ctx._("Could not connect with the kiosk's key (%(error)s).", error=exc),
            ctx._(
                "Run the check again in a minute; if it stays like this, tell whoever runs the hub."
            ),
        ), None
    try:
        answer = client.call("device:ice", {}, timeout=ICE_TIMEOUT_S)
    except socketio.exceptions.TimeoutError:
        answer = None
    finally:
        # Without waiting for the reading thread: a long poll can take the ping interval (25 s).
        client.eio.disconnect(abort=True)
    paired = Result(
        "paired",
        True,
        ctx._(
            "Paired with %(site)s (kiosk %(id)d).", site=identity.site_name, id=identity.device_id
        ),
    )
    if isinstance(answer, dict) and answer.get("ok"):
        return paired, list(answer.get("ice_servers") or [])
    return paired, None


def turn_not_checked(ctx: Context, reason: str) -> list[Result]:
    return [Result(check, False, reason, required=False) for check in ("turn_udp", "turn_tls")]


def check_turn(ctx: Context, ice_servers: list[dict[str, Any]]) -> list[Result]:
    """A TURN allocation, as a call makes, with the hub's short-lived credentials, over UDP and
    over TCP/TLS. Either way is enough for calls; neither is a required failure."""
    from aiortc.rtcicetransport import parse_stun_turn_uri

    kinds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {"udp": [], "tcp": []}
    for server in ice_servers:
        urls = server.get("urls")
        for url in [urls] if isinstance(urls, str) else urls or []:
            try:
                parsed = parse_stun_turn_uri(url)
            except ValueError:
                continue
            if parsed["scheme"] in ("turn", "turns"):
                kinds[parsed["transport"]].append(({**parsed, "url": url}, server))
    results = [
        _turn_result(ctx, "turn_udp", kinds["udp"], _("UDP")),
        _turn_result(ctx, "turn_tls", kinds["tcp"], _("TCP/TLS")),
    ]
    if any(r.ok for r in results):
        results = [replace(r, required=False) for r in results]
    return results


def _turn_result(
    ctx: Context,
    check: str,
    servers: list[tuple[dict[str, Any], dict[str, Any]]],
    transport: str,
) -> Result:
    if not servers:
        return Result(
            check,
            False,
            ctx._(
                "The hub hands out no TURN server over %(transport)s.", transport=ctx._(transport)
            ),
            ctx._(
                "Calls from networks that block direct connections can fail. Whoever runs the "
                "hub sets turn_urls and turn_secret (see docs/operations.md)."
            ),
            required=False,
        )
    failure: tuple[str, str] | None = None
    for parsed, server in servers:
        problem = asyncio.run(_allocate(ctx, parsed, server))
        if problem is None:
            return Result(check, True, ctx._("%(url)s gives a relay.", url=parsed["url"]))
        failure = failure or problem
    assert failure is not None
    return Result(check, False, *failure)


async def _allocate(
    ctx: Context, parsed: dict[str, Any], server: dict[str, Any]
) -> tuple[str, str] | None:
    """None when the TURN server gave an allocation; else (what happened, what to do)."""
    from aioice import stun
    from aioice.turn import create_turn_endpoint

    host, port, transport = parsed["host"], parsed["port"], parsed["transport"]
    secure = parsed["scheme"] == "turns"
    try:
        relay, _protocol = await asyncio.wait_for(
            create_turn_endpoint(
                asyncio.DatagramProtocol,
                (host, port),
                server.get("username"),
                server.get("credential"),
                ssl=ssl.create_default_context() if secure else None,
                transport=transport,
            ),
            TURN_TIMEOUT_S,
        )
    except stun.TransactionFailed as exc:
        code = exc.response.attributes.get("ERROR-CODE", (0, ""))[0]
        if code == 401:
            return (
                ctx._("%(url)s refuses the hub's TURN credentials.", url=parsed["url"]),
                ctx._(
                    "The hub's turn_secret and coturn's static-auth-secret differ: whoever "
                    "runs the hub must set the same secret in both."
                ),
            )
        return ctx._("%(url)s refused the relay (%(error)s).", url=parsed["url"], error=exc), ctx._(
            "Tell whoever runs the hub."
        )
    except (TimeoutError, stun.TransactionTimeout, OSError, ssl.SSLError) as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return explain_certificate(ctx, exc, host)
        return (
            ctx._(
                "No answer from %(host)s on %(transport)s port %(port)d.",
                host=host,
                transport=transport.upper(),
                port=port,
            ),
            ctx._(
                "The network or the TURN server's firewall blocks %(transport)s port %(port)d, "
                "or the TURN server is down. Ask the IT department to allow %(transport)s "
                "%(port)d to %(host)s, or tell whoever runs the hub.",
                host=host,
                transport=transport.upper(),
                port=port,
            ),
        )
    relay.close()
    return None
