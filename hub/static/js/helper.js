// The helper station: the duty switch, incoming offers (accept or decline before time runs out),
// the match, and a small moderation panel of the break room.

import { connect, onConnectionChange } from "./socket.js";
import { clockTime, pageTexts, readJSON, showConnection } from "./i18n.js";
import { createRoom } from "./room.js";

const t = pageTexts();
const catalog = readJSON("catalog", { subjects: [], languages: [] });
const page = readJSON("page-data", { duty: "off", approved: false, refusal: null, reminder: null });
const $ = (id) => document.getElementById(id);
const baseTitle = document.title;

const subjectNames = new Map(catalog.subjects.map((s) => [s.id, s.name]));
const languageNames = new Map(catalog.languages.map((l) => [l.code, l.name]));

const hub = connect();
const room = createRoom({ hub, role: "helper" });

// ---- connection -------------------------------------------------------------------------

let everConnected = false;
onConnectionChange((state) => {
  showConnection($("connection"), state, t, everConnected);
  if (state !== "connected") return;
  everConnected = true;
  loadHistory();
});

// ---- a gentle sound (no files: two soft tones made in the page) ----------------------------

let audio = null;

function unlockAudio() {
  // Browsers only allow sound after the user pressed something on the page.
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = audio || new Ctx();
    if (audio.state === "suspended") audio.resume();
  } catch {
    audio = null;
  }
}

function chime() {
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime + 0.02;
  [660, 880].forEach((freq, i) => {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    const at = start + i * 0.18;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.08, at + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.35);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.4);
  });
}

// ---- duty -----------------------------------------------------------------------------------

const toggle = $("duty-toggle");
const dutyStatus = $("duty-status");
const dutyError = $("duty-error");
const dutyMessage = $("duty-message");
const offerNotice = $("offer-notice");
let duty = page.duty;
// Why the helper may not go on duty (a code from the hub), or null: the switch is then disabled.
let refusal = page.refusal || null;
const REFUSALS = {
  not_approved: "A coordinator must approve you before you can go on duty.",
  certificate_expired:
    "Your child-protection certificate check has expired. Ask your coordinator to check it again before you go on duty.",
  role: "Your role may not do this.",
};

function renderDuty(status, missed = false) {
  duty = status;
  dutyStatus.dataset.status = status;
  dutyStatus.dataset.refusal = refusal || "";
  toggle.setAttribute("aria-pressed", status === "available" || status === "busy" ? "true" : "false");
  toggle.disabled = Boolean(refusal) || status === "busy";
  let text;
  if (refusal && status === "off") text = t(REFUSALS[refusal] || REFUSALS.role);
  else if (status === "available") text = t("You are on duty. Requests will show up here.");
  else if (status === "busy") text = t("You are in a session with a student.");
  else if (status === "paused") {
    text = missed
      ? t("You missed an offer, so you are paused. Press to go on duty again.")
      : t("You are paused. Press to go on duty again.");
  } else text = t("You are off duty.");
  if (dutyStatus.textContent !== text) dutyStatus.textContent = text;
  dutyStatus.className = status === "paused" ? "notice warn" : "";
}

renderDuty(duty);

toggle.addEventListener("click", async () => {
  unlockAudio();
  dutyError.textContent = "";
  offerNotice.textContent = "";
  const want = duty === "available" ? "off" : "available";
  toggle.disabled = true;
  const ack = await hub.request("duty:set", { status: want });
  toggle.disabled = false;
  if (!ack.ok) {
    dutyError.textContent = ack.error.message;
    renderDuty(duty);
    return;
  }
  if (ack.status === "available") showDutyMessage("");
  renderDuty(ack.status);
  if (ack.status !== "available") hideOffer();
});

function showDutyMessage(text) {
  dutyMessage.textContent = text;
  dutyMessage.hidden = !text;
}

