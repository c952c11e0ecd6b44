"""The test driver: with `--test-driver SOCKET` the kiosk answers JSON lines on a Unix socket, so
tests and the screenshot script use the kiosk the way a student does (taps, typing, drags) and read
back exactly the widget tree that is on the screen.

The socket is served by a thread that never touches pygame: it queues each request and waits; the
main loop takes the queue at the start of a frame (`take()`), turns taps and typing into pygame
events, and answers once that frame has handled them and drawn (`Request.answer`)."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
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
