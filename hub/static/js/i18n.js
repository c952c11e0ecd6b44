// Texts for a page's script. The template renders them through gettext into a JSON block:
//
//   <script type="application/json" id="texts">{{ {"Break room": _("Break room"),
//     "About {n} minutes": _("About %(n)s minutes", n="{n}")}|tojson }}</script>
//
// Keys are the English texts; t(key, {n: 3}) returns the translation (or the key itself when the
// page has none) with {name} placeholders filled in.

export function readJSON(id, fallback = {}) {
  const block = document.getElementById(id);
  if (!block) return fallback;
  try {
    return JSON.parse(block.textContent);
  } catch (err) {
    console.error(`bad JSON in #${id}`, err);
    return fallback;
  }
}

export function makeT(texts) {
  return (key, vars = {}) => {
    const text = Object.prototype.hasOwnProperty.call(texts, key) ? texts[key] : key;
    return String(text).replace(/\{(\w+)\}/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole,
    );
  };
}

/** t() for the page's #texts block. */
export function pageTexts(id = "texts") {
  return makeT(readJSON(id));
}

/** A random id for client_msg_id; crypto.randomUUID needs a secure context, this does not. */
export function randomId() {
  if (window.crypto && typeof window.crypto.randomUUID === "function" && window.isSecureContext) {
    return window.crypto.randomUUID();
  }
  const bytes = new Uint8Array(16);
  window.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Shows the connection state in el: quiet while connected, a plain warning otherwise.
 * everConnected: false until the page's first connection ("Connecting…" instead of "lost").
 */
export function showConnection(el, state, t, everConnected = true) {
  if (!el) return;
  el.dataset.state = state;
  if (state === "reconnecting" && !everConnected) {
    el.textContent = t("Connecting…");
    el.className = "connection muted";
  } else if (state === "connected") {
    el.textContent = t("Connected");
    el.className = "connection muted";
  } else if (state === "reconnecting") {
    el.textContent = t("Connection lost. Trying to reconnect…");
    el.className = "connection notice warn";
  } else {
    el.textContent = t("No connection to the server. Check your internet connection.");
    el.className = "connection error";
  }
}

// Times are 24-hour in every language ("14:05", never "2:05 PM"): Danish pupils read English
// pages too, and the hub's own pages write times that way.
const CLOCK = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };

/** "14:05" for an ISO timestamp, in the page's language. */
export function clockTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString(document.documentElement.lang || undefined, CLOCK);
}

/** "Monday 15:00" (or "mandag 15.00") for a Date, in the page's language. */
export function dayAndTime(when) {
  return when.toLocaleString(document.documentElement.lang || undefined, {
    weekday: "long",
    ...CLOCK,
  });
}
