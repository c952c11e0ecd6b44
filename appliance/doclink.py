"""The room document's WebSocket on the kiosk (docs/protocol.md, "The shared document socket"):
y-websocket's sync protocol between the kiosk's DocReplica and the hub, on a thread of its own.

- On open the kiosk sends sync step 1 (its state vector) and the hub answers with a step 2 (what
  the kiosk lacks). The hub also sends its own step 1, which the kiosk answers with a step 2:
  everything the hub lacks, so edits made while the link was down go out then. No outbox.
- Once that step 2 is on its way the link is live: local changes go out as sync updates at once.
  Before, they wait in the document and travel in the step 2.
- The hub answers every step 2 and update with exactly one STORED or ERROR; `unsaved` counts the
  ones not answered yet and the changes made while the link was not live (0: all stored).
- After a drop the link connects again with backoff, with the ticket of the latest `room:join`
  (`use`). A refused ticket (4401) waits for a fresh one, which the `renew` callback asks for.

websocket-client, not simple-websocket's client: the latter loses a frame that arrives in the same
read as the handshake's answer (e.g. the hub closing at once with 4401)."""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable

import pycrdt
import websocket

from appliance.doc import DocReplica
from lektiecafe import ysync

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # the hub pings every 25 s: this long without a frame is a dead link
FIRST_DELAY_S, MAX_DELAY_S = 0.5, 10.0


def socket_url(hub_url: str, doc_url: str) -> str:
    """`doc_url` from `room:join` is relative to the hub: ws:// or wss:// as the hub's http(s)."""
    return "ws" + hub_url.rstrip("/").removeprefix("http") + doc_url


class DocLink:
    """One room's document socket for one replica, until `close()`. Thread-safe: it takes the
    Visit's lock (`lock`) around everything it does with the replica, and calls `changed` under
    it after the hub changed the document."""

    def __init__(
        self,
        doc: DocReplica,
        lock: threading.RLock,
        changed: Callable[[], None],
        renew: Callable[[], None],
    ) -> None:
        self._doc = doc
        self._lock = lock
        self._changed = changed
        self._renew = renew
        self._url: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        # Under the lock: where this connection's messages go, and the counts behind `unsaved`.
        self._outgoing: queue.Queue[bytes | None] | None = None
        self._live = False
        self._unanswered = 0
        self._unsent = 0
        self._synced = False  # the hub's step 2 came on this connection
        doc.on_update = self._local_update
        threading.Thread(target=self._run, name="doc-link", daemon=True).start()

    def use(self, url: str) -> None:
        """The socket's address with the latest ticket. A link waiting to connect again tries it
        at once; a connected one keeps its socket and uses it next time."""
        with self._lock:
            self._url = url
        self._wake.set()

    def close(self) -> None:
        """Stop for good (the visit left the room or was wiped). Returns at once."""
        self._stop.set()
        self._wake.set()
        ws = self._ws
        if ws is not None:
            ws.abort()

    @property
    def unsaved(self) -> int:
        """Changes not yet stored by the hub, as far as the kiosk knows (read under the lock)."""
        return self._unanswered + self._unsent

    # ---- connecting ------------------------------------------------------------------------

    def _run(self) -> None:
        delay = FIRST_DELAY_S
        while not self._stop.is_set():
            url = self._url
            if url is None:  # no ticket yet, or a refused one: wait for `use`
                self._wake.wait()
                self._wake.clear()
                continue
            code = self._connection(url)
            if self._stop.is_set():
                return
            if code == ysync.CLOSE_FORBIDDEN:
                log.warning("the hub refused the document socket: not a member of the room")
                return
            if self._synced:
                delay = FIRST_DELAY_S
            if code == ysync.CLOSE_UNAUTHORISED:
                # A plain wait: `use` comes soon after `renew`, and a ticket refused again and
                # again must not become a loop of room:joins.
                self._stop.wait(delay)
                self._ticket_refused(url)
            else:
                self._wake.wait(delay * random.uniform(0.5, 1.5))
                self._wake.clear()
            delay = min(delay * 2, MAX_DELAY_S)

    def _ticket_refused(self, url: str) -> None:
        """Wait for a fresh ticket, and ask for one (unless one came meanwhile)."""
        with self._lock:
            if self._url != url:
                return
            self._url = None
        self._renew()

    def _connection(self, url: str) -> int | None:
        """One connection, from opening to its end: the hub's close code (None: it broke)."""
        try:
            ws = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S)
        except (websocket.WebSocketException, OSError) as exc:
            log.info("document socket not reachable (%s); trying again", exc)
            return None
        ws.settimeout(READ_TIMEOUT_S)
        outgoing: queue.Queue[bytes | None] = queue.Queue()
        with self._lock:
            self._ws, self._outgoing, self._synced = ws, outgoing, False
            outgoing.put(ysync.step1_message(self._doc.state_vector()))
        threading.Thread(target=self._send_all, args=(ws, outgoing), daemon=True).start()
        if self._stop.is_set():  # closed while connecting
            ws.abort()
        try:
            return self._read_all(ws)
        finally:
            with self._lock:
                self._ws = self._outgoing = None
                self._live = False
                self._unsent += self._unanswered  # not known to be stored: the next step 2 has it
                self._unanswered = 0
            outgoing.put(None)
            ws.shutdown()

    @staticmethod
    def _send_all(ws: websocket.WebSocket, outgoing: queue.Queue[bytes | None]) -> None:
        """Off the Visit's threads: a send may wait for a slow network."""
        while (message := outgoing.get()) is not None:
            try:
                ws.send_binary(message)
            except (websocket.WebSocketException, OSError):
                ws.abort()  # the reader sees it end
                return

    def _read_all(self, ws: websocket.WebSocket) -> int | None:
        while True:
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except (websocket.WebSocketException, OSError):
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            if opcode == websocket.ABNF.OPCODE_BINARY and data:
                self._receive(bytes(data))

    # ---- messages --------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            message = ysync.read(data)
        except ysync.Unreadable:
            log.warning("an unreadable document message from the hub")
            return
        if message is None:
            return  # awareness: not used
        if not isinstance(message, ysync.Sync):  # the hub's answer to one step 2 or update
            if isinstance(message, ysync.Refused):
                log.warning("the hub refused a document change: %s", message)
            with self._lock:
                self._unanswered = max(0, self._unanswered - 1)
            return
        with self._lock:
            if message.kind == ysync.STEP1:
                self._send_step2(message.payload)
                return
            if self._doc.apply(message.payload):
                self._changed()
            self._synced = self._synced or message.kind == ysync.STEP2

    def _send_step2(self, state_vector: bytes) -> None:
        """Everything the hub lacks, offline edits included; from now on changes go at once."""
        if self._outgoing is None:
            return
        self._outgoing.put(ysync.step2_message(self._doc.missing_for(state_vector)))
        self._live = True
        self._unanswered += 1
        self._unsent = 0

    def _local_update(self, update: bytes) -> None:
        """From the replica, under the lock."""
        if self._live and self._outgoing is not None:
            self._outgoing.put(pycrdt.create_update_message(update))
            self._unanswered += 1
        else:
            self._unsent += 1
