// The video call of a room: camera and microphone, one RTCPeerConnection, signalling through the
// hub (rtc:signal), and recovery when the network drops.
//
//   const call = createCall({ polite, send, localVideo, remoteVideo, onState, onMedia });
//   call.startMedia();                         // asks for camera + microphone (once)
//   call.configure({ iceServers, iceTransportPolicy });
//   call.setPeerPresent(true);                 // from room:join, peer:back, peer:left
//   call.signal(message);                      // every rtc:signal from the hub, in order
//
// Perfect negotiation (W3C WebRTC "perfect negotiation" example): the helper is impolite and
// makes the offers, the student is polite and only answers; the student asks for a new offer
// with kind "restart". The helper opens audio and video transceivers itself, so the student's
// camera (or a camera that is allowed later) is attached with replaceTrack and never needs a
// new round of negotiation. Media goes peer to peer and is never recorded.

const RESTART_AFTER_DISCONNECT_MS = 4000; // "disconnected" often heals by itself within seconds
const OFFER_WAIT_MS = 2000; // the polite side asks for an offer when none came this long
const CONNECT_WATCHDOG_MS = 15000; // no connection after this long: try a fresh ICE round
const EARLY_CANDIDATES_MAX = 64; // candidates kept for a description that has not come yet

// How video adapts to the network. The thresholds and their reasons are documented once, in
// appliance/quality.py (the kiosk's copy of this policy); change both together.
export const VIDEO_POLICY = {
  sampleMs: 2000,
  poor: { loss: 0.04, rttS: 0.35, kbps: 400 },
  bad: { loss: 0.1, rttS: 0.6, kbps: 150 },
  downAfter: 2,
  upAfter: 5,
  heldFull: 15,
  low: { scaleResolutionDownBy: 2, maxFramerate: 10 },
};

/** "good", "poor" or "bad" for one sample {loss, rttS, kbps} (rttS, kbps may be null); the
 * estimate kbps counts only while video is full (below that it stays near what is sent). */
export function videoHealth({ loss = 0, rttS = null, kbps = null }, full = true) {
  const rate = full ? kbps : null;
  const past = (limit) =>
    loss >= limit.loss ||
    (rttS !== null && rttS >= limit.rttS) ||
    (rate !== null && rate < limit.kbps);
  if (past(VIDEO_POLICY.bad)) return "bad";
  return past(VIDEO_POLICY.poor) ? "poor" : "good";
}

/** Good samples in a row needed to go up a level: more each time that level failed again. */
function upAfter(policy) {
  const failed = (policy.level === "off" ? policy.offs : policy.falls) || 0;
  return VIDEO_POLICY.upAfter * 2 ** Math.min(Math.max(failed - 1, 0), 2);
}

/**
 * The policy {level, run, count, offs, falls} after one more sample; its level is what to send
 * now (offs: times video went off, falls: times full went down, since video last held full).
 */
export function nextVideoLevel(policy, sample) {
  const offs = policy.offs || 0;
  const falls = (policy.falls || 0) + (policy.level === "full" ? 1 : 0);
  const now = videoHealth(sample, policy.level === "full");
  const count = now === policy.run ? policy.count + 1 : 1;
  const down = count >= VIDEO_POLICY.downAfter;
  if (now === "bad" && down && policy.level !== "off")
    return { level: "off", run: now, count: 0, offs: offs + 1, falls };
  if (now === "poor" && down && policy.level === "full")
    return { level: "low", run: now, count: 0, offs, falls };
  if (now === "good" && policy.level !== "full" && count >= upAfter(policy))
    return { ...policy, level: policy.level === "off" ? "low" : "full", run: now, count: 0 };
  if (policy.level === "full" && now === "good" && count >= VIDEO_POLICY.heldFull)
    return { level: "full", run: now, count, offs: 0, falls: 0 };
  return { ...policy, run: now, count };
}

/**
 * One sample from an RTCStatsReport (as a list of its values) and the counters of the sample
 * before: loss is the share of our packets the other side reported lost since then.
 */
