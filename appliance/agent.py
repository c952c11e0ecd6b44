"""The kiosk's health agent: a heartbeat to the hub every 30 seconds (and at once when the camera
comes or goes), the settings site staff push from the hub, and the remote commands they send from
the hub's kiosks page.

It runs inside the kiosk process, on the kiosk's one hub connection, not as a separate
`lektiecafe agent` process: the hub treats a kiosk as one connection that acts for the visiting
student and still sends the kiosk's own events, and "restart the kiosk program" is best done by
the program itself between two visits. Commands that would cut a visit short (restart, reboot)
wait until nobody is at the screen (no visit, and no student typing a nickname); the answer goes
to the hub when the command was carried out.

The hub reads its history of problems from the heartbeats: `started` in the program's first one,
`offline_s` in the first after the hub was out of reach long enough for the screen to say so."""

from __future__ import annotations

import glob
import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.hub import CONNECTED, DISCONNECTED, OFFLINE_AFTER_S, HubCallError, HubConnection
from lektiecafe import __version__

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
KIOSK_SERVICE = "lektiecafe-kiosk.service"
# Once per process: uptime counts from here, and the first delivered heartbeat says "started".
PROGRAM_STARTED = time.monotonic()
_start_reported = threading.Event()


@dataclass(frozen=True)
class Command:
    command_id: int
    name: str


def cpu_temp_c() -> float | None:
    """The hottest thermal zone (the SoC on a Raspberry Pi), where the board has one."""
    temps = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        try:
            temps.append(int(Path(path).read_text().strip()) / 1000)
        except (OSError, ValueError):
            continue
    plausible = [t for t in temps if -60 <= t <= 150]
    return round(max(plausible), 1) if plausible else None


def running_as_kiosk_service() -> bool:
    """Whether systemd started this process as the kiosk's unit (its cgroup says so)."""
    try:
        return KIOSK_SERVICE in Path("/proc/self/cgroup").read_text()
    except OSError:
        return False


class Agent:
    """Heartbeats and commands on `conn`, on a thread of its own."""

    def __init__(
        self,
        conn: HubConnection,
        data_dir: Path,
        camera_ok: Callable[[], bool],
        visit_active: Callable[[], bool],
        restart: Callable[[], None],
        reload_config: Callable[[], None],
        apply_settings: Callable[[Any], None],
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        """`apply_settings(payload)` gets the hub's settings (a `device:settings` event or the
        answer to a heartbeat), on the agent's or the connection's thread."""
        self.conn = conn
        self.data_dir = data_dir
        self.camera_ok = camera_ok
        self.visit_active = visit_active
        self.restart = restart
        self.reload_config = reload_config
        self.apply_settings = apply_settings
        self.heartbeat_s = heartbeat_s
        self._camera_reported: bool | None = None
        self._lost_at: float | None = None  # when the connection dropped
        self._offline_s: float | None = None  # to report with the next heartbeat
        self._inbox: queue.Queue[Command | str] = queue.Queue()
        self._deferred: list[Command] = []  # waiting for the visit to end
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent", daemon=True)
        conn.listen(self._on_event)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put("stop")
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def health(self) -> dict[str, Any]:
        """The heartbeat's fields (docs/protocol.md, "Devices"); uptime is the kiosk program's,
        so staff see a restart they asked for."""
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        health: dict[str, Any] = {
            "version": __version__,
            "uptime_s": int(time.monotonic() - PROGRAM_STARTED),
            "camera_ok": bool(self.camera_ok()),
            "cpu_temp_c": cpu_temp_c(),
            "disk_free_mb": shutil.disk_usage(self.data_dir).free // 2**20,
            "load": round(max(0.0, load), 2),
            "started": not _start_reported.is_set(),
        }
        if self._offline_s is not None:
            health["offline_s"] = round(self._offline_s, 1)
        return health

    # ---- on the connection's dispatcher: only enqueue ----------------------------------------

    def _on_event(self, event: str, data: Any) -> None:
        if event == CONNECTED:
            if self._lost_at is not None:
                away = time.monotonic() - self._lost_at
                # Shorter drops (a reconnect for another language) never showed as offline.
                self._offline_s = away if away >= OFFLINE_AFTER_S else None
                self._lost_at = None
            self._inbox.put("heartbeat")  # staff see the kiosk is back at once
        elif event == DISCONNECTED:
            self._lost_at = self._lost_at or time.monotonic()
        elif event == "device:settings":
            self.apply_settings(data)
        elif event == "device:command" and isinstance(data, dict):
            try:
                self._inbox.put(Command(int(data["command_id"]), str(data["name"])))
            except (KeyError, TypeError, ValueError):
                log.warning("a command the kiosk cannot read: %r", data)

    # ---- the agent's thread ------------------------------------------------------------------

    def _run(self) -> None:
        next_beat = time.monotonic()
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=max(0.0, min(1.0, next_beat - time.monotonic())))
            except queue.Empty:
                item = None
            if item == "stop":
                return
            camera_changed = self._camera_reported not in (None, bool(self.camera_ok()))
            if item == "heartbeat" or camera_changed or time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + self.heartbeat_s
            if isinstance(item, Command):
                self._carry_out(item)
            if self._deferred and not self.visit_active():
                deferred, self._deferred = self._deferred, []
                for command in deferred:
                    self._carry_out(command)

    def _heartbeat(self) -> None:
        if not self.conn.connected:
            return
        health = self.health()
        try:
            answer = self.conn.call("device:heartbeat", health)
        except HubCallError as exc:
            log.info("heartbeat not delivered: %s", exc)
            return
        self._camera_reported = health["camera_ok"]
        self._offline_s = None
        _start_reported.set()
        if "settings" in answer:
            self.apply_settings(answer["settings"])

    def _carry_out(self, command: Command) -> None:
        if command.name == "reload_config":
            self.reload_config()
            self._done(command, True, "")
        elif command.name in ("restart_kiosk", "reboot"):
            if command.name == "reboot" and not running_as_kiosk_service():
                detail = f"Not running as {KIOSK_SERVICE}; a reboot is refused."
                self._done(command, False, detail)
            elif self.visit_active():
                self._deferred.append(command)  # after the student's visit
            elif command.name == "restart_kiosk":
                self._done(command, True, "")
                self.restart()
            else:
                self._reboot(command)
        else:
            self._done(command, False, f"Unknown command {command.name!r}.")

    def _reboot(self, command: Command) -> None:
        try:
            result = subprocess.run(
                ["systemctl", "reboot"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._done(command, False, str(exc)[:500])
            return
        self._done(command, result.returncode == 0, result.stderr.strip()[:500])

    def _done(self, command: Command, ok: bool, detail: str) -> None:
        try:
            self.conn.call(
                "device:command_done",
                {"command_id": command.command_id, "ok": ok, "detail": detail},
            )
        except HubCallError as exc:
            log.warning("could not report command %s: %s", command.command_id, exc)
