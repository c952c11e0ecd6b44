"""The test driver: with `--test-driver SOCKET` the kiosk answers JSON lines on a Unix socket, so
tests and the screenshot script use the kiosk the way a student does (taps, typing, drags) and read
back exactly the widget tree that is on the screen.

The socket is served by a thread that never touches pygame: it queues each request and waits; the
main loop takes the queue at the start of a frame (`take()`), turns taps and typing into pygame
events, and answers once that frame has handled them and drawn (`Request.answer`).

Requests: `{"op": "tree"}` → the widgets on the screen (`id`, `kind`, `text`, `rect`, …);
`{"op": "tap", "id": …}`; `{"op": "type", "text": …}` ("\n" is Enter, "\b" Backspace);
`{"op": "drag", "id": …, "points": [[x, y], …]}` (fractions of the widget's rect);
`{"op": "screenshot", "path": …}`; `{"op": "state"}` → screen, overlays, phase, language, fps,
the call's state, how many of the helper's video frames were decoded (`remote_frames`), and
the frames run and those that changed the screen since the start (`frames_run`, `frames_drawn`).
`DriverClient` is the other end, for tests and scripts."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0


@dataclass
class Request:
    op: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] = field(default_factory=dict)

    def answer(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.done.set()


class TestDriver:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: queue.Queue[Request] = queue.Queue()
        path.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        os.chmod(path, 0o600)  # only this user may drive the kiosk
        self.server.listen(4)
        threading.Thread(target=self._accept, name="test-driver", daemon=True).start()

    def take(self) -> list[Request]:
        taken = []
        while True:
            try:
                taken.append(self.requests.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                try:
                    op = json.loads(line)
                    if not isinstance(op, dict) or not isinstance(op.get("op"), str):
                        raise ValueError("expected an object with an 'op'")
                except ValueError as exc:
                    reply: dict[str, Any] = {"ok": False, "error": f"bad request: {exc}"}
                else:
                    request = Request(op)
                    self.requests.put(request)
                    if request.done.wait(TIMEOUT_S):
                        reply = request.reply
                    else:
                        reply = {"ok": False, "error": "the kiosk did not answer in time"}
                stream.write(json.dumps(reply).encode() + b"\n")
                stream.flush()


class DriverClient:
    """The other end, for tests and scripts: one connection, one request at a time."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(TIMEOUT_S + 5)
        self.stream = self.sock.makefile("rwb")

    def close(self) -> None:
        self.stream.close()
        self.sock.close()

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        self.stream.write(json.dumps({"op": op, **args}).encode() + b"\n")
        self.stream.flush()
        reply: dict[str, Any] = json.loads(self.stream.readline())
        return reply

    def ok(self, op: str, **args: Any) -> dict[str, Any]:
        reply = self.call(op, **args)
        if not reply.get("ok"):
            raise AssertionError(f"{op} {args}: {reply.get('error')}")
        return reply

    def tree(self) -> list[dict[str, Any]]:
        widgets: list[dict[str, Any]] = self.ok("tree")["widgets"]
        return widgets

    def widget(self, widget_id: str) -> dict[str, Any] | None:
        return next((w for w in self.tree() if w["id"] == widget_id), None)

    def screen(self) -> str:
        return str(self.ok("state")["screen"])

    def wait_for(self, widget_id: str, timeout: float = 20.0, **expected: Any) -> dict[str, Any]:
        """The widget once it is on the screen (with the expected fields, e.g. enabled=True)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.widget(widget_id)
            if found is not None and all(found.get(k) == v for k, v in expected.items()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {widget_id} {expected} on {self.screen()}: "
                    f"{[(w['id'], w['text']) for w in self.tree()]}"
                )
            time.sleep(0.1)

    def wait_screen(self, name: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.screen() != name:
            if time.monotonic() > deadline:
                raise AssertionError(f"still on {self.screen()}, not {name}")
            time.sleep(0.1)

    def tap(self, widget_id: str, timeout: float = 20.0) -> None:
        """Tap a widget once it is on the screen and can be tapped."""
        self.wait_for(widget_id, timeout, enabled=True)
        self.ok("tap", id=widget_id)

    def type(self, text: str) -> None:
        self.ok("type", text=text)

    def drag(self, widget_id: str, points: list[tuple[float, float]]) -> None:
        self.ok("drag", id=widget_id, points=[list(p) for p in points])

    def screenshot(self, path: Path) -> None:
        self.ok("screenshot", path=str(path))
