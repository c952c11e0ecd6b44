"""Running the hub: migrate, start the matching loop, serve HTTP and WebSocket on one port.

The caller (the `lektiecafe` command) has already monkey-patched the standard library for gevent."""

from __future__ import annotations

import gc
import logging
import socket

import gevent
from flask import Flask
from gevent import pywsgi

from hub import create_app, housekeeping, logs
from hub.config import HubConfig
from hub.db import Database
from hub.demo import seed_catalog
from hub.extensions import socketio
from hub.matching.dispatcher import HOUSEKEEPING_EVERY_S, Dispatcher, Job
from hub.migrate import upgrade
from hub.shifts import reminders
from hub.state import HubState
from lektiecafe.sdnotify import notify, watchdog_interval_s

log = logging.getLogger("lektiecafe.hub")


def prepare_database(db: Database) -> None:
    upgrade(db)
    with db.transaction() as s:
        seed_catalog(s)


def build(config: HubConfig, migrate: bool = True) -> Flask:
    logs.configure(config.log_format)
    app = create_app(config)
    state: HubState = app.extensions["lektiecafe"]
    if migrate:
        prepare_database(state.db)
    dispatcher = Dispatcher(
        app,
        state,
        [
            Job("housekeeping", HOUSEKEEPING_EVERY_S, housekeeping.run),
            Job("shift reminders", reminders.REMINDERS_EVERY_S, reminders.run),
        ],
    )
    state.kick_matching = dispatcher.kick
    state.settle_matching = dispatcher.settle
    socketio.start_background_task(dispatcher.run_forever)
    return app


class _NoDelayHandler(pywsgi.WSGIHandler):
    """Sends every message at once: with Nagle's algorithm a second small message right after
    another (the acknowledgement after an offer) waited ~40 ms for the client's delayed ACK."""

    def handle(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def serve(app: Flask, host: str, port: int) -> None:
    # Start-up objects never die: keep them out of collections. Young collections every 5,000
    # objects keep each pause to a few ms (bench/README.md, "What the hub's code owes").
    gc.freeze()
    gc.set_threshold(5_000, 50, 100)
    log.info("Lektiecafé hub listening on http://%s:%d", host, port)
    gevent.spawn(_tell_systemd)
    # No access log: client addresses of minors are personal data we do not need.
    socketio.run(app, host=host, port=port, log_output=False, handler_class=_NoDelayHandler)


def _tell_systemd() -> None:
    """READY=1 once the server listens, then WATCHDOG=1 pings. A greenlet runs only while the
    event loop turns, so a hub stuck in a blocking call or a busy loop stops pinging and systemd
    (WatchdogSec) restarts it."""
    while not (socketio.wsgi_server is not None and socketio.wsgi_server.started):
        gevent.sleep(0.05)
    notify("READY=1\nSTATUS=Serving")
    interval = watchdog_interval_s()
    while interval:
        notify("WATCHDOG=1")
        gevent.sleep(interval)
