"""Group commit: writes that many connections make at once, stored in one transaction.

A hot write path (every keystroke of a shared document) that commits once per event spends most
of its time opening and committing transactions, one at a time behind SQLite's lock. Here the
first caller becomes the writer: it lets the other ready greenlets run up to their own `submit`,
then stores everything queued in one transaction and wakes each caller with its own result. Each
caller is answered only after the commit, so an acknowledgement still means "stored"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from hub.db import Database
from hub.errors import HubError

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T]):
    item: T
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # this caller writes the next batch
    done: bool = False
    result: object = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """`write(session, items)` stores a batch and returns one result per item, in order: a value,
    or a HubError refusing that item alone. An exception fails the whole batch.

    Each batch is written by one of its own callers, so nobody writes other people's batches for
    long: after a commit, the first caller still waiting leads the next one."""

    def __init__(
        self, db: Database, write: Callable[[Session, Sequence[T]], list[R | HubError]]
    ) -> None:
        self._db = db
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[_Waiting[T]] = []
        self._writing = False

    def submit(self, item: T) -> R:
        """Store `item` with whatever else is waiting; its result once committed."""
        waiting = _Waiting(item)
        with self._lock:
            self._queue.append(waiting)
            if not self._writing:
                self._writing = waiting.lead = True
        while not waiting.done:
            if waiting.lead:
                waiting.lead = False
                self._write_batch()
            else:
                waiting.wake.wait()
                waiting.wake.clear()
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]

    def _write_batch(self) -> None:
        time.sleep(0)  # under gevent: let the other ready greenlets queue their items first
        with self._lock:
            batch, self._queue = self._queue, []
        failure: BaseException | None = None
        try:
            with self._db.transaction() as s:
                results: list[object] = list(self._write(s, [w.item for w in batch]))
        except BaseException as exc:  # every caller hears of it, even when the writer is killed
            failure, results = exc, [exc] * len(batch)
        for w, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                w.error = result
            else:
                w.result = result
            w.done = True
            w.wake.set()
        with self._lock:
            if self._queue:
                self._queue[0].lead = True
                self._queue[0].wake.set()
            else:
                self._writing = False
        if failure is not None and not isinstance(failure, Exception):
            raise failure
