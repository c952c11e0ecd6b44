"""A bare python-socketio echo server on the hub's own server stack, the yardstick of bench/load.py:
Flask-SocketIO on gevent's pywsgi with simple-websocket, the hub's TCP_NODELAY handler and its
garbage collector settings, and nothing else (no database, no sessions, no checks).

    .venv/bin/python -m bench.echo --port 8765

It knows two events, shaped like the hub's room chat so the same client drives both:
`room:join {room_id}` puts the connection in that room (ack `{ok: true}`), and
`chat:send {room_id, text, client_msg_id}` sends `chat:message` with the same fields to the room
(the sender too, as the hub does) and acknowledges `{ok: true, msg_id, ts}`."""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402
from gevent import pywsgi  # noqa: E402


class NoDelayHandler(pywsgi.WSGIHandler):
    """hub/server.py's `_NoDelayHandler` (copied: importing the hub costs seconds)."""

    def handle(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def build() -> tuple[Flask, SocketIO]:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "echo"
    socketio = SocketIO(app, cors_allowed_origins=[])  # async_mode picked as for the hub
    ids = itertools.count(1)

    @socketio.on("room:join")
    def room_join(data: Any) -> dict[str, Any]:
        join_room(str((data or {}).get("room_id")))
        return {"ok": True}

    @socketio.on("chat:send")
    def chat_send(data: Any) -> dict[str, Any]:
        data = data or {}
        msg_id = next(ids)
        ts = time.time()
        message = {
            "msg_id": msg_id,
            "room_id": data.get("room_id"),
            "from_role": data.get("from_role"),
            "text": data.get("text"),
            "ts": ts,
            "client_msg_id": data.get("client_msg_id"),
        }
        socketio.emit("chat:message", message, to=str(data.get("room_id")))
        return {"ok": True, "msg_id": msg_id, "ts": ts}

    return app, socketio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    app, socketio = build()
    gc.freeze()
    gc.set_threshold(5_000, 50, 100)  # as hub/server.py serve()
    print(f"echo server on {args.host}:{args.port}, async_mode {socketio.async_mode}", flush=True)
    socketio.run(
        app, host=args.host, port=args.port, log_output=False, handler_class=NoDelayHandler
    )


if __name__ == "__main__":
    main()
