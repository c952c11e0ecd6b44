// The student's page: ask for help, wait in the break room (queue place, chat, games), and see
// the match. One page, three views; the hub tells a (re)connecting page which one it is in.

import { connect, onConnectionChange } from "./socket.js";
import { clockTime, dayAndTime, pageTexts, randomId, readJSON, showConnection } from "./i18n.js";
import { messageItem } from "./chat.js";
import { createRoom } from "./room.js";

const t = pageTexts();
const page = readJSON("page-data");
const $ = (id) => document.getElementById(id);
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";
const baseTitle = document.title;

const hub = connect();
const room = createRoom({ hub, role: "student" });

const views = { ask: $("ask-view"), wait: $("wait-view"), matched: $("matched-view") };
let view = null; // "ask" | "wait" | "matched"; null until the hub has told us
let requestId = null;

function show(name) {
  if (view === name) return;
  const before = view;
  view = name;
  for (const [key, el] of Object.entries(views)) el.hidden = key !== name;
  if (name === "wait") enterBreakRoom();
  if (before === "wait") leaveBreakRoom();
  if (name === "ask") document.title = baseTitle;
  if (name === "wait") document.title = `${t("Break room")} · ${baseTitle}`;
  if (name === "matched") document.title = `✓ ${t("You have a helper!")} · ${baseTitle}`;
}

// ---- connection -------------------------------------------------------------------------

let everConnected = false;
let heardState = false; // did the hub tell us our state since the last (re)connect?
let stateCheck = null;

onConnectionChange((state) => {
  showConnection($("connection"), state, t, everConnected);
  if (state !== "connected") {
    heardState = false; // what the hub sends on the next connect arrives before "connected"
    clearTimeout(stateCheck);
    return;
  }
  const first = !everConnected;
  everConnected = true;
  // The hub sends queue:update / room:rejoined during the connect, before this runs.
  if (view === null) show("ask");
  if (first) return;
  if (view === "wait") {
    loadHistory();
    stateCheck = setTimeout(() => {
      // A waiting request always gets a queue:update on reconnect; none means it was dropped.
      if (view === "wait" && !heardState) {
        requestId = null;
        show("ask");
        $("ask-notice").textContent = t(
          "You were away too long, so you lost your place in the queue. You can ask again.",
        );
      }
    }, 3000);
  }
});
// If the hub cannot be reached, still show the form (the connection line says what is wrong).
setTimeout(() => {
  if (view === null) show("ask");
}, 4000);

// ---- asking -----------------------------------------------------------------------------

const form = $("ask-form");
const subject = $("ask-subject");
const grade = $("ask-grade");
const language = $("ask-language");
const note = $("ask-note");
const fileInput = $("ask-file");
const fileStatus = $("ask-file-status");
const progress = $("ask-file-progress");
const askError = $("ask-error");
const submit = form.querySelector('[type="submit"]');

const FIELDS = { subject, grade, language, note, attachment_ids: fileInput };

let attachmentId = null;
let lastNote = ""; // given back to the form if the student stops waiting
let uploading = null; // Promise while a file uploads

function clearAskError() {
  askError.textContent = "";
  for (const el of Object.values(FIELDS)) el.removeAttribute("aria-invalid");
}

function showAskError(error) {
  askError.textContent = error.message;
  const fields = (error.details && error.details.fields) || {};
  let first = null;
  for (const name of Object.keys(fields)) {
    const el = FIELDS[name];
    if (!el) continue;
    el.setAttribute("aria-invalid", "true");
    first = first || el;
  }
  if (first) first.focus();
}

function upload(file) {
  return new Promise((resolve) => {
    const failed = { ok: false, error: { message: t("The file could not be uploaded. Please try again.") } };
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/attachments");
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (body && body.ok === true && body.attachment_id) resolve(body);
      else if (body && body.error && body.error.message) resolve({ ok: false, error: body.error });
      else resolve(failed);
    });
    xhr.addEventListener("error", () => resolve(failed));
    xhr.addEventListener("abort", () => resolve(failed));
    const data = new FormData();
    data.append("file", file);
    xhr.send(data);
  });
}

