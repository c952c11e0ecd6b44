// Shared Socket.IO connection for the hub's pages.
//
//   import { connect, onConnectionChange } from "/static/js/socket.js";
//   const hub = connect();
//   const ack = await hub.request("help:request", { subject: 3, grade: 9 });
//   if (!ack.ok) showError(ack.error.message);
//   hub.on("queue:update", (msg) => ...);
//   onConnectionChange((state) => ...);   // "connected" | "reconnecting" | "offline"
//
// Same origin; the browser's session cookie authenticates. Every client→hub event is answered
// through the acknowledgement with {ok: true, ...} or {ok: false, error: {code, message}};
// request() always resolves to one of those, never rejects.

import { io } from "../vendor/socket.io/socket.io.esm.min.js";

export const REQUEST_TIMEOUT_MS = 10000;
// A connection refused with "unavailable" (the database is restarting) is tried again after this.
const UNAVAILABLE_RETRY_MS = 3000;

// Texts come translated from the page (base.html renders them through gettext).
let texts = null;

function message(key) {
  if (texts === null) {
    const block = document.getElementById("socket-texts");
    texts = block ? JSON.parse(block.textContent) : {};
  }
  return texts[key] || key;
}

// ---- connection state -------------------------------------------------------------------

let state = "reconnecting"; // until the first connect: "trying to connect"
const stateListeners = new Set();

function setState(next) {
  if (next === state) return;
  state = next;
  for (const fn of [...stateListeners]) {
    try {
      fn(state);
    } catch (err) {
      console.error(err);
    }
  }
}

/**
 * Calls fn(state) now and on every change; state is "connected", "reconnecting" or "offline".
 * Returns a function that stops the reports.
 */
export function onConnectionChange(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/** The current state: "connected", "reconnecting" or "offline". */
export function connectionState() {
  return state;
}

// ---- the connection ----------------------------------------------------------------------

let current = null;

function wire(socket, isClosed) {
  socket.on("connect", () => setState("connected"));
  socket.on("disconnect", () => {
    // socket.active is false after the server or this page closed the connection on purpose
    // ("io server disconnect" / "io client disconnect"): no automatic reconnection then.
    setState(socket.active && navigator.onLine !== false ? "reconnecting" : "offline");
  });
  socket.on("connect_error", (err) => {
    // Refused by the server's auth (socket.active false) or a network failure (retrying).
    if (socket.active) return;
    if (err && err.data && err.data.code === "unavailable") {
      // The hub is up but its database is not (restarting): ask again in a few seconds.
      setState("reconnecting");
      setTimeout(() => {
        if (!isClosed() && !socket.connected && !socket.active) socket.connect();
      }, UNAVAILABLE_RETRY_MS * (0.5 + Math.random()));
      return;
    }
    setState("offline");
  });
  socket.io.on("reconnect_attempt", () => {
    if (navigator.onLine !== false) setState("reconnecting");
  });
  socket.io.on("reconnect_failed", () => setState("offline"));

  window.addEventListener("offline", () => {
    if (!isClosed() && !socket.connected) setState("offline");
  });
  window.addEventListener("online", () => {
    if (isClosed() || socket.connected) return;
    setState("reconnecting");
    if (!socket.active) socket.connect();
  });
}

function failure(code, key, reason) {
  const error = { code, message: message(key) };
  if (reason) error.details = { reason };
  return { ok: false, error };
}

/**
 * Opens the page's connection (one per page: later calls return the same wrapper).
 * options are passed on to io(), e.g. {auth: {...}} for a client without a session cookie.
 *
 * Returns {socket, request(event, payload), on(event, fn), off(event, fn), close()}.
 * After close(), connect() opens a new connection.
 */
export function connect(options = {}) {
  if (current) return current;
  // WebSocket first; tryAllTransports falls back to HTTP long-polling where a proxy or firewall
  // blocks WebSockets.
  const socket = io({ transports: ["websocket", "polling"], tryAllTransports: true, ...options });
  let closed = false;
  wire(socket, () => closed);

  const wrapper = {
    socket,

    /**
     * Emits event with payload and resolves to the acknowledgement: {ok: true, ...} or
     * {ok: false, error: {code, message}}. Resolves {ok: false, error: {code: "timeout",
     * message, details: {reason}}} (reason "timeout", "disconnected" or "offline") when the hub
     * does not answer within 10 s or the connection is lost or closed. While the
     * connection is (re)connecting the event waits for it, within the same 10 s.
     */
    async request(event, payload = {}) {
      if (!socket.connected && !socket.active) {
        return failure("timeout", "offline", "offline");
      }
      let ack;
      try {
        ack = await socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, payload);
      } catch (err) {
        const lost = !socket.connected || /disconnected/.test(String(err && err.message));
        return lost
          ? failure("timeout", "offline", "disconnected")
          : failure("timeout", "timeout", "timeout");
      }
      if (ack && typeof ack === "object" && typeof ack.ok === "boolean") return ack;
      return failure("invalid_response", "invalid");
    },

    /** Listens to a hub→client event; returns a function that stops listening. */
    on(event, fn) {
      socket.on(event, fn);
      return () => socket.off(event, fn);
    },

    off(event, fn) {
      socket.off(event, fn);
    },

    /** Closes the connection for good (e.g. before leaving the page). */
    close() {
      closed = true;
      socket.disconnect();
      setState("offline");
      if (current === wrapper) current = null;
    },
  };
  current = wrapper;
  return wrapper;
}
