// The room's shared document: one Yjs document with a Y.Text "text" (the notes both write in)
// and a Y.Array "strokes" (the whiteboard, see whiteboard.js). The hub keeps the same document
// with pycrdt; both speak Yjs v1 updates (encodeStateAsUpdate / applyUpdate, never V2).
//
//   const shared = createSharedDoc({ send: (b64) => hub.request("doc:update", {...}) });
//   shared.load(ack.doc_state);       // room:join: the whole document, then
//   shared.setOnline(true);           // local edits not yet acknowledged go out
//   shared.applyRemote(m.update);     // doc:update from the other side
//   bindTextarea(shared, textarea);
//
// Every local change is an update in an outbox until the hub acknowledges it (the hub stores it
// before it answers), so nothing is lost when the connection drops: after the next room:join the
// outbox is sent again. Applying an update twice does nothing, so a resend is always safe.

import * as Y from "../vendor/yjs/yjs.esm.min.js";

export { Y };

/** Origin of updates that came from the hub: they are never sent back. */
export const REMOTE = Symbol("remote");

const MAX_BATCH_BYTES = 256 * 1024; // the hub takes updates up to 512 KiB (base64)

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * send(updateBase64) resolves to the hub's acknowledgement ({ok, ...} or {ok: false, error}).
 * onRefused(error): the hub refused an update for good (e.g. the room ended); it is dropped.
 * onPending(n): how many local updates wait for an acknowledgement (for the page's status).
 */
export function createSharedDoc({ send, onRefused = () => {}, onPending = () => {} }) {
  const doc = new Y.Doc();
  const text = doc.getText("text");
  const strokes = doc.getArray("strokes");
  const outbox = []; // Uint8Array updates, oldest first, not yet acknowledged
  let inFlight = false;
  let online = false;

  async function flush() {
    if (inFlight || !online || outbox.length === 0) return;
    // Everything waiting goes as one merged update (one message, one stored row on the hub).
    let n = 0;
    let size = 0;
    while (n < outbox.length && (n === 0 || size + outbox[n].length <= MAX_BATCH_BYTES)) {
      size += outbox[n].length;
      n += 1;
    }
    const update = n === 1 ? outbox[0] : Y.mergeUpdates(outbox.slice(0, n));
    inFlight = true;
    let ack;
    try {
      ack = await send(toBase64(update));
    } finally {
      inFlight = false;
    }
    if (ack.ok) {
      outbox.splice(0, n);
    } else if (ack.error && ack.error.code === "timeout") {
      online = false; // kept; sent again after the next room:join
    } else {
      outbox.splice(0, n);
      onRefused(ack.error || {});
    }
    onPending(outbox.length);
    flush();
  }

  doc.on("update", (update, origin) => {
    if (origin === REMOTE) return;
    outbox.push(update);
    onPending(outbox.length);
    flush();
  });

  return {
    doc,
    text,
    strokes,

    /** The whole document from room:join (merged with what this page has). */
    load(stateBase64) {
      if (stateBase64) Y.applyUpdate(doc, fromBase64(stateBase64), REMOTE);
    },

    /** A doc:update from the other side. Returns false for an update Yjs cannot read. */
    applyRemote(updateBase64) {
      try {
        Y.applyUpdate(doc, fromBase64(updateBase64), REMOTE);
        return true;
      } catch (err) {
        console.error("a document update could not be applied", err);
        return false;
      }
    },

    /** Joined (true): send what waits. Connection lost (false): keep it for later. */
    setOnline(value) {
      online = value;
      if (online) flush();
    },
  };
}

// ---- the text area --------------------------------------------------------------------------

/**
 * Where index (a position in the text before a change) is after the change (a Y.Text delta).
 * Text inserted exactly at the index goes after it, so a caret stays where the user left it.
 */
function transformIndex(index, delta) {
  let oldPos = 0;
  let result = index;
  for (const op of delta) {
    if (oldPos > index) break;
    if (op.retain !== undefined) {
      oldPos += op.retain;
    } else if (op.insert !== undefined) {
      if (oldPos < index) result += typeof op.insert === "string" ? op.insert.length : 1;
    } else if (op.delete !== undefined) {
      if (index > oldPos) result -= Math.min(op.delete, index - oldPos);
      oldPos += op.delete;
    }
  }
  return result;
}

/** The one edit that turns before into after: {index, remove, insert}; the caret helps to
 * place an insertion of repeated characters where it was typed. */
function diffText(before, after, caret = after.length) {
  const limit = Math.min(before.length, after.length);
  let start = 0;
  while (start < limit && start < caret && before[start] === after[start]) start++;
  let end = 0;
  while (end < limit - start && before[before.length - 1 - end] === after[after.length - 1 - end]) {
    end++;
  }
  return {
    index: start,
    remove: before.length - start - end,
    insert: after.slice(start, after.length - end),
  };
}

/**
 * Two-way binding between shared.text and a <textarea>. Local typing becomes minimal
 * insert/delete operations; remote changes keep the caret and selection where they were. While
 * an input method composes a word (e.g. Android keyboards), remote changes wait so the word is
 * not broken; the local edit is then moved past them before it is applied.
 */
export function bindTextarea(shared, textarea) {
  const { doc, text } = shared;
  const LOCAL = Symbol("textarea");
  let shown = text.toString(); // what the textarea holds, as far as the document knows
  let missed = []; // remote deltas not yet shown (while composing)
  let composing = false;

  function render(deltas) {
    const focused = document.activeElement === textarea;
    let start = textarea.selectionStart;
    let end = textarea.selectionEnd;
    const direction = textarea.selectionDirection;
    for (const delta of deltas) {
      start = transformIndex(start, delta);
      end = transformIndex(end, delta);
    }
    const scroll = textarea.scrollTop;
    shown = text.toString();
    textarea.value = shown;
    textarea.scrollTop = scroll;
    if (focused) textarea.setSelectionRange(start, end, direction);
  }

  function applyLocal() {
    const value = textarea.value;
    if (value === shown && missed.length === 0) return;
    const caret = textarea.selectionEnd;
    const edit = diffText(shown, value, caret);
    let index = edit.index;
    let stop = edit.index + edit.remove;
    for (const delta of missed) {
      index = transformIndex(index, delta);
      stop = Math.max(index, transformIndex(stop, delta));
    }
    doc.transact(() => {
      if (stop > index) text.delete(index, stop - index);
      if (edit.insert) text.insert(index, edit.insert);
    }, LOCAL);
    if (missed.length) {
      // Show the other side's changes too; the caret goes after what was just typed.
      missed = [];
      shown = text.toString();
      textarea.value = shown;
      const at = index + edit.insert.length;
      if (document.activeElement === textarea) textarea.setSelectionRange(at, at);
    } else {
      shown = value;
    }
  }

  text.observe((event, transaction) => {
    if (transaction.origin === LOCAL) return;
    if (composing) missed.push(event.delta);
    else render([event.delta]);
  });
  textarea.addEventListener("input", () => {
    if (!composing) applyLocal();
  });
  textarea.addEventListener("compositionstart", () => {
    composing = true;
  });
  textarea.addEventListener("compositionend", () => {
    composing = false;
    applyLocal();
  });
  textarea.value = shown;
}
