"""What an operator's tools read: `/healthz` (the process answers), `/readyz` (it can serve:
its database, and Redis when several processes share one) and `/metrics` (Prometheus, for
loopback or an allow-list, or with the `metrics_token`)."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hub import clock, metrics
from hub.config import HubConfig
from hub.errors import Forbidden
from hub.rooms.service import room_ended
from hub.state import HubState, hub_state

bp = Blueprint("operations", __name__)

# How long /readyz waits for Redis before calling it down.
REDIS_TIMEOUT_S = 1.0


@bp.route("/healthz")
def healthz() -> ResponseReturnValue:
    return {"ok": True}


@bp.route("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the database (and Redis, if `message_queue` is set) answer; else 503 naming
    what is down. Each call checks afresh, so it turns 200 again as soon as they are back."""
    checks = {"database": _database_ok(hub_state())}
    redis_client = _redis_client()
    if redis_client is not None:
        checks["redis"] = _redis_ok(redis_client)
    down = sorted(name for name, ok in checks.items() if not ok)
    body = {"ok": not down, "checks": {k: "ok" if ok else "down" for k, ok in checks.items()}}
    if down:
        body["down"] = down
    return body, 503 if down else 200


@bp.route("/metrics")
def metrics_page() -> ResponseReturnValue:
    state = hub_state()
    if not _may_read_metrics(state.config):
        raise Forbidden("Metrics are for the hub's monitoring only.")
    gauges = current_app.extensions.setdefault(
        "lektiecafe.gauges", metrics.DatabaseGauges(state.db, state.instance_id)
    )
    gauges.refresh(clock.now())
    return Response(metrics.exposition(), content_type="text/plain; version=0.0.4")


def init_app(app: Flask) -> None:
    """The blueprint, the 5xx count of every response, and the offer and room counts."""
    app.register_blueprint(bp)
    app.after_request(_count_server_errors)
    metrics.watch_sessions()
    room_ended.connect(metrics.room_ended)


def _count_server_errors(response: Response) -> Response:
    metrics.http_answered(response.status_code)
    return response


def _database_ok(state: HubState) -> bool:
    try:
        with state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def _redis_client() -> Any:
    """A Redis client of its own with short timeouts (the bus's waits for as long as it must),
    made once per app; None when there is no `message_queue`."""
    url = hub_state().config.message_queue
    if not url:
        return None
    if "lektiecafe.readyz_redis" not in current_app.extensions:
        import redis

        current_app.extensions["lektiecafe.readyz_redis"] = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
    return current_app.extensions["lektiecafe.readyz_redis"]


def _redis_ok(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _may_read_metrics(config: HubConfig) -> bool:
    """With the token from anywhere; without it, only a direct request from an allowed address.
    A request through nginx comes from 127.0.0.1 too, so one carrying a proxy's X-Forwarded-*
    header never counts as local."""
    given = request.headers.get("Authorization", "")
    if config.metrics_token and hmac.compare_digest(
        given.encode(), f"Bearer {config.metrics_token}".encode()
    ):
        return True
    if any(h.lower().startswith("x-forwarded-") for h in request.headers.keys()):  # noqa: SIM118
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in config.metrics_allow)
