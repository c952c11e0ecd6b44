"""Group commit: writes that many connections make at once, stored in one transaction.

A hot write path (every keystroke of a shared document) that commits once per write spends most
of its time opening and committing transactions, one at a time behind SQLite's lock. Here callers
hand their item over and go on (a connection keeps reading its next message); one writer stores
everything queued in one transaction and then tells each caller its result, in the order they
came. A caller is told only after the commit, so what it acknowledges is stored."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from hub.db import Database
from hub.errors import HubError

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Done = Callable[[R | Exception], None]


class GroupCommit(Generic[T, R]):
    """`write(session, items)` stores a batch and returns one result per item, in order: a value,
    or a HubError refusing that item alone. An exception fails the whole batch, and every caller
    of that batch is told so.

    The writer is a thread of its own (a greenlet under gevent), started on the first `submit`.
    `done` callbacks run on it and must not block: they queue what to send."""

    def __init__(self, db: Database, write: Callable[[Session, Sequence[T]], list[R | HubError]]):
        self._db = db
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[tuple[T, Done[R]]] = []
        self._ready = threading.Event()
        self._writer: threading.Thread | None = None

    def submit(self, item: T, done: Done[R]) -> None:
        """Store `item` with whatever else is waiting; `done(result)` once committed."""
        with self._lock:
            self._queue.append((item, done))
            if self._writer is None:
                self._writer = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._writer.start()
        self._ready.set()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            with self._lock:
                batch, self._queue = self._queue, []
            if batch:
                self._store(batch)

    def _store(self, batch: list[tuple[T, Done[R]]]) -> None:
        results: Sequence[R | Exception]
        try:
            with self._db.transaction() as s:
                results = self._write(s, [item for item, _ in batch])
        except Exception as exc:
            log.exception("storing a batch of %d failed", len(batch))
            results = [exc] * len(batch)
        for (_, done), result in zip(batch, results, strict=True):
            try:
                done(result)
            except Exception:
                log.exception("a group commit callback failed")