function setFileStatus(text, state) {
  fileStatus.textContent = text;
  fileStatus.dataset.state = state;
  fileStatus.classList.toggle("field-error", state === "error");
}

fileInput.addEventListener("change", () => {
  attachmentId = null;
  fileInput.removeAttribute("aria-invalid");
  const file = fileInput.files && fileInput.files[0];
  if (!file) {
    setFileStatus("", "");
    progress.hidden = true;
    return;
  }
  setFileStatus(t("Uploading the file…"), "uploading");
  progress.value = 0;
  progress.hidden = false;
  const mine = upload(file).then((answer) => {
    if (uploading !== mine) return; // another file was chosen meanwhile
    uploading = null;
    progress.hidden = true;
    if (answer.ok) {
      attachmentId = answer.attachment_id;
      setFileStatus(t("The file is attached."), "attached");
    } else {
      fileInput.value = "";
      fileInput.setAttribute("aria-invalid", "true");
      setFileStatus(answer.error.message, "error");
    }
  });
  uploading = mine;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearAskError();
  $("ask-notice").textContent = "";
  if (!subject.value) {
    showAskError({ message: t("Choose a subject."), details: { fields: { subject: "missing" } } });
    return;
  }
  submit.disabled = true;
  submit.setAttribute("aria-busy", "true");
  try {
    if (uploading) {
      askError.textContent = "";
      await uploading;
    }
    const payload = {
      subject: Number(subject.value),
      grade: Number(grade.value),
      note: note.value.trim(),
      attachment_ids: attachmentId ? [attachmentId] : [],
    };
    if (language.value) payload.language = language.value;
    const ack = await hub.request("help:request", payload);
    if (!ack.ok) {
      showAskError(ack.error);
      return;
    }
    requestId = ack.request_id;
    renderQueue(ack.position, ack.eta_s, ack.next_shift);
    if (view !== "matched") show("wait");
    lastNote = note.value;
    note.value = "";
    fileInput.value = "";
    setFileStatus("", "");
    attachmentId = null;
  } finally {
    submit.disabled = false;
    submit.removeAttribute("aria-busy");
  }
});

// ---- waiting ------------------------------------------------------------------------------

const positionEl = document.querySelector('[data-testid="queue-position"]');
const etaEl = $("queue-eta");
const waitError = $("wait-error");

function etaText(eta) {
  if (eta === null || eta === undefined) {
    return t(
      "No helper who can help with this subject is on duty right now. You can keep waiting or try later.",
    );
  }
  if (eta < 60) return t("A helper will be asked now");
  const minutes = Math.max(1, Math.round(eta / 60));
  return minutes === 1 ? t("About 1 minute") : t("About {n} minutes", { n: minutes });
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text; // no repeated announcements
}

// The hub tells places beyond this rounded up (docs/protocol.md, queue:update).
const EXACT_PLACES = 20;

function renderQueue(position, eta, nextShift) {
  setText(
    positionEl,
    position > EXACT_PLACES ? t("about {n}", { n: position }) : String(position),
  );
  let text = etaText(eta);
  if (nextShift) {
    const when = new Date(nextShift);
    const shown = Number.isNaN(when.getTime())
      ? String(nextShift)
      : dayAndTime(when);
    text += ` ${t("Helpers are on duty again from {when}.", { when: shown })}`;
  }
  setText(etaEl, text);
  etaEl.classList.toggle("warn", eta === null || eta === undefined);
}

hub.on("queue:update", (m) => {
  heardState = true;
  if (view === "matched") return;
  requestId = m.request_id;
  renderQueue(m.position, m.eta_s, m.next_shift);
  show("wait");
});

$("cancel").addEventListener("click", async () => {
  waitError.textContent = "";
  const button = $("cancel");
  button.disabled = true;
  const ack = await hub.request("help:cancel", { request_id: requestId });
  button.disabled = false;
  if (!ack.ok) {
    waitError.textContent = ack.error.message;
    return;
  }
  requestId = null;
  show("ask");
  $("ask-notice").textContent = t("You stopped waiting.");
  if (!note.value) note.value = lastNote;
  subject.focus();
});

// ---- games --------------------------------------------------------------------------------

let games = null;
let gamesToken = 0;

