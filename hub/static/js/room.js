// The learning room, for both the student page and the helper station: joins the room on the hub
// (room:join, again after every reconnect), and wires the video call (rtc.js), the chat, the
// shared notes and whiteboard (doc.js, whiteboard.js), ending, reporting and feedback.
//
//   const room = createRoom({ hub, role: "student" });
//   room.enter(roomId, peer);   // on match, room:rejoined or offer:accept; safe to repeat
//
// The markup is hub/templates/_room.html; its texts come from the #room-texts block.

import { onConnectionChange } from "./socket.js";
import { clockTime, pageTexts, randomId } from "./i18n.js";
import { messageItem } from "./chat.js";
import { createCall } from "./rtc.js";
import { bindTextarea, createSharedDoc, forgetAllDocs } from "./doc.js";
import { mountWhiteboard } from "./whiteboard.js";
import { mountRoomTabs } from "./roomtabs.js";

const $ = (id) => document.getElementById(id);
const QUIET_MS = 5000; // changes sent this long ago without the hub's answer: "not saved yet"

/** role: "student" | "helper" (the page's user). */
export function createRoom({ hub, role }) {
  const t = pageTexts("room-texts");
  const root = $("room");
  const peerStatus = $("room-peer-status");
  const rtcState = $("room-rtc-state");
  const remoteVideo = $("room-remote-video");
  const remoteNote = $("room-remote-label");
  const remoteOff = $("room-remote-off");
  const localVideo = $("room-local-video");
  const muteBtn = $("room-mute");
  const cameraBtn = $("room-camera");
  const soundBtn = $("room-sound");
  const audioOnlyBtn = $("room-audio-only");
  const qualityNote = $("room-quality");
  const mediaError = $("room-media-error");
  const chatLog = $("room-chat-log");
  const chatForm = $("room-chat-form");
  const chatInput = $("room-chat-input");
  const chatError = $("room-chat-error");
  const docText = $("room-doc-text");
  const docSaved = $("room-doc-saved");

  let roomId = null;
  let peer = { display_name: "" };
  let peerPresent = false;
  let joinedOn = null; // the socket id the room was joined on; null after a disconnect
  let joining = null;
  let ended = false;
  const chatOutbox = new Map(); // client_msg_id → text, not yet acknowledged

  const peerName = () => peer.display_name || "";

  // On a narrow screen one part at a time (roomtabs.js); the chat log opens at its end.
  const tabs = mountRoomTabs({
    root,
    t,
    onSelect: (name) => {
      if (name === "chat") chatLog.scrollTop = chatLog.scrollHeight;
    },
  });

  // ---- the call ---------------------------------------------------------------------------

  const RTC_TEXTS = {
    idle: "Joining the room…",
    waiting: "Video: waiting for the other person",
    connecting: "Video: connecting…",
    connected: "Video: connected",
    reconnecting: "Video: the connection dropped. Reconnecting…",
    closed: "Video: off",
  };

  const MEDIA_TEXTS = {
    refused:
      "Your camera and microphone were not allowed. You can still chat and write. To talk on video, allow them in the browser (the camera symbol in the address bar) and press Try again.",
    missing: "No camera or microphone was found. You can still chat and write.",
    noVideo:
      "No camera was found, so the other person only hears you. You can still chat and write.",
    noAudio:
      "No microphone was found, so the other person only sees you. You can chat and write instead.",
    busy: "Another program is using the camera or microphone. Close it and press Try again. You can still chat and write.",
    unsupported: "This browser cannot use a camera here. You can still chat and write.",
  };

  const call = createCall({
    polite: role === "student",
    send: (kind, data) => {
      if (roomId && !ended) hub.request("rtc:signal", { room_id: roomId, kind, data });
    },
    localVideo,
    remoteVideo,
    onState: (state) => {
      rtcState.dataset.state = state;
      rtcState.textContent = t(RTC_TEXTS[state] || RTC_TEXTS.connecting);
      root.dataset.video = state;
    },
    onMedia: ({ audio, video, problem }) => {
      muteBtn.disabled = !audio;
      muteBtn.hidden = !audio;
      cameraBtn.disabled = !video;
      cameraBtn.hidden = !video;
      localVideo.hidden = !video;
      let key = null;
      if (problem && (audio || video)) key = audio ? "noVideo" : "noAudio";
      else if (problem) key = problem;
      mediaError.hidden = !key;
      mediaError.dataset.problem = key || "";
      $("room-media-error-text").textContent = key ? t(MEDIA_TEXTS[key]) : "";
      $("room-media-retry").hidden = !key || key === "unsupported";
    },
    onSoundBlocked: () => {
      soundBtn.hidden = false;
    },
    onQuality: (quality) => {
      if (roomId && !ended) hub.request("rtc:quality", { room_id: roomId, ...quality });
      showQuality("mine", quality);
    },
  });

  // ---- connection quality: what either side's video does, in plain words -------------------

  const qualities = { mine: null, theirs: null };
  const QUALITY_TEXTS = {
    off: "Poor connection — we turned video off so you can still hear each other",
    low: "Weak connection — we lowered the picture quality so the call keeps going",
  };
  /** side: "mine" | "theirs"; quality: {video, reason}. The worse of the two sides is shown. */
  function showQuality(side, quality) {
    qualities[side] = quality;
    const network = [qualities.mine, qualities.theirs].filter((q) => q && q.reason === "network");
    const level = network.some((q) => q.video === "off")
      ? "off"
      : network.some((q) => q.video === "low")
        ? "low"
        : null;
    let text = level ? t(QUALITY_TEXTS[level]) : "";
    const theirs = qualities.theirs;
    if (!text && theirs && theirs.reason === "choice" && theirs.video === "off")
      text = t("{name} chose audio only.", { name: peerName() });
    qualityNote.textContent = text;
    qualityNote.hidden = !text;
    qualityNote.dataset.level = level || "";
    showPeerVideo();
  }

  /** While the other side sends no video, a plain card instead of their last frame, frozen. The
   * video element stays in the page, playing: their sound comes through it. */
  function showPeerVideo() {
    const theirs = qualities.theirs;
    const off = Boolean(theirs && theirs.video === "off");
    root.dataset.peerVideo = off ? "off" : "on";
    if (off) {
      $("room-remote-off-name").textContent = peerName();
      $("room-remote-off-reason").textContent =
        theirs.reason === "choice"
          ? t("{name} chose audio only.", { name: peerName() })
          : t(QUALITY_TEXTS.off);
    }
    remoteOff.hidden = !off;
    const wasHidden = remoteVideo.hidden;
    remoteVideo.hidden = off;
    if (wasHidden && !off && remoteVideo.srcObject && remoteVideo.paused)
      remoteVideo.play().catch(() => {});
  }

  /** Tells the other side what our video does, again: they may have a fresh page that does not
   * know (it starts at full video, so our "off" would not show there). */
  function announceQuality() {
    if (qualities.mine && roomId && !ended)
      hub.request("rtc:quality", { room_id: roomId, ...qualities.mine });
  }

  audioOnlyBtn.addEventListener("click", () => {
    const on = audioOnlyBtn.getAttribute("aria-pressed") !== "true";
    audioOnlyBtn.setAttribute("aria-pressed", String(on));
    call.setAudioOnly(on);
  });

  muteBtn.addEventListener("click", () => {
    const muted = muteBtn.getAttribute("aria-pressed") !== "true";
    muteBtn.setAttribute("aria-pressed", String(muted));
    call.setMuted(muted);
  });
  cameraBtn.addEventListener("click", () => {
    const off = cameraBtn.getAttribute("aria-pressed") !== "true";
    cameraBtn.setAttribute("aria-pressed", String(off));
    call.setCameraOff(off);
    localVideo.classList.toggle("is-off", off);
  });
  soundBtn.addEventListener("click", () => {
    call.unmuteRemote();
    soundBtn.hidden = true;
  });
  $("room-media-retry").addEventListener("click", async () => {
    await call.retryMedia();
    muteBtn.setAttribute("aria-pressed", "false");
    cameraBtn.setAttribute("aria-pressed", "false");
    localVideo.classList.remove("is-off");
  });

  // ---- presence ---------------------------------------------------------------------------

  function showPeer(state) {
    peerStatus.dataset.state = state;
    const key = {
      present: "{name} is in the room.",
      absent: "Waiting for {name} to come into the room…",
      left: "{name} lost the connection. Waiting for them to come back…",
    }[state];
    peerStatus.textContent = t(key, { name: peerName() });
    peerStatus.className = state === "left" ? "room-peer notice warn" : "room-peer";
    remoteVideo.classList.toggle("is-away", state !== "present");
  }

  // ---- the shared document ----------------------------------------------------------------

  const shared = createSharedDoc({
    onTicketRefused: () => {
      joinedOn = null; // room:join again: its answer has a fresh doc_url
      ensureJoined();
    },
    onRefused: (error) => {
      if (ended) return; // after the end every change is refused, and that is expected
      $("room-doc-error").textContent = t("The notes could not be saved: {reason}", {
        reason: error.message || "",
      });
    },
    onPending: (n, online) => {
      docText.dataset.pending = String(n);
      showSaved(n === 0 ? "saved" : online ? "saving" : "offline");
    },
  });

  /** Notes and whiteboard: "saved" only once the hub has stored every change. "Saving…" that
   * gets no answer for a while is a connection gone quiet: said so as when it is closed. */
  let quietTimer = null;
  let quiet = false;
  function showSaved(wanted) {
    if (wanted !== "saving") {
      clearTimeout(quietTimer);
      quietTimer = null;
      quiet = false;
    } else if (!quietTimer && !quiet) {
      quietTimer = setTimeout(() => {
        quiet = true;
        showSaved("saving");
      }, QUIET_MS);
    }
    const state = quiet ? "offline" : wanted;
    if (docSaved.dataset.state === state) return;
    docSaved.dataset.state = state;
    docSaved.textContent = {
      saved: t("Saved"),
      saving: t("Saving…"),
      offline: t("Not saved yet — will be saved when the connection is back"),
    }[state];
    docSaved.className = state === "offline" ? "room-saved notice warn" : "room-saved muted";
  }

  // Logging out on a shared computer takes this browser's copy of the room documents along.
  const logoutForm = document.querySelector('form[action$="/logout"]');
  logoutForm?.addEventListener("submit", (event) => {
    if (logoutForm.dataset.forgotten) return;
    event.preventDefault();
    forgetAllDocs().finally(() => {
      logoutForm.dataset.forgotten = "1";
      logoutForm.requestSubmit();
    });
  });
  bindTextarea(shared, docText);
  const board = mountWhiteboard({
    shared,
    canvas: $("room-board"),
    toolbar: $("room-board-tools"),
  });

  // ---- joining ----------------------------------------------------------------------------

  function ensureJoined() {
    if (!roomId || joining || ended) return joining;
    if (joinedOn && joinedOn === hub.socket.id && hub.socket.connected) return null;
    joining = join().finally(() => {
      joining = null;
    });
    return joining;
  }

  async function join() {
    root.dataset.state = "joining";
    const ack = await hub.request("room:join", { room_id: roomId });
    if (!ack.ok) {
      if (ack.error.code === "timeout") {
        // Joined again when the connection is back, or now if it came back during this try.
        if (hub.socket.connected) setTimeout(ensureJoined, 1000);
        return;
      }
      root.dataset.state = "error";
      chatError.textContent = t("The room could not be opened: {reason}", {
        reason: ack.error.message,
      });
      return;
    }
    joinedOn = hub.socket.id;
    peer = ack.peer || peer;
    remoteNote.textContent = t("Video of {name}", { name: peerName() });
    showAssignment(ack.request);
    renderHistory(ack.chat_history || []);
    shared.load(ack.doc_state);
    if (ack.ended) {
      showEnded({ reason: "ended", by: null }, ack.feedback_given);
      return;
    }
    root.dataset.state = "joined";
    shared.connect(ack.doc_url);
    peerPresent = Boolean(ack.peer_present);
    showPeer(peerPresent ? "present" : "absent");
    call.configure({ iceServers: ack.ice_servers, iceTransportPolicy: ack.ice_transport_policy });
    call.setPeerPresent(peerPresent);
    announceQuality();
    for (const [clientMsgId, text] of chatOutbox) sendChat(text, clientMsgId);
  }

  onConnectionChange((state) => {
    if (state === "connected") {
      ensureJoined();
    } else {
      joinedOn = null;
    }
  });

  // ---- the assignment -----------------------------------------------------------------------

  function attachmentView(a) {
    const link = document.createElement("a");
    link.href = a.url;
    link.target = "_blank";
    link.rel = "noopener";
    if (typeof a.mime === "string" && a.mime.startsWith("image/")) {
      const img = document.createElement("img");
      img.src = a.url;
      img.alt = t("Photo of the assignment");
      img.className = "room-image";
      img.dataset.testid = "assignment-image";
      link.append(img);
    } else {
      link.className = "btn btn-secondary";
      link.dataset.testid = "assignment-file";
      link.textContent =
        a.mime === "application/pdf"
          ? t("Open the PDF of the assignment")
          : t("Open the attached file");
    }
    return link;
  }

  function showAssignment(request) {
    const box = $("room-assignment");
    if (!request || !box.hidden) return;
    const facts = [
      request.subject_name,
      request.grade ? t("Grade {grade}", { grade: request.grade }) : "",
    ];
    $("room-assignment-facts").textContent = facts.filter(Boolean).join(" · ");
    const note = $("room-assignment-note");
    note.textContent = request.note || "";
    note.hidden = !request.note;
    const files = $("room-assignment-files");
    files.replaceChildren(...(request.attachments || []).map(attachmentView));
    box.hidden = false;
  }

  // ---- chat ---------------------------------------------------------------------------------

  function nearBottom() {
    return chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 48;
  }

  /** Shows a message once; true if it was not shown yet. */
  function addMessage(m) {
    if (
      m.msg_id !== undefined &&
      chatLog.querySelector(`[data-msg-id="${CSS.escape(String(m.msg_id))}"]`)
    )
      return false;
    const stick = nearBottom();
    const pending = m.client_msg_id
      ? chatLog.querySelector(`[data-client-id="${CSS.escape(m.client_msg_id)}"]`)
      : null;
    const item = messageItem(m, { own: m.from_role === role });
    if (pending) pending.replaceWith(item);
    else chatLog.append(item);
    if (stick) chatLog.scrollTop = chatLog.scrollHeight;
    return true;
  }

  function renderHistory(history) {
    const waiting = [...chatLog.querySelectorAll(".pending")];
    chatLog.textContent = "";
    for (const m of history) addMessage(m);
    for (const li of waiting) {
      if (!chatLog.querySelector(`[data-client-id="${CSS.escape(li.dataset.clientId)}"]`))
        chatLog.append(li);
    }
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  async function sendChat(text, clientMsgId) {
    chatOutbox.set(clientMsgId, text);
    const ack = await hub.request("chat:send", {
      room_id: roomId,
      text,
      client_msg_id: clientMsgId,
    });
    const mine = chatLog.querySelector(`.pending[data-client-id="${CSS.escape(clientMsgId)}"]`);
    if (ack.ok) {
      chatOutbox.delete(clientMsgId);
      if (mine) {
        mine.classList.remove("pending");
        mine.removeAttribute("title");
        mine.dataset.msgId = String(ack.msg_id);
        mine.querySelector(".chat-time").textContent = clockTime(ack.ts);
      }
      return;
    }
    if (ack.error.code === "timeout") {
      // Kept: sent again (same client_msg_id, stored once) after the room is joined again.
      if (mine) mine.title = t("Not sent yet. It is sent when the connection is back.");
      return;
    }
    chatOutbox.delete(clientMsgId);
    if (mine) mine.remove();
    chatError.textContent = ack.error.message;
    if (!chatInput.value) chatInput.value = text; // let them fix it instead of typing it again
    chatInput.setAttribute("aria-invalid", "true");
    chatInput.focus();
  }

  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = chatInput.value.trim();
    if (!text || ended || !roomId) return;
    chatError.textContent = "";
    chatInput.removeAttribute("aria-invalid");
    const clientMsgId = randomId();
    const stick = nearBottom();
    chatLog.append(messageItem({ text, client_msg_id: clientMsgId }, { pending: true }));
    if (stick) chatLog.scrollTop = chatLog.scrollHeight;
    chatInput.value = "";
    if (joinedOn) sendChat(text, clientMsgId);
    else chatOutbox.set(clientMsgId, text); // sent when the room is joined
  });

  chatInput.addEventListener("input", () => {
    if (chatInput.getAttribute("aria-invalid")) {
      chatInput.removeAttribute("aria-invalid");
      chatError.textContent = "";
    }
  });

  // ---- ending, reporting, feedback ----------------------------------------------------------

  const endBtn = $("room-end");
  const endConfirm = $("room-end-confirm");

  function toggleEndConfirm(open) {
    endConfirm.hidden = !open;
    endBtn.setAttribute("aria-expanded", String(open));
    if (open) $("room-end-no").focus();
  }
  endBtn.addEventListener("click", () => toggleEndConfirm(endConfirm.hidden));
  $("room-end-no").addEventListener("click", () => {
    toggleEndConfirm(false);
    endBtn.focus();
  });
  $("room-end-yes").addEventListener("click", async () => {
    const yes = $("room-end-yes");
    yes.disabled = true;
    const ack = await hub.request("room:end", { room_id: roomId });
    yes.disabled = false;
    if (ack.ok || (ack.error.code === "conflict" && ack.error.details?.reason === "ended")) {
      showEnded({ reason: "ended", by: role });
    } else {
      chatError.textContent = ack.error.message;
    }
  });

  const reportBtn = $("room-report-open");
  const reportForm = $("room-report");
  const reportText = $("room-report-text");
  const reportError = $("room-report-error");

  function toggleReport(open) {
    reportForm.hidden = !open;
    reportBtn.setAttribute("aria-expanded", String(open));
    if (open) {
      $("room-report-done").textContent = "";
      reportText.focus();
    }
  }
  reportBtn.addEventListener("click", () => toggleReport(reportForm.hidden));
  $("room-report-cancel").addEventListener("click", () => {
    toggleReport(false);
    reportBtn.focus();
  });
  reportForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    reportError.textContent = "";
    reportText.removeAttribute("aria-invalid");
    const text = reportText.value.trim();
    if (!text) {
      reportError.textContent = t("Write what happened.");
      reportText.setAttribute("aria-invalid", "true");
      reportText.focus();
      return;
    }
    const submit = reportForm.querySelector('[type="submit"]');
    submit.disabled = true;
    const ack = await hub.request("room:report", { room_id: roomId, text });
    submit.disabled = false;
    if (!ack.ok) {
      reportError.textContent = ack.error.message;
      return;
    }
    reportText.value = "";
    toggleReport(false);
    $("room-report-done").textContent = t("Thank you. Your report was sent to the coordinators.");
    reportBtn.focus();
  });

  const feedbackForm = $("room-feedback");
  const feedbackError = $("room-feedback-error");
  const feedbackDone = $("room-feedback-done");

  feedbackForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    feedbackError.textContent = "";
    const rating = feedbackForm.querySelector('input[name="rating"]:checked');
    if (!rating) {
      feedbackError.textContent = t("Choose a number from 1 to 5.");
      feedbackForm.querySelector('input[name="rating"]').focus();
      return;
    }
    const submit = feedbackForm.querySelector('[type="submit"]');
    submit.disabled = true;
    const payload = { room_id: roomId, rating: Number(rating.value) };
    const comment = $("room-feedback-comment").value.trim();
    if (comment) payload.comment = comment;
    const ack = await hub.request("feedback:submit", payload);
    submit.disabled = false;
    if (!ack.ok) {
      feedbackError.textContent = ack.error.message;
      return;
    }
    feedbackForm.hidden = true;
    feedbackDone.textContent = t("Thank you! Your feedback was sent.");
    feedbackDone.focus();
  });

  function showEnded({ reason, by }, feedbackGiven = false) {
    const first = !ended;
    ended = true;
    root.dataset.state = "ended";
    call.close();
    shared.close();
    shared.forget();
    chatOutbox.clear();
    docText.readOnly = true;
    board.setEnabled(false);
    chatForm.hidden = true;
    chatError.textContent = "";
    $("room-board-tools").hidden = true;
    endBtn.hidden = true;
    endConfirm.hidden = true;
    soundBtn.hidden = true;
    mediaError.hidden = true;
    muteBtn.disabled = true;
    cameraBtn.disabled = true;
    peerStatus.textContent = "";
    let text = "";
    if (by === role) text = t("You ended the session.");
    else if (reason === "peer_gone")
      text = t("{name} did not come back, so the session ended.", { name: peerName() });
    else if (by) text = t("{name} ended the session.", { name: peerName() });
    const reasonEl = $("room-ended-reason");
    if (text || first) reasonEl.textContent = text;
    if (feedbackGiven) {
      feedbackForm.hidden = true;
      feedbackDone.textContent = t("Thank you! Your feedback was sent.");
    }
    tabs.ended();
    const box = $("room-ended");
    box.hidden = false;
    if (first) $("room-ended-title").focus();
  }

  // ---- hub events -----------------------------------------------------------------------------

  const mine = (m) => m && roomId && m.room_id === roomId;

  hub.on("rtc:signal", (m) => {
    // The hub relays to every other connection in the room: my own other tabs too.
    if (mine(m) && !ended && m.from !== role) call.signal(m);
  });
  hub.on("rtc:quality", (m) => {
    if (mine(m) && !ended && m.from !== role) showQuality("theirs", m);
  });
  hub.on("chat:message", (m) => {
    if (mine(m) && addMessage(m) && m.from_role !== role) tabs.unseenMessage();
  });
  hub.on("chat:blocked", (m) => {
    // Also reaches the sender's other tabs; the sending tab already shows the ack's message.
    if (mine(m) && m.message) chatError.textContent = m.message;
  });
  hub.on("peer:left", (m) => {
    if (!mine(m) || ended) return;
    peerPresent = false;
    showPeer("left");
    call.setPeerPresent(false);
  });
  hub.on("peer:back", (m) => {
    if (!mine(m) || ended) return;
    peerPresent = true;
    showPeer("present");
    call.setPeerPresent(true, { returned: true });
    // They may come back on a fresh page, sending full video: what they send now, they say.
    showQuality("theirs", null);
    announceQuality();
  });
  hub.on("room:ended", (m) => {
    if (mine(m)) showEnded(m);
  });

  return {
    /** Opens the room (idempotent for the same room; another room reloads the page). */
    enter(id, peerInfo) {
      if (roomId && roomId !== id) {
        window.location.reload(); // a different room: start from a clean page
        return;
      }
      if (!roomId) {
        roomId = id;
        root.dataset.roomId = id;
        shared.persist(id);
        if (peerInfo) peer = peerInfo;
        remoteNote.textContent = t("Video of {name}", { name: peerName() });
        showPeer("absent");
        root.hidden = false;
        call.startMedia();
      }
      ensureJoined();
    },
  };
}
