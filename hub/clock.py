"""One clock for the hub. Domain functions take `now` as an argument; edges ask this module.

Tests can move it forward, so they order events and let deadlines pass (an offer's expiry, a
student's grace period, housekeeping's ages) without sleeping. Only with `test_clock` on
(LEKTIECAFE_TEST_CLOCK=1, never in production); off, both test-only edges answer 404:

- `POST /api/test-only/clock` {"advance_s": seconds} moves this process's clock on and wakes the
  matching loop, whose next pass sees the new time. The clock keeps running from there and never
  goes back. Each hub process has its own: tests advance a single hub.
- the socket event `test-only:settle` is acknowledged once a matching pass that started after it
  has delivered its notices, so after everything the hub had sent the connection by then, from
  its handlers or its matching loop (tests/hubclient.py `Client.nothing` proves an absence so)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, abort
from flask.typing import ResponseReturnValue
from pydantic import Field

from hub.config import HubConfig
from hub.errors import NotFound
from hub.extensions import socketio
from hub.state import hub_state
from hub.validation import Payload, parsed_json

log = logging.getLogger(__name__)
_ahead = timedelta(0)  # how far the test hook has moved this process's clock


def now() -> datetime:
    return datetime.now(UTC) + _ahead


def advance(by: timedelta) -> datetime:
    """Move the clock on by `by` (tests only, through the route below); the new time."""
    global _ahead
    _ahead += by
    return now()


test_bp = Blueprint("test_clock", __name__)


class AdvanceIn(Payload):
    advance_s: float = Field(gt=0, le=366 * 24 * 3600)


@test_bp.post("/api/test-only/clock")
def advance_clock() -> ResponseReturnValue:
    state = hub_state()
    if not state.config.test_clock:
        abort(404)
    moved_to = advance(timedelta(seconds=parsed_json(AdvanceIn).advance_s))
    state.kick_matching()
    return {"ok": True, "now": moved_to.isoformat()}


SETTLE_TIMEOUT_S = 5.0


def settle(_data: Any = None) -> dict[str, Any]:
    state = hub_state()
    if not state.config.test_clock:
        return {"ok": False, "error": NotFound("test-only:settle").as_dict()}
    if not state.settle_matching(SETTLE_TIMEOUT_S):
        return {"ok": False, "error": {"code": "timeout", "message": "no matching pass finished"}}
    return {"ok": True}


def init_app(app: Flask, config: HubConfig) -> None:
    """The test-only edges. Registered always, so with the flag off they answer 404 instead of
    leaving a socket call unanswered; `config` only decides the warning."""
    app.register_blueprint(test_bp)
    socketio.on_event("test-only:settle", settle)
    if config.test_clock:
        log.warning("test clock on: anyone can move this hub's clock (LEKTIECAFE_TEST_CLOCK)")