async function mountGamesArea() {
  const mine = ++gamesToken;
  try {
    const module = await import("./games/index.js");
    if (mine !== gamesToken || view !== "wait") return;
    games = module.mountGames($("games"), { t });
  } catch (err) {
    console.error("games could not be loaded", err);
  }
}

// ---- break-room chat ----------------------------------------------------------------------

const log = document.querySelector('[data-testid="breakroom-log"]');
const chatForm = $("chat-form");
const chatInput = $("chat-text");
const chatError = $("chat-error");

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
}

function addMessage(m) {
  if (log.querySelector(`[data-msg-id="${CSS.escape(String(m.msg_id))}"]`)) return;
  const stick = nearBottom();
  const pending = m.client_msg_id
    ? log.querySelector(`.pending[data-client-id="${CSS.escape(m.client_msg_id)}"]`)
    : null;
  if (pending) {
    pending.replaceWith(messageItem(m, { own: true }));
  } else {
    log.append(messageItem(m));
  }
  while (log.children.length > 100) log.firstElementChild.remove();
  if (stick) log.scrollTop = log.scrollHeight;
}

async function loadHistory() {
  const ack = await hub.request("breakroom:history", {});
  if (!ack.ok || view !== "wait") return;
  const pending = [...log.querySelectorAll(".pending")];
  log.textContent = "";
  for (const m of ack.messages) addMessage(m);
  for (const li of pending) {
    if (!log.querySelector(`[data-client-id="${CSS.escape(li.dataset.clientId)}"]`)) log.append(li);
  }
  log.scrollTop = log.scrollHeight;
}

hub.on("breakroom:message", (m) => {
  if (view === "wait") addMessage(m);
});

hub.on("breakroom:removed", (m) => {
  const li = log.querySelector(`[data-msg-id="${CSS.escape(String(m.msg_id))}"]`);
  if (li) li.remove();
});

chatForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = chatInput.value.trim();
  if (!text) return;
  chatError.textContent = "";
  chatInput.removeAttribute("aria-invalid");
  const clientMsgId = randomId();
  const stick = nearBottom();
  const draft = { from: page.me || "", text, client_msg_id: clientMsgId };
  log.append(messageItem(draft, { pending: true }));
  if (stick) log.scrollTop = log.scrollHeight;
  chatInput.value = "";
  const ack = await hub.request("breakroom:send", { text, client_msg_id: clientMsgId });
  const mine = log.querySelector(`.pending[data-client-id="${CSS.escape(clientMsgId)}"]`);
  if (ack.ok) {
    if (mine) {
      mine.classList.remove("pending");
      mine.dataset.msgId = String(ack.msg_id);
      mine.querySelector(".chat-time").textContent = clockTime(ack.ts);
    }
    return;
  }
  if (mine) mine.remove();
  chatError.textContent = ack.error.message;
  if (!chatInput.value) chatInput.value = text; // let them fix it instead of typing it again
  chatInput.setAttribute("aria-invalid", "true");
  chatInput.focus();
});

chatInput.addEventListener("input", () => {
  if (chatInput.getAttribute("aria-invalid")) {
    chatInput.removeAttribute("aria-invalid");
    chatError.textContent = "";
  }
});

function enterBreakRoom() {
  waitError.textContent = "";
  chatError.textContent = "";
  log.textContent = "";
  if (everConnected || hub.socket.connected) loadHistory();
  if (!games) mountGamesArea();
}

function leaveBreakRoom() {
  gamesToken++;
  if (games) games.destroy();
  games = null;
  log.textContent = "";
}

// ---- matched ------------------------------------------------------------------------------

function showMatched(m) {
  heardState = true;
  requestId = null;
  const peer = m.peer || {};
  const el = views.matched;
  el.dataset.roomId = m.room_id;
  $("matched-text").textContent = peer.organisation
    ? t("You are matched with {name} ({organisation})", {
        name: peer.display_name,
        organisation: peer.organisation,
      })
    : t("You are matched with {name}", { name: peer.display_name });
  show("matched");
  el.focus();
  room.enter(m.room_id, peer);
}

hub.on("match", showMatched);
hub.on("room:rejoined", showMatched);
