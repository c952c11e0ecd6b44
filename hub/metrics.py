"""The hub's Prometheus metrics: one registry per process, the metric objects, and the functions
that observe them. Every hub process counts what it did itself and serves its own `/metrics`
(hub.operations); Prometheus scrapes each process and sums.

Offers and rooms are counted from the database session, when a transaction that made, answered
or ended them commits (`watch_sessions`): so nothing is counted that was rolled back, and the
features need no metrics code of their own. The gauges read from the database (queue, open
rooms, this process's connections) are one query, at most every GAUGES_MAX_AGE_S."""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import event, func, select
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import ORMExecuteState, Session

from hub.accounts.models import Role, User
from hub.db import Database
from hub.matching.models import HelpRequest, Offer, OfferStatus, RequestStatus
from hub.realtime.models import Connection
from hub.rooms.models import Room

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)  # CPU, memory, open files and garbage collections

CONNECTED = Gauge(
    "lektiecafe_connected_clients",
    "Socket.IO connections held by this hub process, by role",
    ["role"],
    registry=REGISTRY,
)
QUEUE_LENGTH = Gauge(
    "lektiecafe_queue_length", "Help requests waiting (the whole hub)", registry=REGISTRY
)
QUEUE_OLDEST_WAIT = Gauge(
    "lektiecafe_queue_oldest_wait_seconds",
    "How long the longest-waiting request has waited (the whole hub; 0 when none waits)",
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "lektiecafe_queue_wait_seconds",
    "From asking to meeting a helper, for the rooms this process opened",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
OFFERS = Counter(
    "lektiecafe_offers",
    "Offers made, and answered: accepted, declined, expired (no answer in time) or withdrawn",
    ["outcome"],
    registry=REGISTRY,
)
ROOMS_OPEN = Gauge("lektiecafe_rooms_open", "Rooms not ended (the whole hub)", registry=REGISTRY)
ROOMS_OPENED = Counter("lektiecafe_rooms_opened", "Rooms opened", registry=REGISTRY)
ROOMS_ENDED = Counter(
    "lektiecafe_rooms_ended", "Rooms ended, by reason", ["reason"], registry=REGISTRY
)
SOCKET_EVENT_ERRORS = Counter(
    "lektiecafe_socket_event_errors",
    "Socket events answered with an error, by event and error code (internal: a hub bug)",
    ["event", "code"],
    registry=REGISTRY,
)
HTTP_SERVER_ERRORS = Counter(
    "lektiecafe_http_server_errors",
    "HTTP responses with a 5xx status, by status",
    ["status"],
    registry=REGISTRY,
)
SOCKET_EVENT_SECONDS = Histogram(
    "lektiecafe_socket_event_seconds",
    "Time from receiving a socket event to its answer, by event",
    ["event"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)

OFFER_OUTCOMES: dict[str, str] = {
    OfferStatus.ACCEPTED: "accepted",
    OfferStatus.DECLINED: "declined",
    OfferStatus.EXPIRED: "expired",
    OfferStatus.WITHDRAWN: "withdrawn",
}
for _outcome in ("made", *OFFER_OUTCOMES.values()):
    OFFERS.labels(_outcome)  # every outcome shows from the start, at 0


def socket_event_answered(event_name: str, seconds: float, error_code: str | None) -> None:
    SOCKET_EVENT_SECONDS.labels(event_name).observe(seconds)
    if error_code is not None:
        SOCKET_EVENT_ERRORS.labels(event_name, error_code).inc()


def http_answered(status: int) -> None:
    if status >= 500:
        HTTP_SERVER_ERRORS.labels(str(status)).inc()


def exposition() -> bytes:
    """The text Prometheus scrapes."""
    return bytes(generate_latest(REGISTRY))


# ---------------------------------------------------------------------------------------------
# Gauges read from the database

GAUGES_MAX_AGE_S = 5.0


@dataclass
class DatabaseGauges:
    """The database's gauges for one app: read in one query, at most every GAUGES_MAX_AGE_S,
    however often (and by however many scrapers) /metrics is read."""

    db: Database
    instance_id: str
    _read_at: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, now: datetime) -> None:
        with self._lock:
            if time.monotonic() - self._read_at < GAUGES_MAX_AGE_S:
                return
            self._read_at = time.monotonic()
            with self.db.transaction() as s:
                row = s.execute(self._query()).one()
        waiting, oldest, open_rooms, *connected = row
        QUEUE_LENGTH.set(waiting)
        QUEUE_OLDEST_WAIT.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        ROOMS_OPEN.set(open_rooms)
        for role, count in zip(Role, connected, strict=True):
            CONNECTED.labels(role.value).set(count)

    def _query(self) -> Any:
        waiting = HelpRequest.status == RequestStatus.WAITING
        mine = (
            select(func.count())
            .select_from(Connection)
            .join(User, User.id == Connection.user_id)
            .where(Connection.instance_id == self.instance_id)
        )
        return select(
            select(func.count()).select_from(HelpRequest).where(waiting).scalar_subquery(),
            select(func.min(HelpRequest.created_at)).where(waiting).scalar_subquery(),
            select(func.count()).select_from(Room).where(Room.ended_at.is_(None)).scalar_subquery(),
            *(mine.where(User.role == role).scalar_subquery() for role in Role),
        )


# ---------------------------------------------------------------------------------------------
# Offers and rooms, counted when their transaction commits

_PENDING = "lektiecafe.metrics"  # Session.info key: what this transaction will count


@dataclass
class _Pending:
    offers: Tally[str] = field(default_factory=Tally)
    rooms_opened: int = 0
    rooms_ended: Tally[str] = field(default_factory=Tally)
    waits_s: list[float] = field(default_factory=list)


def _pending(session: Session) -> _Pending:
    pending: _Pending = session.info.setdefault(_PENDING, _Pending())
    return pending


def _after_flush(session: Session, _context: Any) -> None:
    for obj in session.new:
        if isinstance(obj, Offer):
            _pending(session).offers["made"] += 1
        elif isinstance(obj, Room):
            _pending(session).rooms_opened += 1
            request = session.get(HelpRequest, obj.request_id)  # already loaded by the accept
            if request is not None:
                _pending(session).waits_s.append(
                    (obj.created_at - request.created_at).total_seconds()
                )


def _offers_moved(state: ORMExecuteState) -> Result[Any] | None:
    """Offers change status in one UPDATE … RETURNING (hub.matching.service._move_offers):
    count the rows it returned by their new status."""
    mapper = state.bind_mapper
    if not (state.is_update and mapper is not None and mapper.class_ is Offer):
        return None
    result = state.invoke_statement()
    if isinstance(result, CursorResult):  # no RETURNING of Offer objects: nothing to count
        return result
    frozen = result.freeze()
    for offer in frozen().scalars():
        outcome = OFFER_OUTCOMES.get(offer.status) if isinstance(offer, Offer) else None
        if outcome is not None:
            _pending(state.session).offers[outcome] += 1
    return frozen()


def room_ended(session: Session, room: Room, **_: Any) -> list[Any]:
    """hub.rooms.service.room_ended's receiver (connected by the app factory); it adds no
    notices."""
    _pending(session).rooms_ended[room.ended_reason or "unknown"] += 1
    return []


def _after_commit(session: Session) -> None:
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if pending is None:
        return
    for outcome, n in pending.offers.items():
        OFFERS.labels(outcome).inc(n)
    ROOMS_OPENED.inc(pending.rooms_opened)
    for reason, n in pending.rooms_ended.items():
        ROOMS_ENDED.labels(reason).inc(n)
    for wait_s in pending.waits_s:
        QUEUE_WAIT.observe(wait_s)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def watch_sessions() -> None:
    """Count offers and rooms from every database session of this process (once per process)."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _offers_moved),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)
