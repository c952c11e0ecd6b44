"""The background loops of matching. The dispatcher runs the matching pass: socket handlers `kick`
it after every change; it also wakes on its own when an offer is due to expire and every `tick_s`
to notice students whose grace period ran out and hub processes that died. After each pass it
kicks the places loop, which tells waiting students their place and estimate in its own greenlet,
so the offers never wait behind thousands of `queue:update`s."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import gevent
from flask import Flask
from sqlalchemy.orm import Session

from hub import clock
from hub.accounts.access import load_identity
from hub.config import HubConfig
from hub.extensions import socketio
from hub.matching import service
from hub.realtime import presence
from hub.realtime.events import user_gone
from hub.realtime.notices import deliver
from hub.rooms import service as rooms
from hub.state import HubState

log = logging.getLogger(__name__)
# A process that has not refreshed its presence for this long is taken as dead.
INSTANCE_STALE_S = 30.0
HEARTBEAT_EVERY_S = 5.0
HOUSEKEEPING_EVERY_S = 600.0
# Places and estimates are sent at most this often: computing them reads the whole queue, so under
# load one pass serves many changes.
PLACES_EVERY_S = 0.5
# Places are stored and sent this many at a time, at most one chunk per TELL_GAP_S (5,000 a
# second): a fan-out to thousands spread out like this does not crowd out, at the hub's socket
# writers or at a client, the events someone is waiting for. A chunk takes 1-2 ms.
TELL_CHUNK = 25
TELL_GAP_S = 0.005
# The places pass works in slices of about this long; between slices everything else that is
# ready goes first (socket reads, handlers, offers), but for no longer than PLACES_MAX_DEFER_S, so
# the places still move on under constant load.
PLACES_SLICE_S = 0.002
PLACES_MAX_DEFER_S = 0.05


@dataclass(frozen=True)
class Job:
    """Work the loop does every `every_s` in a transaction of its own, e.g. deleting what is no
    longer needed (hub.housekeeping.run) or reminding helpers of their shifts
    (hub.shifts.reminders.run); passed in by the server, since housekeeping reaches into features
    that build on matching. A job delivers its own notices after commit."""

    name: str
    every_s: float
    run: Callable[[Session, HubConfig, datetime], None]


class Dispatcher:
    def __init__(self, app: Flask, state: HubState, jobs: Sequence[Job] = ()) -> None:
        self.app = app
        self.state = state
        self.jobs = list(jobs)
        self._last_run = {job.name: 0.0 for job in self.jobs}
        self._wake = threading.Event()
        # Passes started and the number of the last one finished, for `settle`.
        self._passes = threading.Condition()
        self._started = 0
        self._finished = 0
        self._last_heartbeat = 0.0
        self.places = QueuePlaces(app, state)

    def kick(self) -> None:
        self._wake.set()

    def settle(self, timeout_s: float) -> bool:
        """Kick the loop and wait until a pass that started after this call has delivered its
        notices (tests prove "no offer" with it: hub.clock's test-only:settle); False if none
        did within `timeout_s`."""
        with self._passes:
            target = self._started + 1
        self.kick()
        with self._passes:
            return self._passes.wait_for(lambda: self._finished >= target, timeout_s)

    def run_forever(self) -> None:
        socketio.start_background_task(self.places.run_forever)
        while True:
            try:
                with self.app.app_context():
                    timeout = self.run_once()
            except Exception:
                log.exception("matching pass failed")
                timeout = self.state.config.tick_s
            self._wake.wait(timeout)
            self._wake.clear()
            # The handler that kicked us is still answering: its acknowledgement goes out first.
            socketio.sleep(0)

    def run_once(self) -> float:
        """One pass; returns how long to sleep before the next unless kicked."""
        with self._passes:
            self._started += 1
            number = self._started
        now = clock.now()
        if now.timestamp() - self._last_heartbeat >= HEARTBEAT_EVERY_S:
            self._last_heartbeat = now.timestamp()
            for user_id in presence.heartbeat(
                self.state.db, self.state.instance_id, now, INSTANCE_STALE_S
            ):
                identity = load_identity(user_id)
                if identity is not None:
                    user_gone.send(identity)
        for job in self.jobs:
            if now.timestamp() - self._last_run[job.name] >= job.every_s:
                self._last_run[job.name] = now.timestamp()
                self._run_job(job, now)
        with self.state.db.matching_transaction() as s:
            notices = rooms.end_abandoned(s, now, self.state.config)
            notices += service.dispatch(s, now, self.state.config)
            deadline = service.next_deadline(s)
        deliver(notices)
        with self._passes:
            self._finished = number
            self._passes.notify_all()
        self.places.kick()
        sleep = self.state.config.tick_s
        if deadline is not None:
            sleep = min(sleep, max(0.01, (deadline - clock.now()).total_seconds()))
        return sleep

    def _run_job(self, job: Job, now: datetime) -> None:
        """A job that fails is logged and tried again at its next turn; matching goes on."""
        try:
            with self.state.db.transaction() as s:
                job.run(s, self.state.config, now)
        except Exception:
            log.exception("%s failed", job.name)


class QueuePlaces:
    """Tells every waiting student whose place or estimate changed, at most every PLACES_EVERY_S.

    The pass reads the queue and who is on duty in two short transactions (not matching ones:
    see run_once), computes the places
    in slices and stores and sends the changes a chunk at a time; before each step it waits until
    the hub is idle: thousands of students waiting must not hold up an offer, which a helper is
    waiting for, or an acknowledgement."""

    def __init__(self, app: Flask, state: HubState) -> None:
        self.app = app
        self.state = state
        self._wake = threading.Event()

    def kick(self) -> None:
        self._wake.set()

    def run_forever(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            started = time.monotonic()
            try:
                with self.app.app_context():
                    self.run_once()
            except Exception:
                log.exception("queue places pass failed")
            socketio.sleep(max(0.0, started + PLACES_EVERY_S - time.monotonic()))

    def run_once(self) -> None:
        # Plain transactions, outside the matching lock: the places only tell, and a pass that
        # reads the queue in the middle of a change tells a place the next pass corrects (it is
        # kicked after every change). tell_places stores only what it sends to requests still
        # waiting, by a conditional UPDATE, so a request matched meanwhile is left out. Under the
        # lock, every chunk of places stood in line with the offers and acknowledgements
        # (docs/performance.md, "Matching on PostgreSQL").
        background = Background()
        background.give_way()
        with self.state.db.transaction() as s:
            waiting = service.waiting_in_order(s)
        if not waiting:
            return
        background.give_way()
        with self.state.db.transaction() as s:
            at_hand = service.help_at_hand(s, self.state.config)
        changed = service.changed_places(waiting, at_hand, pause=background.pause)
        for start in range(0, len(changed), TELL_CHUNK):
            background.give_way(after_s=TELL_GAP_S)
            with self.state.db.transaction() as s:
                notices = service.tell_places(s, changed[start : start + TELL_CHUNK])
            deliver(notices)


class Background:
    """Paces long, unhurried work in one greenlet: `pause()` between small steps gives way once a
    slice of PLACES_SLICE_S is used up."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    def pause(self) -> None:
        if time.perf_counter() - self._since >= PLACES_SLICE_S:
            self.give_way()

    def give_way(self, after_s: float = 0.0) -> None:
        """Wait `after_s`, then until the hub has nothing else to do (gevent's idle), or at most
        PLACES_MAX_DEFER_S."""
        if after_s:
            socketio.sleep(after_s)
        with gevent.Timeout(PLACES_MAX_DEFER_S, False):
            gevent.idle()
        self._since = time.perf_counter()
