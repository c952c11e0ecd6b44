"""The background loop that runs the matching pass. Socket handlers `kick` it after every change;
it also wakes on its own when an offer is due to expire and every `tick_s` to notice students
whose grace period ran out and hub processes that died."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from hub import clock, housekeeping
from hub.accounts.access import load_identity
from hub.extensions import socketio
from hub.matching import service
from hub.realtime import presence
from hub.realtime.events import user_gone
from hub.realtime.notices import deliver, deliver_in_turn
from hub.rooms import service as rooms
from hub.state import HubState

log = logging.getLogger(__name__)
# A process that has not refreshed its presence for this long is taken as dead.
INSTANCE_STALE_S = 30.0
HEARTBEAT_EVERY_S = 5.0
HOUSEKEEPING_EVERY_S = 600.0
# Places and estimates are sent at most this often: computing them reads the whole queue, and
# doing that on every kick would delay the offers (the part a helper is waiting for).
QUEUE_UPDATES_EVERY_S = 0.5


class Dispatcher:
    def __init__(self, app: Flask, state: HubState) -> None:
        self.app = app
        self.state = state
        self._wake = threading.Event()
        self._last_heartbeat = 0.0
        self._last_housekeeping = 0.0
        self._last_queue_updates = 0.0

    def kick(self) -> None:
        self._wake.set()

    def run_forever(self) -> None:
        while True:
            try:
                with self.app.app_context():
                    timeout = self.run_once()
            except Exception:
                log.exception("matching pass failed")
                timeout = self.state.config.tick_s
            self._wake.wait(timeout)
            self._wake.clear()

    def run_once(self) -> float:
        """One pass; returns how long to sleep before the next unless kicked."""
        now = clock.now()
        if now.timestamp() - self._last_heartbeat >= HEARTBEAT_EVERY_S:
            self._last_heartbeat = now.timestamp()
            for user_id in presence.heartbeat(
                self.state.db, self.state.instance_id, now, INSTANCE_STALE_S
            ):
                identity = load_identity(user_id)
                if identity is not None:
                    user_gone.send(identity)
        if now.timestamp() - self._last_housekeeping >= HOUSEKEEPING_EVERY_S:
            self._last_housekeeping = now.timestamp()
            with self.state.db.transaction() as s:
                housekeeping.run(s, self.state.config, now)
        with self.state.db.matching_transaction() as s:
            notices = rooms.end_abandoned(s, now, self.state.config)
            notices += service.dispatch(s, now, self.state.config)
            deadline = service.next_deadline(s)
        deliver(notices)
        queue_updates_due = self._last_queue_updates + QUEUE_UPDATES_EVERY_S - now.timestamp()
        if queue_updates_due <= 0:
            self._last_queue_updates = now.timestamp()
            with self.state.db.matching_transaction() as s:
                updates = service.queue_updates(s, self.state.config)
            socketio.start_background_task(deliver_in_turn, updates)
        sleep = self.state.config.tick_s
        if queue_updates_due > 0:
            sleep = min(sleep, queue_updates_due)
        if deadline is not None:
            sleep = min(sleep, max(0.01, (deadline - clock.now()).total_seconds()))
        return sleep
