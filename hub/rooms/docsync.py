"""Document sync: a room's Yjs document over a plain binary WebSocket in the y-protocols' words.

Each member's page (or kiosk) opens `/rooms/<id>/doc?ticket=...` with the ticket from `room:join`
and speaks the sync protocol of y-websocket: sync step 1 (a state vector), step 2 (what the other
side lacks) and updates. Reconnecting is the same exchange again, so edits made offline reach the
hub by themselves. Beyond y-protocols the hub answers every step 2 and update a client sends
with STORED (after the update is in the database; stored ones in the order sent) or ERROR
(refused, with why).

Why not Socket.IO events: the document is the busiest path of a room (a message per keystroke
batch), and per event Flask-SocketIO builds a request context, opens the cookie session and
encodes JSON with base64. Here a connection checks its ticket once; an update costs a frame,
a decode check and a row in a group commit."""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlencode

import pycrdt
from flask import Flask
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wsproto.events import BytesMessage

from hub import clock
from hub.bus import Bus
from hub.config import HubConfig
from hub.db import Database
from hub.errors import HubError, Invalid
from hub.groupcommit import GroupCommit
from hub.rooms import service
from lektiecafe import ysync

log = logging.getLogger(__name__)

# Messages waiting for a slow client; past this the client is cut off (it resyncs on reconnect).
OUTBOX_MAX = 5000
SEND_AT_ONCE = 256  # messages written in one system call at most


# --- tickets ---------------------------------------------------------------------------------


class Ticket(NamedTuple):
    user_id: int
    room_id: str


def _tickets(config: HubConfig) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.secret_key, salt="doc-ticket")


def make_ticket(config: HubConfig, user_id: int, room_id: str) -> str:
    """What `room:join` gives a member to open the room's document socket."""
    return _tickets(config).dumps([user_id, room_id])


def doc_path(room_id: str, ticket: str) -> str:
    """Where the room's document socket is, relative to the hub (the client picks ws or wss)."""
    return f"/rooms/{quote(room_id)}/doc?{urlencode({'ticket': ticket})}"


def read_ticket(config: HubConfig, ticket: str) -> Ticket | None:
    try:
        user_id, room_id = _tickets(config).loads(ticket, max_age=config.token_max_age_s)
    except (BadSignature, TypeError, ValueError):
        return None
    return Ticket(int(user_id), str(room_id))


# --- messages --------------------------------------------------------------------------------


def error_message(error: HubError) -> bytes:
    return ysync.error_message(error.code, error.message)


def _unreadable(what: str) -> Invalid:
    return Invalid(_("The document change could not be read."), fields={"message": what})


def read_client_message(data: object) -> ysync.Sync | None:
    """A sync message from a client; None for awareness (not used here, ignored)."""
    if not isinstance(data, bytes | bytearray):
        raise _unreadable("not a sync message")
    try:
        message = ysync.read(bytes(data))
    except ysync.Unreadable as exc:
        raise _unreadable(str(exc)) from exc
    if message is not None and not isinstance(message, ysync.Sync):
        raise _unreadable("type")  # the hub's own answers are not for clients to send
    return message


def step1_for(state: bytes) -> bytes:
    """Sync step 1: the stored document's state vector, so the client sends what the hub lacks."""
    return ysync.step1_message(pycrdt.get_state(state))


def step2_for(state: bytes, state_vector: bytes) -> bytes:
    """Sync step 2: what a client with `state_vector` lacks of the stored document `state`."""
    try:
        missing = pycrdt.get_update(state, state_vector)
    except Exception as exc:  # a state vector Yrs cannot read
        raise _unreadable("state vector") from exc
    return ysync.step2_message(missing)


# --- connections -----------------------------------------------------------------------------


class Socket(Protocol):
    """What a connection needs of simple-websocket's Server (1.1: its wsproto connection `ws`
    and its socket `sock` too, to write several frames at once)."""

    ws: Any
    sock: Any
    connected: bool

    def close(self, reason: int | None = None, message: str | None = None) -> None: ...


def write_frames(ws: Socket, messages: list[bytes]) -> None:
    """Send binary messages in one system call, not one each as simple-websocket's `send` does:
    the writer answers a whole batch at once (why: bench/README.md, "What the hub's code owes")."""
    if not ws.connected:
        raise ConnectionError("closed")
    ws.sock.sendall(b"".join(ws.ws.send(BytesMessage(data=m)) for m in messages))


