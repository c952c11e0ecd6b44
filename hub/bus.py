"""The bus: how a message reaches the other hub processes, decided once from `message_queue`.

What several processes must agree on (who is connected, which process is alive, matching, rooms)
lives in the database. The bus carries what only matters now: Socket.IO's emits, through the
python-socketio client manager it picks (`socketio_manager`), and the hub's own messages on named
channels (document updates for the sockets other processes hold, hub.rooms.docsync).

`publish` reaches the other processes only, as python-socketio's PubSubManager tells its own
messages apart by `host_id`: the sender has already delivered to its own clients, without a
round trip through Redis.

When Redis restarts, what a process publishes meanwhile waits in its outbox (`RedisOutbox`, for
Socket.IO's emits and the hub's own channels alike) and goes out in order once Redis is back and
as many processes listen on the channel again as did before; listeners subscribe again every
second. So a chat line or a document update acknowledged during the outage still reaches the
members on other processes, a few seconds late, instead of never."""

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
RETRY_S = 1.0  # how often a publisher and a listener try Redis again while it is away
LISTENERS_WAIT_S = 15.0  # after an outage: at most this long for the other processes to listen
OUTBOX_MAX = 20_000  # messages kept during an outage; beyond that the oldest are dropped


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


class RedisOutbox:
    """One publishing thread for a process: everything queued since the last round trip goes to
    Redis in one pipeline. While Redis is away the messages wait, in order; once it answers
    again they wait until each channel has as many listeners as its last message reached (the
    other processes have subscribed again), for at most LISTENERS_WAIT_S."""

    def __init__(self, redis_client: Any) -> None:
        self._redis = redis_client
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._listeners: dict[str, int] = {}  # how many the last message on a channel reached
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, channel: str, data: bytes) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = _start(self._run)
        self._queue.put((channel, data))

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._take_queued(batch)
            away_since: float | None = None
            while True:
                try:
                    if away_since is not None:
                        self._await_listeners(batch, away_since)
                    self._send(batch)
                    break
                except Exception as exc:
                    if away_since is None:
                        away_since = time.monotonic()
                        log.warning(
                            "Redis is away (%s): holding messages for the other hub processes",
                            type(exc).__name__,
                        )
                    time.sleep(RETRY_S)
                    self._take_queued(batch)
            if away_since is not None:
                log.warning("Redis is back: %d held messages sent", len(batch))

    def _take_queued(self, batch: list[tuple[str, bytes]]) -> None:
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if len(batch) > OUTBOX_MAX:
            log.warning("dropping %d messages held too long", len(batch) - OUTBOX_MAX)
            del batch[: len(batch) - OUTBOX_MAX]

    def _await_listeners(self, batch: list[tuple[str, bytes]], away_since: float) -> None:
        """Raises while Redis is still away; returns once the listeners are back (or late)."""
        channels = {channel for channel, _data in batch}
        deadline = time.monotonic() + LISTENERS_WAIT_S
        while True:
            counts = {
                (name.decode() if isinstance(name, bytes) else str(name)): int(count)
                for name, count in self._redis.pubsub_numsub(*channels)
            }
            if all(counts.get(ch, 0) >= self._listeners.get(ch, 0) for ch in channels):
                return
            if time.monotonic() > deadline:
                log.warning("not every hub process listens again; sending anyway")
                return
            time.sleep(0.1)

    def _send(self, batch: list[tuple[str, bytes]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for channel, data in batch:
            pipe.publish(channel, data)
        for (channel, _data), reached in zip(batch, pipe.execute(), strict=True):
            self._listeners[channel] = int(reached)


class PatientRedisManager(socketio.RedisManager):
    """python-socketio's Redis manager, publishing through the process's outbox (it would give up
    after one retry and drop the emit) and listening again every RETRY_S (it backs off to a
    minute, and everything published before it listens again is lost)."""

    def __init__(self, url: str, channel: str, outbox: RedisOutbox) -> None:
        super().__init__(url, channel=channel)
        self._outbox = outbox

    def _publish(self, data: Any) -> None:
        self._outbox.put(self.channel, self.json.dumps(data).encode())

    def _redis_listen_with_retries(self) -> Any:
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                yield from self.pubsub.listen()
            except Exception:
                log.warning("Socket.IO lost Redis; listening again in %.0f s", RETRY_S)
                subscribed = False
                time.sleep(RETRY_S)


class RedisBus:
    """Redis pub/sub, for several hub processes. Each payload goes out as
    `<instance id>\\n<payload>` so a process can skip its own. A listener thread per subscription
    and the outbox's publishing thread start on first use, so a hub that never publishes opens
    nothing."""

    def __init__(self, url: str, instance_id: str) -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url)
        self._instance = instance_id.encode()
        self._outbox = RedisOutbox(self._redis)
        self.socketio_manager = PatientRedisManager(url, SOCKETIO_CHANNEL, self._outbox)

    def publish(self, channel: str, payload: bytes) -> None:
        self._outbox.put(channel, self._instance + b"\n" + payload)

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        _start(self._listen, channel, callback)

    def _listen(self, channel: str, callback: Callable[[bytes], None]) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(channel)
                for item in pubsub.listen():
                    instance, payload = bytes(item["data"]).split(b"\n", 1)
                    if instance != self._instance:
                        self._call(callback, payload)
            except Exception as exc:
                log.warning("the bus lost Redis (%s); listening again", type(exc).__name__)
                time.sleep(RETRY_S)

    @staticmethod
    def _call(callback: Callable[[bytes], None], payload: bytes) -> None:
        """One subscriber's failure on one payload is its own: the listening goes on."""
        try:
            callback(payload)
        except Exception:
            log.exception("a subscriber of the bus failed")


def _start(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name="bus", daemon=True)
    thread.start()
    return thread


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def make_bus(message_queue: str, instance_id: str) -> Bus:
    """The bus `message_queue` names: none for one process, a Redis URL for several."""
    if not message_queue:
        return LocalBus()
    if not message_queue.startswith(REDIS_SCHEMES):
        raise ValueError("message_queue must be a Redis URL (redis://, rediss:// or unix://)")
    return RedisBus(message_queue, instance_id)
