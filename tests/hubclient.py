"""Test-side tools for talking to a running hub: HTTP sessions and Socket.IO clients that record
what the hub sends, so tests can wait for it."""

from __future__ import annotations

import functools
import queue
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import requests
import socketio

PASSWORD = "demo-password"


class Browserless:
    """An HTTP session logged in through the real login form (cookie + CSRF).

    `lang` is the browser's Accept-Language; None leaves it out, so the hub's default applies."""

    def __init__(self, base_url: str, lang: str | None = None) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        if lang:
            self.http.headers["Accept-Language"] = lang

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
    """A Socket.IO client of one user that records every event the hub sends it."""

    def __init__(
        self, base_url: str, token: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.sio = socketio.Client(reconnection=False)
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

    def nothing(self, event: str, within: float) -> None:
        """Assert that `event` does not arrive within `within` seconds."""
        try:
            data = self.events[event].get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected {event!r}: {data!r}")

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
            self.sio.disconnect()