export function sampleFromStats(stats, before = { sent: 0, lost: 0 }) {
  let sent = 0;
  let lost = 0;
  let rttS = null;
  let kbps = null;
  for (const s of stats) {
    if (s.type === "outbound-rtp") sent += s.packetsSent || 0;
    if (s.type === "remote-inbound-rtp") lost += Math.max(0, s.packetsLost || 0);
    // The round trip of the ICE checks: the RTCP one of a paused video stream keeps its last
    // (bad) value and would keep video off.
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (typeof s.availableOutgoingBitrate === "number") kbps = s.availableOutgoingBitrate / 1000;
      if (typeof s.currentRoundTripTime === "number") rttS = s.currentRoundTripTime;
    }
  }
  const dSent = sent - before.sent;
  const dLost = lost - before.lost;
  const loss = dSent + dLost > 0 ? Math.max(0, dLost) / (dSent + dLost) : 0;
  return { sample: { loss, rttS, kbps }, counters: { sent, lost } };
}

/** The o= session id of an SDP: the same for every negotiation of one RTCPeerConnection. */
function sessionOf(sdp) {
  const match = /^o=\S+ (\d+) /m.exec(sdp || "");
  return match ? match[1] : null;
}

/** The ICE username fragment a candidate belongs to, or null when it does not say. */
function ufragOf(candidate) {
  if (candidate.usernameFragment) return candidate.usernameFragment;
  const match = / ufrag (\S+)/.exec(candidate.candidate);
  return match ? match[1] : null;
}

/** Why the camera or microphone could not be used, as one word for the page to explain. */
function mediaProblem(err) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "refused";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "unsupported";
}

/**
 * polite: true for the student. send(kind, data): delivers an rtc:signal to the other member.
 * onState(state): "idle" | "waiting" | "connecting" | "connected" | "reconnecting" | "closed".
 * onMedia({audio, video, problem}): what the local devices gave; problem is null, "refused",
 * "missing", "busy" or "unsupported". onSoundBlocked(): the browser refused to play the other
 * side's sound until the user presses something. onQuality({video, reason}): our video changed
 * to "full", "low" or "off" because of the "network" or the user's "choice" (audio only).
 */
