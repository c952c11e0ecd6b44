"""The hub's storage: one SQLAlchemy engine, one declarative base, one way to open a unit of work.

SQLite is the embedded default and PostgreSQL the scale-out store; the same code serves both.
Under gevent, SQLite's C-level busy wait would block the whole process while another greenlet
holds the write lock, so on SQLite every unit of work is serialised by a process-wide lock
(SQLite allows one writer anyway). PostgreSQL needs no such lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, exc, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which keeps naive ones) and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


MATCHING_IN_FLIGHT = 4  # per process; the pool holds 10 (+ 20 overflow)
# A pooled PostgreSQL connection that rested in the pool longer than this is pinged before use.
PING_AFTER_IDLE_S = 1.0


class Database:
    """The engine and session factory of one hub process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": 30},
                hide_parameters=True,  # a logged error never shows a row's values (children's data)
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
            event.listen(self.engine, "checkin", _rested_since)
            event.listen(self.engine, "checkout", _ping_if_rested)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.RLock() if self.is_sqlite else None
        # On PostgreSQL at most MATCHING_IN_FLIGHT matching transactions of one process hold a
        # connection at once; the others queue here before they take one. The advisory lock
        # serialises them anyway, and with every waiter holding a pooled connection a burst of
        # connects (each a matching transaction) used up the pool and timed out (bench/
        # matching.py on PostgreSQL; docs/performance.md). More than one may wait in PostgreSQL
        # so the next one's connection, BEGIN and lock request are on their way before the lock
        # is free, not inside the serialised part.
        self._matching_slots = (
            threading.BoundedSemaphore(MATCHING_IN_FLIGHT) if not self.is_sqlite else None
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed when the block ends, rolled back on error."""
        with self._lock or nullcontext(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def matching_transaction(self) -> Iterator[Session]:
        """A transaction that changes matching state: serialised across hub processes, so the
        dispatcher's pass never sees half of another change (e.g. an offer just accepted)."""
        with self._matching_slots or nullcontext(), self.transaction() as session:
            if not self.is_sqlite:  # on SQLite the process lock already serialises everything
                session.execute(text("SELECT pg_advisory_xact_lock(4242)"))
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _rested_since(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_rested(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pre-ping, but only a connection that rested in the pool longer than PING_AFTER_IDLE_S.

    SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout: ~7 % of a matching step's
    (docs/performance.md). A connection in use again within a second was working a second ago;
    one that rested may have lost its server (a PostgreSQL restart), and the ping finds out
    before a request fails on it: DisconnectionError makes the pool drop it and connect anew.
    A restart within a second of a connection's last use still fails that one request, and its
    disconnect error invalidates the rest of the pool (SQLAlchemy does so on the first
    disconnect), so the next requests connect afresh."""
    now = time.monotonic()
    if now - record.info.get("checked_in", now) < PING_AFTER_IDLE_S:  # or just connected
        return
    try:  # as SQLAlchemy's own pre-ping (its BEGIN is the one the work would send anyway)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as error:
        raise exc.DisconnectionError() from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
