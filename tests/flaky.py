"""A network that can fail: a TCP forwarder on loopback between a client and the hub that can be
held (nothing gets through, nothing is reset: calls hang), cut (every connection through it is
reset and new ones are refused) and mended again."""

from __future__ import annotations

import socket
import struct
import threading
from contextlib import suppress

from tests.conftest import free_port

CONNECTED = b'40{"sid":'  # the hub's answer to a Socket.IO connect (it sends it unmasked)


class FlakyNetwork:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._hold_once_connected = False
        self.mend()

    def hold(self) -> None:
        """Packets stop getting through, in both directions; the connections stay open."""
        self._flowing.clear()

    def hold_once_connected(self) -> None:
        """Hold, as `hold`, right after the hub's next Socket.IO connect answer has got through:
        the client is connected, and the first call it makes then gets no answer."""
        self._hold_once_connected = True

    def cut(self) -> None:
        """The network goes down: open connections break and new ones are refused."""
        with self._lock:
            listener, self._listener = self._listener, None
            broken, self._open = self._open, []
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
            listener.close()
        for conn in broken:
            with suppress(OSError):
                # A reset, as when a router drops the connection, not a polite close.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
        self._flowing.set()  # what was held meets the broken connections, not the hub

    def mend(self) -> None:
        """The network is back: connections are accepted and forwarded again."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        self._flowing.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _addr = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
                if self._hold_once_connected and CONNECTED in data:
                    self._hold_once_connected = False
                    self.hold()
        for conn in (source, sink):
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