class DocConnection:
    """One client's document socket. Everything to send goes through an outbox that a sender
    thread of its own drains, so the group-commit writer never waits for a slow client."""

    def __init__(self, ws: Socket, ticket: Ticket) -> None:
        self.ws = ws
        self.user_id, self.room_id = ticket
        self._outbox: queue.Queue[bytes | None] = queue.Queue(OUTBOX_MAX)
        self._sender = threading.Thread(target=self._send_all, name="doc-sender", daemon=True)
        self._sender.start()

    def send(self, message: bytes) -> None:
        try:
            self._outbox.put_nowait(message)
        except queue.Full:
            log.warning("a document client fell too far behind; closing its socket")
            self.ws.close(ysync.CLOSE_TOO_SLOW, "too slow")

    def finish(self) -> None:
        """Stop the sender once what is queued has gone out."""
        self._outbox.put(None)

    def _send_all(self) -> None:
        """Send what waits, all of it at once, until `finish`."""
        while True:
            batch = [self._outbox.get()]
            while batch[-1] is not None and len(batch) < SEND_AT_ONCE and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            messages = [m for m in batch if m is not None]
            try:
                if messages:
                    write_frames(self.ws, messages)
            except Exception:  # closed meanwhile: nothing more to send
                return
            if batch[-1] is None:
                return


class Channels:
    """The document sockets of this process by room, and the way an update reaches the others:
    straight to this process's sockets, and over the bus to the sockets of the other hub
    processes (hub.bus)."""

    CHANNEL = "lektiecafe:doc"  # payload: room id, newline, the message

    def __init__(self, bus: Bus) -> None:
        self._rooms: dict[str, set[DocConnection]] = defaultdict(set)
        self._lock = threading.Lock()
        self._bus = bus
        bus.subscribe(self.CHANNEL, self._from_elsewhere)

    def add(self, conn: DocConnection) -> None:
        with self._lock:
            self._rooms[conn.room_id].add(conn)

    def remove(self, conn: DocConnection) -> None:
        with self._lock:
            members = self._rooms.get(conn.room_id)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self._rooms[conn.room_id]

    def deliver(self, room_id: str, message: bytes, skip: DocConnection) -> None:
        """`message` to every socket of the room but `skip`'s, in every hub process."""
        self._deliver_here(room_id, message, skip)
        self._bus.publish(self.CHANNEL, room_id.encode() + b"\n" + message)

    def _from_elsewhere(self, payload: bytes) -> None:
        room_id, message = payload.split(b"\n", 1)
        self._deliver_here(room_id.decode(), message, None)

    def _deliver_here(self, room_id: str, message: bytes, skip: DocConnection | None) -> None:
        with self._lock:
            targets = [c for c in self._rooms.get(room_id, ()) if c is not skip]
        for conn in targets:
            conn.send(message)


# --- the process's document sync -------------------------------------------------------------


@dataclass
class DocSync:
    """Per hub process: the sockets by room and the group commit that stores updates."""

    app: Flask
    db: Database
    config: HubConfig
    channels: Channels

    def __post_init__(self) -> None:
        self.writer: GroupCommit[service.DocAppend, int] = GroupCommit(self.db, self._append_in_app)
        # Updates this process stored per room since it last compacted the room (only the
        # writer's callbacks touch it). Counted per room: a global count would let a busy hub
        # with many rooms go a long time without compacting any one of them.
        self._uncompacted: Counter[str] = Counter()

    def _append_in_app(self, s: Any, items: Any) -> list[int | HubError]:
        with self.app.app_context():  # refusals are worded with gettext
            return service.append_updates(s, items)

    def receive(self, conn: DocConnection, message: ysync.Sync) -> None:
        """Act on one message of `conn`: answer a state vector, or store an update and then send
        it on to the room and tell `conn` it is stored."""
        if message.kind == ysync.STEP1:
            with self.db.transaction() as s:
                state, _seq = service.document_state(s, conn.room_id)
            try:
                conn.send(step2_for(state, message.payload))
            except HubError as exc:
                conn.send(error_message(exc))
            return
        try:
            update = service.check_update(message.payload)
        except HubError as exc:
            conn.send(error_message(exc))
            return
        if update == ysync.EMPTY_UPDATE:
            conn.send(ysync.stored_message(0))
            return
        item = service.DocAppend(conn.user_id, conn.room_id, update, clock.now())
        self.writer.submit(item, self._stored_callback(conn, update))

    def _stored_callback(self, conn: DocConnection, update: bytes) -> Callable[[Any], None]:
        def done(result: int | Exception) -> None:
            if isinstance(result, HubError):
                conn.send(error_message(result))
            elif isinstance(result, Exception):
                conn.ws.close(ysync.CLOSE_STORAGE, "not stored")  # the client resyncs on reconnect
            else:
                self.channels.deliver(conn.room_id, pycrdt.create_update_message(update), conn)
                conn.send(ysync.stored_message(result))
                self._uncompacted[conn.room_id] += 1
                if self._uncompacted[conn.room_id] >= self.config.doc_compact_every:
                    del self._uncompacted[conn.room_id]
                    threading.Thread(target=self._compact, args=(conn.room_id,)).start()

        return done

    def _compact(self, room_id: str) -> None:
        """Compaction is housekeeping: a failure leaves the updates in place and is only logged."""
        try:
            with self.db.transaction() as s:
                service.compact(s, room_id)
        except Exception:
            log.exception("compacting a room's document failed")
