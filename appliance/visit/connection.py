"""The kiosk's connection to the hub: the Socket.IO connection and the health agent on it, the
visit the connection acts for, the settings and commands the hub pushes, and the routing of the
hub's events to the parts that handle them (each part registers its events with `on`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.agent import Agent
from appliance.hub import CONNECTED, HubCallError, HubConnection, unreachable
from appliance.state import HubSettings
from appliance.visit.context import Context

log = logging.getLogger(__name__)

CONNECT_WAIT_S = 10.0  # start() waits this long for a connection that is being made

Handler = Callable[[dict[str, Any]], None]


class HubLink:
    """One per kiosk process; the connection itself is replaced when the kiosk is paired again
    or moves to another hub address."""

    def __init__(
        self,
        ctx: Context,
        *,
        camera_ok: Callable[[], bool],
        visit_active: Callable[[], bool],
        restart: Callable[[], None],
        unpaired: Callable[[], None],
    ) -> None:
        """`unpaired` is called (on the connection's thread) when the hub no longer knows the
        kiosk; the link drops its connection after it."""
        self.ctx = ctx
        self.conn: HubConnection | None = None
        self._agent: Agent | None = None
        self._acting: tuple[int, int] | None = None  # (connection epoch, visit) acted for
        self._camera_ok = camera_ok
        self._visit_active = visit_active
        self._restart = restart
        self._unpaired = unpaired
        self._connected: Callable[[], None] = lambda: None
        self._handlers: dict[str, tuple[Handler, bool]] = {}

    # ---- routing ---------------------------------------------------------------------------

    def on(self, event: str, handler: Handler, *, room_only: bool = False) -> None:
        """Run `handler(data)` on the worker for each `event` whose data is a dict; `room_only`:
        only when it is about the room under way (its room_id is the visit's)."""
        self._handlers[event] = (handler, room_only)

    def on_connected(self, handler: Callable[[], None]) -> None:
        """Run `handler()` on the worker after every (re)connect, before any event that follows."""
        self._connected = handler

    def _on_hub_event(self, event: str, data: Any) -> None:
        if event == "device:revoked":  # staff unpaired the kiosk; the hub closes the connection
            self._on_refused()
            return
        self.ctx.submit(self._handle_event, event, data)

    def _handle_event(self, event: str, data: Any) -> None:
        v = self.ctx.v
        log.debug("hub event %s in phase %s", event, v.phase)
        if event == CONNECTED:
            self._connected()
            return
        if not isinstance(data, dict) or event not in self._handlers:
            return  # DISCONNECTED: a new connection starts with CONNECTED
        handler, room_only = self._handlers[event]
        if room_only and (v.room_id is None or data.get("room_id") != v.room_id):
            return
        handler(data)

    # ---- the connection --------------------------------------------------------------------

    def connect(self, url: str, token: str) -> None:
        conn = HubConnection(url, token, self.ctx.lang)
        conn.listen(self._on_hub_event)
        conn.on_refused(self._on_refused)
        self._agent = Agent(
            conn,
            self.ctx.options.data_dir,
            camera_ok=self._camera_ok,
            visit_active=self._visit_active,
            restart=self._restart,
            reload_config=self._reload_config,
            apply_settings=self._apply_settings,
        )
        self.conn = conn
        conn.start()
        self._agent.start()

    def disconnect(self) -> None:
        agent, conn = self._agent, self.conn
        self._agent = self.conn = None
        if agent is not None:
            agent.stop()
        if conn is not None:
            conn.close()

    def set_language(self, lang: str) -> None:
        if self.conn is not None:
            self.conn.set_language(lang)

    def hub(self) -> HubConnection:
        """The connection, or HubUnreachable ("offline") when there is none."""
        if self.conn is None:
            raise unreachable("offline", self.ctx.lang)
        return self.conn

    def wait_connected(self) -> HubConnection:
        """The connection, waiting a little for one that is (re)connecting (a language change
        reconnects)."""
        conn = self.hub()
        deadline = time.monotonic() + CONNECT_WAIT_S
        while not conn.connected and time.monotonic() < deadline and conn.status != "unpaired":
            time.sleep(0.05)
        return conn

    # ---- acting for a visit ------------------------------------------------------------------

    def act_for(self, epoch: int, visit_id: int) -> None:
        """The hub takes the calls of connection `epoch` for `visit_id` now."""
        self._acting = (epoch, visit_id)

    def stop_acting(self) -> None:
        """The hub heard the end of the visit acted for."""
        self._acting = None

    def acting_for(self) -> int | None:
        """The visit the hub takes this connection's calls for (None: the kiosk itself)."""
        conn, acting = self.conn, self._acting
        if conn is None or acting is None or acting[0] != conn.epoch:
            return None
        return acting[1]

    def visit_call(self, event: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call on behalf of the visit under way.

        After every connect the connection is the kiosk's own until the facade's resume has
        resumed the visit, and the hub refuses a visit's calls from it ("forbidden"). Work queued
        on the worker before that (a chat line written while the network was down) may run in
        between: such a call counts as not sent (HubUnreachable), so the line stays pending and
        goes with the resume, instead of being shown as refused for good."""
        conn, v = self.hub(), self.ctx.v
        epoch = conn.epoch
        if v.visit_id is None or self._acting != (epoch, v.visit_id):
            raise unreachable("offline", self.ctx.lang)
        try:
            return conn.call(event, payload)
        except HubCallError as exc:
            if conn.epoch != epoch:  # the connection changed under the call
                raise unreachable("offline", self.ctx.lang) from exc
            raise

    # ---- what the hub pushes -----------------------------------------------------------------

    def _apply_settings(self, payload: Any) -> None:
        """Settings from the hub: kept in the state (a restart offline still has them) and in the
        next snapshot, where the UI picks them up."""
        settings, state = HubSettings.from_payload(payload), self.ctx.state
        if settings == self.ctx.settings or state is None:
            return
        state.store_hub_settings(settings)
        self.ctx.settings = settings

    def _on_refused(self) -> None:
        """The hub no longer knows the token (the kiosk was unpaired): back to pairing."""
        self.ctx.settings = HubSettings()
        self._unpaired()
        threading.Thread(target=self.disconnect, daemon=True).start()

    def _reload_config(self) -> None:
        """Settings changed on disk (provisioning): read them again; a new hub address means a
        new connection."""
        state = self.ctx.state
        if state is None:
            return
        state.reload()
        conn, identity = self.conn, state.identity
        if conn is not None and identity is not None and state.hub_url != conn.url:
            threading.Thread(target=self._reconnect_to, args=(state.hub_url,), daemon=True).start()

    def _reconnect_to(self, url: str) -> None:
        state = self.ctx.state
        assert state is not None and state.identity is not None
        self.disconnect()
        self.connect(url, state.identity.device_token)