hub.on("duty:status", (m) => {
  // Pushed by the hub: after a missed offer (paused), on reconnect, or when taken off duty, then
  // with why (message) and whether the helper may go on duty again (refusal).
  if (m.refusal !== undefined) refusal = m.refusal || null;
  if (m.message) showDutyMessage(m.message);
  renderDuty(m.status, m.status === "paused");
  if (m.status !== "available") hideOffer();
});

// ---- shifts: the reminder before one, and swaps offered -------------------------------------

const reminderEl = $("shift-reminder");
let reminder = null; // {time, at: performance.now() when the shift starts}
let reminderTicker = null;

function renderReminder() {
  if (!reminder) return;
  const left = (reminder.at - performance.now()) / 1000;
  if (left <= 0) {
    reminder = null;
    reminderEl.hidden = true;
    clearInterval(reminderTicker);
    return;
  }
  const n = Math.max(1, Math.ceil(left / 60));
  const text =
    n === 1
      ? t("Your shift starts at {time} (in 1 minute).", { time: reminder.time })
      : t("Your shift starts at {time} (in {n} minutes).", { time: reminder.time, n });
  if (reminderEl.textContent !== text) reminderEl.textContent = text;
  reminderEl.hidden = false;
}

function showReminder(time, startsInS) {
  reminder = { time, at: performance.now() + Math.max(0, Number(startsInS) || 0) * 1000 };
  renderReminder();
  clearInterval(reminderTicker);
  reminderTicker = setInterval(renderReminder, 15000);
}

if (page.reminder) showReminder(page.reminder.time, page.reminder.starts_in_s);
hub.on("shift:reminder", (m) => {
  showReminder(m.time, m.starts_in_s);
  chime();
});

const swapOffers = $("swap-offers");

function shiftLabel(times) {
  // "Mon 7 Dec 15:00–18:00" in the café's time zone and the page's language.
  const lang = document.documentElement.lang || undefined;
  const zone = { timeZone: page.timezone };
  const clock = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  const start = new Date(times.starts_at);
  const end = new Date(times.ends_at);
  const format = (d, options) => {
    try {
      return d.toLocaleString(lang, { ...options, ...zone });
    } catch {
      return d.toLocaleString(lang, options); // an unknown zone: the browser's own
    }
  };
  const day = format(start, { weekday: "short", day: "numeric", month: "short", ...clock });
  return `${day}–${format(end, clock)}`;
}

hub.on("shift:swap", (m) => {
  if (!m.offered) return;
  const item = document.createElement("p");
  item.className = "notice";
  item.dataset.testid = "swap-offer-live";
  item.dataset.swap = String(m.swap_id);
  const vars = { name: m.from, shift: shiftLabel(m.offered) };
  const text = m.wanted
    ? t("{name} offers you {shift} for your {theirs}.", { ...vars, theirs: shiftLabel(m.wanted) })
    : t("{name} offers you {shift}.", vars);
  const link = document.createElement("a");
  link.href = page.shifts_url || "/shifts";
  link.textContent = t("Answer on My shifts");
  item.append(`${text} `, link);
  swapOffers.append(item);
  chime();
});

// ---- offers ---------------------------------------------------------------------------------

const offerEl = $("offer");
const acceptBtn = $("offer-accept");
const declineBtn = $("offer-decline");
const offerError = $("offer-error");
const timeLeft = $("offer-time-left");
let offer = null; // {id, deadline, nickname}
let ticker = null;

function waitedText(seconds) {
  if (seconds < 60) return t("Less than a minute");
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? t("1 minute") : t("{n} minutes", { n: minutes });
}

