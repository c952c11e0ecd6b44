"""The libraries' private or undocumented names the project leans on, checked on the installed
versions. pyproject.toml bounds each of these packages below its next minor release; when a
newer one is allowed, these tests say at once what moved and which file of ours needs it.

No hub runs here: each check builds the library's own objects, so a failure names the library,
not our code."""

from __future__ import annotations

import inspect
import socket
import threading
from importlib.metadata import version
from typing import Any

import aioice
import engineio
import flask_socketio
import simple_websocket
import socketio
from aiortc.rtcicetransport import RTCIceGatherer
from engineio import packet
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

from appliance import hub as appliance_hub
from hub.rooms import docsync


def fence(package: str, name: str, user: str) -> str:
    """The failure message: what went away, in which release, and who needs it."""
    return (
        f"{package} {version(package)} changed `{name}`, which {user} uses: "
        f"adapt {user} (and this test) before raising the bound in pyproject.toml"
    )


# --- python-socketio and python-engineio: the kiosk's ordered message hand-over ----------------


def test_socketio_client_builds_its_engineio_client_through_engineio_client_class() -> None:
    client = appliance_hub.OrderedClient()
    assert isinstance(client.eio, appliance_hub.OrderedEngineIO), fence(
        "python-socketio", "Client._engineio_client_class", "appliance/hub.py (OrderedClient)"
    )


def test_engineio_hands_messages_to_trigger_event_with_run_async() -> None:
    """appliance/hub.py overrides `_trigger_event(event, *args, run_async=...)`, which
    Engine.IO calls with run_async=True for each message packet, to queue the messages in order
    on one thread instead of one thread each."""
    user = "appliance/hub.py (OrderedEngineIO)"
    parameters = inspect.signature(engineio.Client._trigger_event).parameters
    assert list(parameters)[:2] == ["self", "event"], fence(
        "python-engineio", "Client._trigger_event(event, *args, **kwargs)", user
    )
    client = appliance_hub.OrderedEngineIO()
    handled: list[tuple[Any, str]] = []
    done = threading.Event()

    def on_message(data: Any) -> None:
        handled.append((data, threading.current_thread().name))
        done.set()

    client.on("message", on_message)
    # How a message packet reaches _trigger_event: private too, and checked here only.
    assert hasattr(client, "_receive_packet"), fence(
        "python-engineio", "Client._receive_packet", user
    )
    client._receive_packet(packet.Packet(packet.MESSAGE, "2hello"))
    assert done.wait(5), fence("python-engineio", "_trigger_event('message', run_async=True)", user)
    assert handled == [("2hello", "hub-messages")], fence(
        "python-engineio", "_trigger_event('message', run_async=True)", user
    )


def test_engineio_client_keeps_its_websocket_in_ws() -> None:
    """tests/hubclient.py (Client.close) shortens the close handshake of `sio.eio.ws`, the
    websocket-client socket of the Engine.IO connection."""
    client = socketio.Client()
    assert hasattr(client.eio, "ws"), fence(
        "python-engineio", "Client.ws", "tests/hubclient.py (Client.close)"
    )
    connect = inspect.getsource(getattr(engineio.Client, "_connect_websocket", lambda: None))
    assert "self.ws = ws" in connect, fence(
        "python-engineio", "Client.ws", "tests/hubclient.py (Client.close)"
    )


# --- simple-websocket: several document frames in one system call ----------------------------


def test_simple_websocket_server_exposes_its_wsproto_connection_and_socket() -> None:
    """hub/rooms/docsync.py (write_frames) encodes frames with the server's wsproto connection
    `ws` and writes them to its socket `sock` at once; the client here must read them as two
    binary messages."""
    user = "hub/rooms/docsync.py (write_frames)"
    ours, theirs = socket.socketpair()
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="hub.test", target="/")).decode()
    # The WSGI environ a server would make of the client's upgrade request.
    environ: dict[str, Any] = {"werkzeug.socket": ours}
    for line in request.split("\r\n")[1:]:
        if line:
            name, value = line.split(": ", 1)
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    server = simple_websocket.Server.accept(environ)
    try:
        assert isinstance(server.ws, WSConnection), fence("simple-websocket", "Server.ws", user)
        assert server.sock is ours, fence("simple-websocket", "Server.sock", user)
        assert server.connected is True, fence("simple-websocket", "Server.connected", user)
        docsync.write_frames(server, [b"one", b"two"])
        theirs.settimeout(5)
        received: list[bytes] = []
        while len(received) < 2:
            client.receive_data(theirs.recv(4096))
            for event in client.events():
                if isinstance(event, BytesMessage):
                    received.append(bytes(event.data))
                else:
                    assert isinstance(event, AcceptConnection), event
        assert received == [b"one", b"two"], fence("simple-websocket", "Server.ws/.sock", user)
    finally:
        server.close()
        theirs.close()


# --- Flask-SocketIO: the systemd READY notice ---------------------------------------------------


def test_flask_socketio_keeps_its_gevent_server_in_wsgi_server() -> None:
    """hub/server.py (_tell_systemd) says READY=1 once `socketio.wsgi_server.started`."""
    user = "hub/server.py (_tell_systemd)"
    assert flask_socketio.SocketIO().wsgi_server is None, fence(
        "flask-socketio", "SocketIO.wsgi_server", user
    )
    assert "self.wsgi_server = pywsgi.WSGIServer(" in inspect.getsource(
        flask_socketio.SocketIO.run
    ), fence("flask-socketio", "SocketIO.wsgi_server", user)


# --- aiortc and aioice: the candidate types of a call through TURN ------------------------------


def test_aiortc_gatherer_keeps_aioice_nominated_pairs() -> None:
    """tests/test_turn.py (selected_pair_types) reads the nominated candidate pair through
    `iceGatherer._connection._nominated`, as aiortc's getStats() does not report it."""
    user = "tests/test_turn.py (selected_pair_types)"
    gatherer = RTCIceGatherer()
    connection = getattr(gatherer, "_connection", None)
    assert isinstance(connection, aioice.Connection), fence(
        "aiortc", "RTCIceGatherer._connection", user
    )
    assert isinstance(getattr(connection, "_nominated", None), dict), fence(
        "aioice", "Connection._nominated", user
    )
