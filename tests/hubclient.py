"""Test-side tools for talking to a running hub: HTTP sessions, Socket.IO clients and room
document sockets that record what the hub sends, so tests can wait for it."""

from __future__ import annotations

import contextlib
import functools
import queue
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pycrdt
import requests
import websocket

from appliance.hub import OrderedClient
from lektiecafe import ysync

PASSWORD = "demo-password"


def advance_clock(base_url: str, seconds: float) -> None:
    """Move the hub's clock on (hub.clock; test hubs run with LEKTIECAFE_TEST_CLOCK=1); its
    matching loop's next pass sees the new time."""
    answer = requests.post(
        base_url + "/api/test-only/clock", json={"advance_s": seconds}, timeout=10
    )
    assert answer.status_code == 200, f"the hub's test clock: {answer.status_code} {answer.text}"


class Browserless:
    """An HTTP session logged in through the real login form (cookie + CSRF).

    `lang` ("da" or "en") is the language the person picked with the switch on every page (and
    their browser's Accept-Language); None picks nothing, so the hub's default applies."""

    def __init__(self, base_url: str, lang: str | None = None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        if lang:
            self.http.headers["Accept-Language"] = lang
            self.choose_language(lang)

    def choose_language(self, code: str) -> None:
        """The language switch (the hub remembers it in the session, also across a login)."""
        chosen = self.http.post(
            f"{self.base_url}/lang/{code}",
            data={"csrf_token": self.csrf(), "next": "/login"},
            allow_redirects=False,
        )
        assert chosen.status_code == 302, chosen.text

    def csrf(self, path: str = "/login") -> str:
        page = self.http.get(self.base_url + path)
        match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        token = self.csrf()
        return self.http.post(
            self.base_url + "/login",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )


class Client:
    """A Socket.IO client of one user that records every event the hub sends it, in the order it
    came: each is recorded before anything that arrived after it (an acknowledgement too), as on
    the kiosk (appliance.hub.OrderedClient)."""

    def __init__(
        self, base_url: str, token: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.sio = OrderedClient(reconnection=False)
        self.events: dict[str, queue.Queue[Any]] = defaultdict(queue.Queue)
        self.sio.on("*", self._record)
        self.base_url = base_url
        self.token = token
        self.headers = headers or {}

    def _record(self, event: str, data: Any = None) -> None:
        self.events[event].put(data)

    def connect(self) -> Client:
        auth = {"token": self.token} if self.token else None
        self.sio.connect(
            self.base_url,
            auth=auth,
            headers=self.headers,
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    def call(self, event: str, payload: Any = None, timeout: float = 10) -> dict[str, Any]:
        answer = self.sio.call(event, payload, timeout=timeout)
        assert isinstance(answer, dict), f"{event} answered {answer!r}"
        return answer

    def ok(self, event: str, payload: Any = None) -> dict[str, Any]:
        answer = self.call(event, payload)
        assert answer["ok"] is True, f"{event} {payload!r} -> {answer!r}"
        return answer

    def wait_for(
        self, event: str, timeout: float = 10, where: Callable[[Any], bool] = lambda _d: True
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} within {timeout}s")
            try:
                data = self.events[event].get(timeout=left)
            except queue.Empty:
                continue
            if where(data):
                return data

    def nothing(self, event: str) -> None:
        """Assert that the hub has not sent `event`, whether its handlers or its matching loop
        would have: the hub acknowledges `test-only:settle` (hub.clock) after what it had sent
        this connection, and the events are recorded in order, so a slow hub cannot make this
        pass."""
        settled = self.call("test-only:settle")
        assert settled == {"ok": True}, f"test-only:settle (LEKTIECAFE_TEST_CLOCK=1?): {settled}"
        unexpected = self.drain(event)
        assert unexpected == [], f"unexpected {event!r}: {unexpected!r}"

    def drain(self, event: str) -> list[Any]:
        items = []
        while not self.events[event].empty():
            items.append(self.events[event].get_nowait())
        return items

    def close(self) -> None:
        """Disconnect now. After Engine.IO's own close packet the server ends the socket without
        answering the WebSocket close frame, which websocket-client would wait 3 s for."""
        if self.sio.connected:
            ws = self.sio.eio.ws
            if ws is not None:
                ws.close = functools.partial(ws.close, timeout=0.1)
        self.sio.shutdown()


class DocSocket:
    """A room document's WebSocket (`doc_url` from `room:join`) from the test's side: a pycrdt
    copy of the document kept in sync in the y-protocols' words, and what the hub answered."""

    def __init__(self, base_url: str, doc_url: str, sync: bool = True, state: bytes = b"") -> None:
        """`state`: what this copy holds before it connects (e.g. edits made offline). With
        `sync`, wait for the hub's sync step 2 and for its answer to this copy's own step 2."""
        self.doc: pycrdt.Doc[Any] = pycrdt.Doc()
        if state:
            self.doc.apply_update(state)
        self.text = self.doc.get("text", type=pycrdt.Text)
        self.strokes = self.doc.get("strokes", type=pycrdt.Array)
        self.answers: queue.Queue[int | dict[str, Any]] = queue.Queue()  # STORED seq or ERROR
        self.updates: queue.Queue[bytes] = queue.Queue()  # updates from the other side
        self.synced = threading.Event()
        self.closed: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self.ws = websocket.create_connection("ws" + base_url.removeprefix("http") + doc_url)
        threading.Thread(target=self._read, daemon=True).start()
        if sync:
            self.send(ysync.step1_message(self.doc.get_state()))
            assert self.synced.wait(10), "no sync step 2 from the hub"
            self.answer()

    def send(self, message: bytes | str) -> None:
        if isinstance(message, str):
            self.ws.send(message)
        else:
            self.ws.send_binary(message)

    def _read(self) -> None:
        while True:
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketException:
                self.closed = self.closed or (1006, "")
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                self.closed = (code, data[2:].decode())
                return
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self._handle(data)

    def _handle(self, data: bytes) -> None:
        message = ysync.read(data)
        if isinstance(message, ysync.Stored):
            self.answers.put(message.seq)
        elif isinstance(message, ysync.Refused):
            self.answers.put(message._asdict())
        elif isinstance(message, ysync.Sync):
            if message.kind == ysync.STEP1:  # the hub asks what it lacks
                with self._lock:
                    missing = self.doc.get_update(message.payload)
                self.send(ysync.step2_message(missing))
                return
            with self._lock:
                self.doc.apply_update(message.payload)
            if message.kind == ysync.STEP2:
                self.synced.set()
            else:
                self.updates.put(message.payload)

    def change(self, fn: Callable[[DocSocket], None]) -> bytes:
        """Apply a local change; the update it made."""
        with self._lock:
            before = self.doc.get_state()
            fn(self)
            return self.doc.get_update(before)

    def send_update(self, update: bytes) -> None:
        self.send(pycrdt.create_update_message(update))

    def answer(self, timeout: float = 10) -> int | dict[str, Any]:
        """The hub's next STORED (its seq) or ERROR (the error)."""
        return self.answers.get(timeout=timeout)

    def write(self, fn: Callable[[DocSocket], None]) -> int:
        """Change, send and wait until the hub has stored it; the seq."""
        self.send_update(self.change(fn))
        seq = self.answer()
        assert isinstance(seq, int), seq
        return seq

    def wait_text(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while str(self.text) != text:
            assert time.monotonic() < deadline, f"text is {str(self.text)!r}, not {text!r}"
            time.sleep(0.02)

    def wait_closed(self, timeout: float = 10) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while self.closed is None:
            assert time.monotonic() < deadline, "the hub did not close the socket"
            time.sleep(0.02)
        return self.closed

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()