function attachmentView(a) {
  const wrap = document.createElement("p");
  if (typeof a.mime === "string" && a.mime.startsWith("image/")) {
    const link = document.createElement("a");
    link.href = a.url;
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.src = a.url;
    img.alt = t("Photo from the student");
    img.className = "offer-image";
    img.width = 320; // a preview; the link opens the full picture
    img.loading = "eager";
    img.dataset.testid = "offer-image";
    link.append(img);
    wrap.append(link);
  } else {
    const link = document.createElement("a");
    link.href = a.url;
    link.target = "_blank";
    link.rel = "noopener";
    link.className = "btn btn-secondary";
    link.dataset.testid = "offer-file";
    link.textContent =
      a.mime === "application/pdf" ? t("Open the PDF from the student") : t("Open the file from the student");
    wrap.append(link);
  }
  return wrap;
}

function tick() {
  if (!offer) return;
  const left = Math.max(0, Math.ceil((offer.deadline - performance.now()) / 1000));
  timeLeft.textContent = t("Seconds left to answer: {n}", { n: left });
  if (left <= 0) {
    clearInterval(ticker);
    ticker = null;
  }
}

function showOffer(o) {
  const r = o.request || {};
  offer = {
    id: o.offer_id,
    deadline: performance.now() + Number(o.expires_in_s || 0) * 1000,
    nickname: r.nickname,
  };
  offerError.textContent = "";
  offerNotice.textContent = "";
  $("offer-nickname").textContent = r.nickname || "";
  $("offer-subject").textContent = subjectNames.get(r.subject) || String(r.subject ?? "");
  $("offer-grade").textContent = String(r.grade ?? "");
  $("offer-language").textContent = r.language
    ? languageNames.get(r.language) || r.language
    : t("Any language");
  $("offer-waited").textContent = waitedText(Number(r.waited_s || 0));
  const note = $("offer-note");
  note.replaceChildren();
  (r.note || t("No note.")).split("\n").forEach((line, i) => {
    if (i > 0) note.append(document.createElement("br"));
    note.append(line);
  });
  note.classList.toggle("muted", !r.note);
  const files = $("offer-attachments");
  files.textContent = "";
  for (const a of r.attachments || []) files.append(attachmentView(a));

  // Restart the bar: a fresh span starts its shrinking animation from full width.
  const bar = $("offer-countdown");
  bar.style.setProperty("--countdown-s", `${Math.max(0, Number(o.expires_in_s || 0))}s`);
  bar.replaceChildren(document.createElement("span"));

  acceptBtn.disabled = false;
  declineBtn.disabled = false;
  offerEl.hidden = false;
  clearInterval(ticker);
  tick();
  ticker = setInterval(tick, 1000);

  document.title = `🔔 ${t("New request")} · ${baseTitle}`;
  $("announce").textContent = t("New request: {subject}, grade {grade}", {
    subject: $("offer-subject").textContent,
    grade: r.grade,
  });
  chime();
  const active = document.activeElement;
  if (!active || active === document.body || active === toggle) $("offer-title").focus();
}

function hideOffer() {
  if (!offer && offerEl.hidden) return;
  const hadFocus = offerEl.contains(document.activeElement);
  offer = null;
  offerEl.hidden = true;
  clearInterval(ticker);
  ticker = null;
  $("offer-attachments").textContent = "";
  document.title = baseTitle;
  if (hadFocus && !toggle.disabled) toggle.focus();
}

hub.on("offer", showOffer);

hub.on("offer:expired", (m) => {
  if (!offer || offer.id !== m.offer_id) return;
  hideOffer();
  offerNotice.textContent =
    m.reason === "expired"
      ? t("The offer went to another helper because time ran out.")
      : t("The student stopped waiting, so the offer was withdrawn.");
});

acceptBtn.addEventListener("click", async () => {
  if (!offer) return;
  const current = offer;
  acceptBtn.disabled = true;
  declineBtn.disabled = true;
  offerError.textContent = "";
  const ack = await hub.request("offer:accept", { offer_id: current.id });
  if (!ack.ok) {
    if (ack.error.code === "timeout") {
      offerError.textContent = ack.error.message;
      acceptBtn.disabled = false;
      declineBtn.disabled = false;
      return;
    }
    hideOffer();
    offerNotice.textContent = ack.error.message;
    return;
  }
  hideOffer();
  showMatched({ room_id: ack.room_id, peer: ack.peer || { display_name: current.nickname } });
});

