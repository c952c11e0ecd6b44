"""The bus: how a message reaches the other hub processes, decided once from `message_queue`.

What several processes must agree on (who is connected, which process is alive, matching, rooms)
lives in the database. The bus carries what only matters now: Socket.IO's emits, through the
python-socketio client manager it picks (`socketio_manager`), and the hub's own messages on named
channels (document updates for the sockets other processes hold, hub.rooms.docsync).

`publish` reaches the other processes only, as python-socketio's PubSubManager tells its own
messages apart by `host_id`: the sender has already delivered to its own clients, without a
round trip through Redis."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import socketio

log = logging.getLogger(__name__)

# Flask-SocketIO's default channel, kept so processes of different versions still hear each other.
SOCKETIO_CHANNEL = "flask-socketio"


class Bus(Protocol):
    @property
    def socketio_manager(self) -> socketio.Manager | None:
        """Flask-SocketIO's `client_manager`; None: its default, which knows this process only."""

    def publish(self, channel: str, payload: bytes) -> None:
        """`payload` to the subscribers of `channel` in the other hub processes."""

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        """Call `callback` with every payload another process publishes on `channel`, from a
        thread of the bus (a greenlet under gevent)."""


class LocalBus:
    """One hub process: there is nobody else to tell."""

    socketio_manager = None

    def publish(self, channel: str, payload: bytes) -> None:
        pass

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        pass


class RedisBus:
    """Redis pub/sub, for several hub processes. Each payload goes out as
    `<instance id>\\n<payload>` so a process can skip its own. A listener thread per subscription
    and one publishing thread start on first use, so a hub that never publishes opens nothing."""

    def __init__(self, url: str, instance_id: str) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url)
        self._instance = instance_id.encode()
        self._outgoing: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._publisher: threading.Thread | None = None
        self._lock = threading.Lock()
        self.socketio_manager = socketio.RedisManager(url, channel=SOCKETIO_CHANNEL)

    def publish(self, channel: str, payload: bytes) -> None:
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    self._publisher = self._start(self._publish_all)
        self._outgoing.put((channel, self._instance + b"\n" + payload))

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        self._start(self._listen, channel, callback)

    @staticmethod
    def _start(target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name="bus", daemon=True)
        thread.start()
        return thread

    def _publish_all(self) -> None:
        """Everything queued since the last round trip goes to Redis in one pipeline."""
        while True:
            batch = [self._outgoing.get()]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            try:
                pipe = self._redis.pipeline(transaction=False)
                for channel, data in batch:
                    pipe.publish(channel, data)
                pipe.execute()
            except Exception:
                log.exception("publishing to the other hub processes failed")

    def _listen(self, channel: str, callback: Callable[[bytes], None]) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                for item in pubsub.listen():
                    instance, payload = bytes(item["data"]).split(b"\n", 1)
                    if instance != self._instance:
                        self._call(callback, payload)
            except Exception:
                log.exception("the bus lost Redis; listening again")
                time.sleep(1.0)

    @staticmethod
    def _call(callback: Callable[[bytes], None], payload: bytes) -> None:
        """One subscriber's failure on one payload is its own: the listening goes on."""
        try:
            callback(payload)
        except Exception:
            log.exception("a subscriber of the bus failed")


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def make_bus(message_queue: str, instance_id: str) -> Bus:
    """The bus `message_queue` names: none for one process, a Redis URL for several."""
    if not message_queue:
        return LocalBus()
    if not message_queue.startswith(REDIS_SCHEMES):
        raise ValueError("message_queue must be a Redis URL (redis://, rediss:// or unix://)")
    return RedisBus(message_queue, instance_id)
