"""The kiosk's connection to its hub: one Socket.IO connection with the device token, and the
few HTTP calls (catalogue, attachment upload).

- Every call goes through an acknowledgement with a timeout; `{"ok": false, ...}` becomes a
  `HubCallError` with the hub's code and message, and no answer becomes `HubUnreachable`.
- Events from the hub reach the listeners one at a time, in the order the hub sent them, on one
  dispatcher thread, together with the connection's own "connected" and "disconnected" moments.
  (python-socketio's threaded client runs every incoming message on a thread of its own, so a
  `rtc:signal` could overtake the `room:join` answer it belongs after; see `OrderedEngineIO`.)
- After a drop the client's own reconnection tries again with backoff; the first connection (the
  hub may be down when the kiosk boots) is retried the same way by `_connect_loop`. A hub that
  refuses the token (the kiosk was unpaired) stops the retries: `status` turns "unpaired".
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import engineio
import requests
import socketio

from appliance.texts import _, translate

log = logging.getLogger(__name__)

Status = Literal["connected", "reconnecting", "offline", "unpaired"]
Listener = Callable[[str, Any], None]

CALL_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 20.0
# After this long without the hub, "reconnecting" becomes "offline" (the UI says so plainly).
OFFLINE_AFTER_S = 10.0
FIRST_DELAY_S, MAX_DELAY_S = 1.0, 10.0  # a kiosk should not sit offline long after the hub is back
# What Flask-SocketIO answers when the hub's connect handler refuses the auth.
REJECTED = "Connection rejected by server"
CONNECTED, DISCONNECTED = "_connected", "_disconnected"


class HubCallError(Exception):
    """The hub said no (`code` as in docs/protocol.md), or the appliance could not ask it."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class HubUnreachable(HubCallError):
    """No answer: not connected ("offline") or no acknowledgement in time ("timeout"). The call
    may or may not have reached the hub; only calls that are safe to repeat are repeated."""


def unreachable(code: Literal["offline", "timeout"], lang: str) -> HubUnreachable:
    messages = {
        "offline": _("There is no connection to Lektiecafé right now. The kiosk keeps trying."),
        "timeout": _("Lektiecafé did not answer in time. Please try again."),
    }
    return HubUnreachable(code, translate(messages[code], lang))


def answer_of(event: str, answer: Any) -> dict[str, Any]:
    """The acknowledgement's fields, or the refusal as a HubCallError."""
    if not isinstance(answer, dict):
        raise HubCallError("internal", f"{event} answered {answer!r}")
    if answer.get("ok") is True:
        return answer
    error = answer.get("error") or {}
    raise HubCallError(
        str(error.get("code", "internal")), str(error.get("message", "")), error.get("details")
    )


def request_json(
    method: str, url: str, lang: str, bearer: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """A JSON HTTP call to the hub (answers in `lang`); errors as for `HubConnection.call`."""
    headers = {"Accept-Language": lang}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        response = requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)
    except requests.Timeout as exc:
        raise unreachable("timeout", lang) from exc
    except requests.RequestException as exc:
        raise unreachable("offline", lang) from exc
    try:
        body = response.json()
    except ValueError:
        body = {"ok": False, "error": {"code": "internal", "message": response.reason}}
    return answer_of(f"{method} {url}", body)