declineBtn.addEventListener("click", async () => {
  if (!offer) return;
  const current = offer;
  acceptBtn.disabled = true;
  declineBtn.disabled = true;
  const ack = await hub.request("offer:decline", { offer_id: current.id });
  if (offer && offer.id === current.id) hideOffer();
  if (!ack.ok && ack.error.code !== "conflict") offerNotice.textContent = ack.error.message;
});

// ---- matched --------------------------------------------------------------------------------

function showMatched({ room_id, peer }) {
  const el = $("matched-view");
  const name = (peer && peer.display_name) || "";
  el.dataset.roomId = room_id;
  $("matched-text").textContent = t("You are helping {name}", { name });
  el.hidden = false;
  renderDuty("busy");
  // The room needs the whole screen; the station's other cards come back after the session.
  document.body.classList.add("in-room");
  document.title = `${t("You are helping {name}", { name })} · ${baseTitle}`;
  el.focus();
  room.enter(room_id, peer);
}

hub.on("room:rejoined", (m) => {
  hideOffer();
  showMatched({ room_id: m.room_id, peer: m.peer });
});

// ---- break-room moderation ------------------------------------------------------------------

const modLog = document.querySelector('[data-testid="moderation-log"]');
const modEmpty = $("moderation-empty");
const modError = $("moderation-error");
const KEEP = 30;

function updateEmpty() {
  modEmpty.hidden = modLog.children.length > 0;
  modLog.hidden = modLog.children.length === 0;
}

function addModMessage(m) {
  const id = String(m.msg_id);
  if (modLog.querySelector(`[data-msg-id="${CSS.escape(id)}"]`)) return;
  const li = document.createElement("li");
  li.className = "chat-message";
  li.dataset.msgId = id;
  const time = document.createElement("span");
  time.className = "chat-time";
  time.textContent = clockTime(m.ts);
  const from = document.createElement("span");
  from.className = "chat-from";
  from.textContent = m.from;
  const text = document.createElement("span");
  text.className = "chat-text";
  text.textContent = m.text;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "btn btn-danger";
  remove.textContent = t("Remove");
  remove.setAttribute("aria-label", t("Remove the message from {name}", { name: m.from }));
  remove.dataset.testid = "moderation-remove";
  remove.addEventListener("click", async () => {
    modError.textContent = "";
    remove.disabled = true;
    const ack = await hub.request("breakroom:remove", { msg_id: m.msg_id });
    if (ack.ok || ack.error.code === "not_found") {
      dropModMessage(m.msg_id);
      return;
    }
    remove.disabled = false;
    modError.textContent = ack.error.message;
  });
  li.append(time, from, text, remove);
  const stick = modLog.scrollHeight - modLog.scrollTop - modLog.clientHeight < 48;
  modLog.append(li);
  while (modLog.children.length > KEEP) modLog.firstElementChild.remove();
  updateEmpty();
  if (stick) modLog.scrollTop = modLog.scrollHeight;
}

function dropModMessage(msgId) {
  const li = modLog.querySelector(`[data-msg-id="${CSS.escape(String(msgId))}"]`);
  if (!li) return;
  const hadFocus = li.contains(document.activeElement);
  const next = li.nextElementSibling || li.previousElementSibling;
  li.remove();
  updateEmpty();
  if (hadFocus) (next ? next.querySelector("button") : modLog).focus();
}

async function loadHistory() {
  const ack = await hub.request("breakroom:history", {});
  if (!ack.ok) return;
  modLog.textContent = "";
  for (const m of ack.messages.slice(-KEEP)) addModMessage(m);
  updateEmpty();
  modLog.scrollTop = modLog.scrollHeight;
}

hub.on("breakroom:message", addModMessage);
hub.on("breakroom:removed", (m) => dropModMessage(m.msg_id));
updateEmpty();