export function createCall({
  polite,
  send,
  localVideo,
  remoteVideo,
  onState = () => {},
  onMedia = () => {},
  onSoundBlocked = () => {},
  onQuality = () => {},
}) {
  let config = null; // RTCConfiguration once the hub gave it
  let readyResolve;
  const ready = new Promise((resolve) => (readyResolve = resolve));
  let pc = null;
  let remoteStream = null;
  let localStream = null;
  let mediaTried = null; // Promise of the getUserMedia attempt
  let peerPresent = false;
  let closed = false;
  let state = "idle";
  let makingOffer = false;
  let ignoreOffer = false;
  let settingRemoteAnswer = false;
  let signals = Promise.resolve(); // incoming signals are handled one at a time, in order
  // The hub handles each signal on its own, so a candidate can overtake the offer or answer it
  // belongs to: kept here until that remote description is set, then added.
  let earlyCandidates = [];
  let disconnectTimer = null;
  let offerWaitTimer = null;
  let watchdog = null;
  let statsTimer = null;
  let policy = { level: "full", run: "good", count: 0, offs: 0, falls: 0 };
  let counters = { sent: 0, lost: 0 };
  let audioOnly = false; // the user's choice, above whatever the network allows
  let sentLevel = "full";

  function setState(next) {
    if (state === next) return;
    state = next;
    onState(state);
  }

  function showPeerState() {
    if (closed) return setState("closed");
    if (!peerPresent) return setState("waiting");
    const s = pc ? pc.connectionState : "new";
    if (s === "connected") setState("connected");
    else if (s === "disconnected" || s === "failed") setState("reconnecting");
    else setState(state === "reconnecting" ? "reconnecting" : "connecting");
  }

  // ---- local media ----------------------------------------------------------------------

  async function getMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      onMedia({ audio: false, video: false, problem: "unsupported" });
      return;
    }
    const video = { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" };
    let stream = null;
    let problem = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true, video });
    } catch (err) {
      problem = mediaProblem(err);
      // Refused is refused: asking again for one device would only show the prompt again.
      if (problem !== "refused") {
        for (const only of [{ audio: true }, { video }]) {
          try {
            stream = await navigator.mediaDevices.getUserMedia(only);
            break;
          } catch {
            // try the other device
          }
        }
      }
    }
    if (closed) {
      if (stream) stream.getTracks().forEach((track) => track.stop());
      return;
    }
    if (stream) {
      if (localStream) localStream.getTracks().forEach((track) => track.stop());
      localStream = stream;
      localVideo.srcObject = stream;
      localVideo.play().catch(() => {});
      attachLocalTracks();
    }
    const audio = Boolean(stream && stream.getAudioTracks().length);
    const hasVideo = Boolean(stream && stream.getVideoTracks().length);
    onMedia({ audio, video: hasVideo, problem: audio && hasVideo ? null : problem || "missing" });
  }

  function localTrack(kind) {
    if (!localStream) return null;
    return (
      (kind === "audio" ? localStream.getAudioTracks() : localStream.getVideoTracks())[0] || null
    );
  }

  function transceiverKind(transceiver) {
    return transceiver.receiver && transceiver.receiver.track
      ? transceiver.receiver.track.kind
      : null;
  }

  /** Puts the current camera and microphone on the connection's senders. */
  function attachLocalTracks() {
    if (!pc || pc.signalingState === "closed") return;
    for (const transceiver of pc.getTransceivers()) {
      const kind = transceiverKind(transceiver);
      if (!kind || transceiver.stopped || transceiver.currentDirection === "stopped") continue;
      const track = localTrack(kind);
      if (transceiver.sender.track !== track)
        transceiver.sender.replaceTrack(track).catch(() => {});
    }
  }

  // ---- the peer connection ----------------------------------------------------------------

  function playRemote() {
    const playing = remoteVideo.play();
    if (!playing) return;
    playing.catch((err) => {
      if (err && err.name === "NotAllowedError" && !remoteVideo.muted) {
        // Autoplay with sound needs a tap first (e.g. after a reload): show the picture now.
        remoteVideo.muted = true;
        remoteVideo.play().catch(() => {});
        onSoundBlocked();
      }
    });
  }

  function newConnection() {
    dropConnection();
    const conn = new RTCPeerConnection(config);
    pc = conn;
    makingOffer = false;
    ignoreOffer = false;
    settingRemoteAnswer = false;
    remoteStream = new MediaStream();
    remoteVideo.srcObject = remoteStream;

    conn.addEventListener("track", ({ track }) => {
      if (pc !== conn) return;
      remoteStream.addTrack(track);
      playRemote();
    });
    conn.addEventListener("icecandidate", ({ candidate }) => {
      if (pc !== conn || !candidate) return; // end-of-candidates needs no message
      send("candidate", {
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
        usernameFragment: candidate.usernameFragment || undefined,
      });
    });
    conn.addEventListener("negotiationneeded", async () => {
      if (pc !== conn) return;
      if (polite) {
        // The helper makes the offers; ask for one instead.
        send("restart", {});
        return;
      }
      try {
        makingOffer = true;
        await conn.setLocalDescription();
        if (pc === conn)
          send("offer", { type: conn.localDescription.type, sdp: conn.localDescription.sdp });
      } catch (err) {
        console.error("could not make an offer", err);
      } finally {
        makingOffer = false;
      }
    });
    conn.addEventListener("connectionstatechange", () => {
      if (pc !== conn) return;
      onConnectionState(conn);
    });
    if (!polite) {
      // The offerer opens both directions, whatever devices either side has.
      conn.addTransceiver("audio", { direction: "sendrecv" });
      conn.addTransceiver("video", { direction: "sendrecv" });
      attachLocalTracks();
    }
    armWatchdog();
    showPeerState();
    statsTimer = setInterval(measure, VIDEO_POLICY.sampleMs);
  }

  // ---- adapting video to the network -----------------------------------------------------

  function videoSender() {
    if (!pc) return null;
    const transceiver = pc.getTransceivers().find((t) => transceiverKind(t) === "video");
    return transceiver && !transceiver.stopped ? transceiver.sender : null;
  }

  /** Sends video at the level the network and the user's choice allow, and says so once. */
  async function applyVideoLevel() {
    const level = audioOnly ? "off" : policy.level;
    const sender = videoSender();
    if (sender) {
      const params = sender.getParameters();
      if (params.encodings && params.encodings.length) {
        for (const encoding of params.encodings) {
          encoding.active = level !== "off";
          encoding.scaleResolutionDownBy =
            level === "low" ? VIDEO_POLICY.low.scaleResolutionDownBy : 1;
          if (level === "low") encoding.maxFramerate = VIDEO_POLICY.low.maxFramerate;
          else delete encoding.maxFramerate;
        }
        await sender.setParameters(params).catch((err) => console.warn("setParameters", err));
      }
    }
    if (level !== sentLevel) {
      sentLevel = level;
      onQuality({ video: level, reason: audioOnly ? "choice" : "network" });
    }
  }

  async function measure() {
    const conn = pc;
    if (!conn || conn.connectionState !== "connected") return;
    const report = await conn.getStats().catch(() => null);
    if (!report || pc !== conn) return;
    const { sample, counters: next } = sampleFromStats([...report.values()], counters);
    counters = next;
    // With audio only chosen, little is sent and the estimate falls with it: it does not count
    // (as on the kiosk), or video would come back low or off when the user turns it on again.
    policy = nextVideoLevel(policy, audioOnly ? { ...sample, kbps: null } : sample);
    await applyVideoLevel();
  }

  function dropConnection() {
    clearInterval(statsTimer);
    statsTimer = null;
    counters = { sent: 0, lost: 0 };
    clearTimeout(disconnectTimer);
    clearTimeout(watchdog);
    if (pc) {
      const old = pc;
      pc = null;
      old.close();
    }
  }

  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      if (pc && peerPresent && !closed && pc.connectionState !== "connected") restart();
    }, CONNECT_WATCHDOG_MS);
  }

  function onConnectionState(conn) {
    const s = conn.connectionState;
    clearTimeout(disconnectTimer);
    if (s === "connected") {
      clearTimeout(watchdog);
      playRemote();
    } else if (s === "failed") {
      restart();
    } else if (s === "disconnected") {
      disconnectTimer = setTimeout(() => {
        if (pc === conn && conn.connectionState === "disconnected") restart();
      }, RESTART_AFTER_DISCONNECT_MS);
    }
    showPeerState();
  }

  /** A new round of ICE: the helper restarts; the student asks the helper to. */
  function restart() {
    if (closed || !peerPresent || !config) return;
    armWatchdog();
    if (polite) {
      send("restart", {});
      return;
    }
    if (!pc || pc.connectionState === "closed") {
      newConnection();
    } else {
      pc.restartIce(); // fires negotiationneeded: a new offer with fresh ICE credentials
    }
    setState("reconnecting");
  }

  /** The helper: sends the offer that waits for an answer again; false if there is none. */
  function resendOffer() {
    if (!pc || pc.signalingState !== "have-local-offer" || !pc.localDescription) return false;
    send("offer", { type: "offer", sdp: pc.localDescription.sdp });
    return true;
  }

  /** The student: if the helper's offer does not come (it was sent before we were here), ask. */
  function expectOffer() {
    clearTimeout(offerWaitTimer);
    offerWaitTimer = setTimeout(() => {
      if (closed || !peerPresent) return;
      if (!pc || !pc.remoteDescription) send("restart", {});
    }, OFFER_WAIT_MS);
  }

  /** Whether the candidate belongs to the connection's current remote description. */
  function fitsRemote(conn, candidate) {
    if (!conn || !conn.remoteDescription) return false;
    const ufrag = ufragOf(candidate);
    return !ufrag || conn.remoteDescription.sdp.split(/\r?\n/).includes(`a=ice-ufrag:${ufrag}`);
  }

  async function addCandidate(conn, candidate) {
    try {
      await conn.addIceCandidate(candidate);
    } catch (err) {
      if (pc === conn && !ignoreOffer) console.warn("ICE candidate refused", err);
    }
  }

  /** A candidate from the other side: added now, or kept until its description is set. */
  async function onCandidate(candidate) {
    if (fitsRemote(pc, candidate)) {
      await addCandidate(pc, candidate);
      return;
    }
    earlyCandidates.push(candidate);
    if (earlyCandidates.length > EARLY_CANDIDATES_MAX) earlyCandidates.shift();
  }

  /** After a remote description is set: adds the candidates that came before it. */
  async function addEarlyCandidates(conn) {
    const fitting = earlyCandidates.filter((candidate) => fitsRemote(conn, candidate));
    earlyCandidates = earlyCandidates.filter((candidate) => !fitting.includes(candidate));
    for (const candidate of fitting) await addCandidate(conn, candidate);
  }

  async function handleDescription(description) {
    if (description.type === "offer" && polite) {
      // A fresh RTCPeerConnection on the other side (they reloaded): start a fresh one here too.
      const known = pc && pc.remoteDescription ? sessionOf(pc.remoteDescription.sdp) : null;
      if (!pc || (known && known !== sessionOf(description.sdp))) newConnection();
    }
    if (!pc) return; // an answer with no offer of ours: stale, ignore
    if (description.type === "answer" && !polite && pc.remoteDescription) {
      const known = sessionOf(pc.remoteDescription.sdp);
      if (known && known !== sessionOf(description.sdp)) {
        // The student's page is new and answered our restart: it needs a fresh connection.
        newConnection();
        return;
      }
    }
    const conn = pc;
    const readyForOffer = !makingOffer && (conn.signalingState === "stable" || settingRemoteAnswer);
    const collision = description.type === "offer" && !readyForOffer;
    ignoreOffer = !polite && collision;
    if (ignoreOffer) return;
    if (description.type === "answer" && conn.signalingState !== "have-local-offer") return;
    settingRemoteAnswer = description.type === "answer";
    try {
      await conn.setRemoteDescription(description); // a polite collision rolls back implicitly
    } finally {
      settingRemoteAnswer = false;
    }
    await addEarlyCandidates(conn);
    if (description.type === "offer") {
      for (const transceiver of conn.getTransceivers()) {
        if (transceiverKind(transceiver) && !transceiver.stopped)
          transceiver.direction = "sendrecv";
      }
      attachLocalTracks();
      await conn.setLocalDescription();
      if (pc === conn)
        send("answer", { type: conn.localDescription.type, sdp: conn.localDescription.sdp });
    }
  }

  async function handleSignal(m) {
    if (closed) return;
    const data = m.data;
    if (m.kind === "offer" || m.kind === "answer") {
      if (!data || data.type !== m.kind || typeof data.sdp !== "string") return;
      clearTimeout(offerWaitTimer);
      await handleDescription({ type: data.type, sdp: data.sdp });
    } else if (m.kind === "candidate") {
      if (!data || typeof data.candidate !== "string" || !data.candidate) return;
      await onCandidate(data);
    } else if (m.kind === "restart" && !polite) {
      peerPresent = true;
      if (!resendOffer()) restart();
    }
  }

  return {
    /** Asks for camera and microphone once; later calls return the same attempt. */
    startMedia() {
      if (!mediaTried) mediaTried = getMedia();
      return mediaTried;
    },

    /** Asks again (after the user fixed a refused or busy device). */
    retryMedia() {
      mediaTried = getMedia();
      return mediaTried;
    },

    /** ICE servers and policy from room:join; signals wait for this. */
    configure({ iceServers, iceTransportPolicy }) {
      const next = {
        iceServers: iceServers || [],
        iceTransportPolicy: iceTransportPolicy || "all",
      };
      const changed = config && JSON.stringify(config) !== JSON.stringify(next);
      config = next;
      if (changed && pc) pc.setConfiguration(config); // fresh TURN credentials after a rejoin
      readyResolve();
    },

    /** Whether the other member is in the room: the helper (re)offers when they come. */
    setPeerPresent(present, { returned = false } = {}) {
      const was = peerPresent;
      peerPresent = present;
      if (closed) return;
      if (!present) {
        clearTimeout(offerWaitTimer);
        showPeerState();
        return;
      }
      ready.then(() => {
        if (closed || !peerPresent) return;
        if (polite) {
          if (!pc || pc.connectionState !== "connected") expectOffer();
        } else if (!pc) {
          newConnection();
        } else if (returned || !was) {
          // They came back: only their network blinked (an ICE restart is enough; a new page
          // is caught by the session of its answer), or our offer went out before they listened
          // (send it again), or the old connection is no use any more (start a fresh one).
          if (pc.connectionState === "connected") pc.restartIce();
          else if (!resendOffer()) newConnection();
        }
        showPeerState();
      });
    },

    /** One rtc:signal from the hub. */
    signal(m) {
      signals = signals
        .then(() => ready)
        .then(() => handleSignal(m))
        .catch((err) => console.error("rtc:signal", m && m.kind, err));
    },

    setMuted(muted) {
      const track = localTrack("audio");
      if (track) track.enabled = !muted;
    },

    setCameraOff(off) {
      const track = localTrack("video");
      if (track) track.enabled = !off;
    },

    /** The user's choice of audio only (true) or video as the network allows (false). */
    setAudioOnly(on) {
      audioOnly = Boolean(on);
      return applyVideoLevel();
    },

    /** Lets the other side's sound play (after the user pressed a button). */
    unmuteRemote() {
      remoteVideo.muted = false;
      remoteVideo.play().catch(() => {});
    },

    /** Ends the call for good: camera and microphone off. */
    close() {
      closed = true;
      clearTimeout(offerWaitTimer);
      dropConnection();
      if (localStream) localStream.getTracks().forEach((track) => track.stop());
      localStream = null;
      localVideo.srcObject = null;
      remoteVideo.srcObject = null;
      setState("closed");
    },
  };
}