class OrderedEngineIO(engineio.Client):
    """Hands the messages to Socket.IO one at a time, in order, on one thread of their own (the
    threaded client would start a thread per message, and two messages could overtake each
    other). Not on the reading thread: Socket.IO's handling of a disconnect waits for that one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._messages: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        threading.Thread(target=self._hand_over, name="hub-messages", daemon=True).start()

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message" and kwargs.get("run_async"):
            self._messages.put(args)
            return None
        return super()._trigger_event(event, *args, **kwargs)

    def end_hand_over(self) -> None:
        """The client is done for good: its hand-over thread ends after what is queued."""
        self._messages.put(None)

    def _hand_over(self) -> None:
        while (args := self._messages.get()) is not None:
            super()._trigger_event("message", *args, run_async=False)


class OrderedClient(socketio.Client):
    def _engineio_client_class(self) -> type[engineio.Client]:
        return OrderedEngineIO

    def shutdown(self) -> None:
        super().shutdown()
        self.eio.end_hand_over()


class HubConnection:
    """The Socket.IO connection of a paired kiosk. Start with `start()`; thread-safe."""

    def __init__(self, url: str, device_token: str, lang: str = "da") -> None:
        self.url = url.rstrip("/")
        self._token = device_token
        self.lang = lang
        self._listeners: list[Listener] = []
        self._refused: list[Callable[[], None]] = []
        self._events: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._ever_connected = False
        # Our own flag: the client calls "connect" handlers before its `connected` turns true.
        self._up = False
        self._epoch = 0
        self._lost_at: float | None = time.monotonic()
        self._unpaired = False
        self._sio = OrderedClient(
            reconnection=True,
            reconnection_delay=FIRST_DELAY_S,
            reconnection_delay_max=MAX_DELAY_S,
            randomization_factor=0.5,
        )
        self._sio.on("*", self._on_any)
        self._sio.on("connect", self._on_connect)
        self._sio.on("disconnect", self._on_disconnect)
        self._sio.on("connect_error", self._on_connect_error)
        self._dispatcher = threading.Thread(target=self._dispatch, name="hub-events", daemon=True)
        self._connector: threading.Thread | None = None

    # ---- wiring ------------------------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        """`listener(event, data)` for every hub event, and for CONNECTED / DISCONNECTED."""
        self._listeners.append(listener)

    def on_refused(self, callback: Callable[[], None]) -> None:
        """Called once when the hub refuses the device token."""
        self._refused.append(callback)

    def start(self) -> None:
        self._dispatcher.start()
        self._connect_in_background()

    def close(self) -> None:
        self._stop.set()
        self._sio.shutdown()
        if self._connector is not None:
            self._connector.join(timeout=5)
        self._events.put(None)
        if self._dispatcher.is_alive() and threading.current_thread() is not self._dispatcher:
            self._dispatcher.join(timeout=5)

    def set_language(self, lang: str) -> None:
        """The hub writes its messages in the connection's language, chosen when it connects:
        reconnect when it changes. The hub keeps the visit; the caller resumes it."""
        if lang == self.lang:
            return
        self.lang = lang
        if self._sio.connected:
            with self._state_lock:
                self._up = False  # calls wait for the new connection instead of using the old
            self._connect_in_background("reconnect")

    # ---- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up

    @property
    def epoch(self) -> int:
        """Which connection this is (it counts the connects). Whom a connection acts for on the
        hub ends with it: every new one starts as the kiosk itself."""
        return self._epoch

    @property
    def status(self) -> Status:
        with self._state_lock:
            if self._unpaired:
                return "unpaired"
            if self._up:
                return "connected"
            if (
                self._ever_connected
                and self._lost_at is not None
                and time.monotonic() - self._lost_at < OFFLINE_AFTER_S
            ):
                return "reconnecting"
            return "offline"

    # ---- calls -------------------------------------------------------------------------------

    def call(
        self, event: str, payload: dict[str, Any] | None = None, timeout: float = CALL_TIMEOUT_S
    ) -> dict[str, Any]:
        """Send `event` and wait for its acknowledgement. Never call this from a listener of
        this connection's events on the reading thread (listeners run on the dispatcher)."""
        if not self._up:
            raise unreachable("offline", self.lang)
        try:
            answer = self._sio.call(event, payload or {}, timeout=timeout)
        except socketio.exceptions.TimeoutError as exc:
            raise unreachable("timeout", self.lang) from exc
        except socketio.exceptions.BadNamespaceError as exc:  # dropped while sending
            raise unreachable("offline", self.lang) from exc
        return answer_of(event, answer)

    def http(
        self,
        method: str,
        path: str,
        bearer: str | None = None,
        lang: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A JSON HTTP call to the hub, in the connection's language unless `lang` is given."""
        return request_json(method, self.url + path, lang or self.lang, bearer, **kwargs)

    def upload_attachment(
        self, data: bytes, visit_token: str, mime: str = "image/jpeg", scan: bool = True
    ) -> str:
        """`POST /api/attachments` as the visiting student; returns the attachment id. `scan`:
        the hub stores a photo of a page as its scan (False: the photo as it is)."""
        extension = mime.split("/")[-1]
        answer = self.http(
            "POST",
            "/api/attachments",
            bearer=visit_token,
            files={"file": (f"assignment.{extension}", data, mime)},
            data={"scan": "1" if scan else "0"},
        )
        return str(answer["attachment_id"])

    # ---- Socket.IO callbacks (on the reading thread: only enqueue) ---------------------------

    def _auth(self) -> dict[str, str]:
        return {"device_token": self._token, "lang": self.lang}

    def _on_any(self, event: str, data: Any = None) -> None:
        self._events.put((event, data))

    def _on_connect(self) -> None:
        with self._state_lock:
            self._ever_connected = self._up = True
            self._epoch += 1
            self._lost_at = None
        log.info("connected to the hub")
        self._events.put((CONNECTED, None))

    def _on_disconnect(self, reason: Any = None) -> None:
        with self._state_lock:
            self._lost_at = time.monotonic()
            self._up = False
        log.info("lost the hub (%s)", reason)
        self._events.put((DISCONNECTED, None))
        if reason == socketio.Client.reason.SERVER_DISCONNECT and not self._stop.is_set():
            # The client does not retry when the hub closed the connection on purpose (e.g. it
            # unpaired the kiosk); try anyway: the answer to the next connect tells why.
            self._connect_in_background("later")

    def _on_connect_error(self, data: Any = None) -> None:
        if isinstance(data, dict) and data.get("message") == REJECTED:
            log.warning("the hub refused the device token: the kiosk must be paired again")
            with self._state_lock:
                self._unpaired = True
            self._stop.set()
            # shutdown() joins the reconnection thread we may be called from
            threading.Thread(target=self._sio.shutdown, daemon=True).start()
            for callback in self._refused:
                callback()

    def _dispatch(self) -> None:
        while (item := self._events.get()) is not None:
            event, data = item
            for listener in list(self._listeners):
                try:
                    listener(event, data)
                except Exception:
                    log.exception("handling %s failed", event)

    # ---- connecting --------------------------------------------------------------------------

    def _connect_in_background(self, how: Literal["now", "reconnect", "later"] = "now") -> None:
        """Off the caller's thread: closing a WebSocket may wait for the server's answer.
        "reconnect" closes the connection first; "later" waits a moment (the client is still
        taking down the connection the hub closed)."""
        if self._connector is not None and self._connector.is_alive():
            return
        self._connector = threading.Thread(
            target=self._connect_loop, args=(how,), name="hub-connect", daemon=True
        )
        self._connector.start()

    def _connect_loop(self, how: Literal["now", "reconnect", "later"]) -> None:
        """Until a connection succeeds; drops after that are the client's own to retry."""
        if how == "reconnect":
            self._sio.disconnect()
        delay = FIRST_DELAY_S
        wait = how == "later"
        while not self._stop.is_set():
            if wait:
                self._stop.wait(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, MAX_DELAY_S)
            wait = True
            if self._sio.connected or self._stop.is_set():
                return
            try:
                self._sio.connect(
                    self.url, auth=self._auth, transports=["websocket"], wait_timeout=10
                )
                return
            except (socketio.exceptions.ConnectionError, ValueError) as exc:
                log.info("hub not reachable (%s); trying again", exc)
