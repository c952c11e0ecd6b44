// The room's shared document: one Yjs document with a Y.Text "text" (the notes both write in)
// and a Y.Array "strokes" (the whiteboard, see whiteboard.js). The hub keeps the same document
// with pycrdt; both speak Yjs v1 updates (encodeStateAsUpdate / applyUpdate, never V2).
//
//   const shared = createSharedDoc({ onRefused, onPending, onTicketRefused });
//   shared.persist(roomId);           // keep it in IndexedDB, bring back what an earlier page had
//   shared.load(ack.doc_state);       // room:join: the whole document, at once
//   shared.connect(ack.doc_url);      // the document socket; again with each new room:join
//   bindTextarea(shared, textarea);
//   shared.close();                   // the room has ended
//   shared.forget();                  // and its copy in this browser goes
//
// The document socket (docs/protocol.md, "The shared document socket") speaks y-websocket's sync
// protocol: on every (re)connect both sides send sync step 1 (their state vector) and answer the
// other's with step 2 (what it lacks), so edits made while the socket was closed go out by
// themselves, from the Yjs document; there is no outbox to keep. The hub answers each step 2 and
// update this page sends with STORED (it is in the database) or ERROR, which is how the page
// knows what is saved.
//
// The page also keeps the document in IndexedDB (y-indexeddb, in the Yjs bundle), one database
// per room, from shared.persist(roomId): edits made while offline survive a reload and go out
// with the next step 2. With it a flag "unsaved" says whether the hub had not yet stored
// everything, so a reloaded page does not claim "saved" for edits that never left the browser.
// Children use shared home computers: the database goes when the room ends (shared.forget()),
// when another room is opened in this browser, and on logout (forgetAllDocs()).

import * as Y from "../vendor/yjs/yjs.esm.min.js";

export { Y };

const { syncProtocol, encoding, decoding, IndexeddbPersistence } = Y;

const DB_PREFIX = "lektiecafe-doc-";
const UNSAVED = "unsaved"; // key in y-indexeddb's custom store: true while the hub lacks edits

/** Origin of updates that came from the hub: they are never sent back. */
export const REMOTE = Symbol("remote");

const MESSAGE_SYNC = 0;
const MESSAGE_STORED = 100;
const MESSAGE_ERROR = 101;
const CLOSE_TICKET = 4401; // the ticket is no good any more: join the room again for a new one
const CLOSE_FOR_GOOD = new Set([4403]); // not a member: trying again will not help
const RETRY_MS = [500, 1000, 2000, 5000, 10000];

function socketUrl(docUrl) {
  const url = new URL(docUrl, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * onRefused(error): the hub refused a change for good ({code, message}, e.g. the room ended).
 * onPending(n, online): how many local changes are not yet stored (for the page's "saved"
 * state), and whether the document socket is open (they are on their way) or not.
 * onTicketRefused(): the socket's ticket expired; call connect() with a fresh doc_url.
 */
export function createSharedDoc({
  onRefused = () => {},
  onPending = () => {},
  onTicketRefused = () => {},
}) {
  const doc = new Y.Doc();
  const text = doc.getText("text");
  const strokes = doc.getArray("strokes");
  let url = null; // the latest doc_url
  let ws = null;
  let open = false;
  let unanswered = 0; // step 2 and update messages sent that the hub has not answered yet
  let changedOffline = false; // local changes made while the socket was closed
  let retries = 0;
  let retryTimer = null;
  let closed = false;
  let store = null; // the IndexeddbPersistence of persist()
  let restoring = false; // store opened, not yet read: whether it holds unsaved edits is unknown
  let storedUnsaved = null; // the UNSAVED flag as last written

  function reportPending() {
    const n = unanswered + (changedOffline ? 1 : 0) + (restoring ? 1 : 0);
    if (store && !restoring && storedUnsaved !== n > 0) {
      storedUnsaved = n > 0;
      store.set(UNSAVED, storedUnsaved);
    }
    onPending(n, open || restoring); // reading IndexedDB takes a moment: not a warning yet
  }

  function send(message, answered) {
    ws.send(message);
    if (answered) {
      unanswered += 1;
      reportPending();
    }
  }

  function onMessage(event) {
    const decoder = decoding.createDecoder(new Uint8Array(event.data));
    const type = decoding.readVarUint(decoder);
    if (type === MESSAGE_SYNC) {
      const reply = encoding.createEncoder();
      encoding.writeVarUint(reply, MESSAGE_SYNC);
      const kind = syncProtocol.readSyncMessage(decoder, reply, doc, REMOTE);
      if (kind === syncProtocol.messageYjsSyncStep1) {
        // The hub asks what it lacks: everything made while away goes in this step 2.
        changedOffline = false;
        send(encoding.toUint8Array(reply), true);
      }
    } else if (type === MESSAGE_STORED || type === MESSAGE_ERROR) {
      unanswered = Math.max(0, unanswered - 1);
      if (type === MESSAGE_ERROR) onRefused(JSON.parse(decoding.readVarString(decoder)));
      reportPending();
    }
  }

  function openSocket() {
    retryTimer = null;
    if (closed || !url) return;
    const socket = new WebSocket(socketUrl(url));
    socket.binaryType = "arraybuffer";
    ws = socket;
    socket.onopen = () => {
      open = true;
      retries = 0;
      const step1 = encoding.createEncoder();
      encoding.writeVarUint(step1, MESSAGE_SYNC);
      syncProtocol.writeSyncStep1(step1, doc);
      send(encoding.toUint8Array(step1), false);
    };
    socket.onmessage = onMessage;
    socket.onclose = (event) => {
      if (ws !== socket) return;
      ws = null;
      open = false;
      // Answers that did not come are for changes still in the document: the next connection's
      // step 2 carries them again.
      changedOffline = changedOffline || unanswered > 0;
      unanswered = 0;
      reportPending();
      if (closed || CLOSE_FOR_GOOD.has(event.code)) return;
      if (event.code === CLOSE_TICKET) {
        url = null;
        onTicketRefused();
        return;
      }
      const wait = RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
      retries += 1;
      retryTimer = setTimeout(openSocket, wait);
    };
  }

  // The browser knows when its network is gone: a socket open then is dead (answers will not
  // come), and when the network is back it is worth trying at once instead of after the wait.
  window.addEventListener("offline", () => {
    if (ws) ws.close();
  });
  window.addEventListener("online", () => {
    if (!retryTimer) return;
    clearTimeout(retryTimer);
    openSocket();
  });

  doc.on("update", (update, origin) => {
    if (origin === REMOTE) return;
    // Restored from IndexedDB: whether the hub has it is in the UNSAVED flag; if the socket is
    // open already, it goes out (the hub ignores what it has).
    if (store && origin === store && !open) return;
    if (open) {
      const message = encoding.createEncoder();
      encoding.writeVarUint(message, MESSAGE_SYNC);
      syncProtocol.writeUpdate(message, update);
      send(encoding.toUint8Array(message), true);
    } else {
      changedOffline = true;
      reportPending();
    }
  });

  return {
    doc,
    text,
    strokes,

    /** The whole document from room:join (merged with what this page has). */
    load(stateBase64) {
      if (!stateBase64) return;
      const binary = atob(stateBase64);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      Y.applyUpdate(doc, bytes, REMOTE);
    },

    /** Use this doc_url from now on; opens the socket unless it is open or about to be. */
    connect(docUrl) {
      url = docUrl;
      if (!ws && !retryTimer && !closed) openSocket();
    },

    /** Keeps the document of this room in IndexedDB and brings back what it held; the
     * databases of other rooms are deleted. Once per page. */
    persist(roomId) {
      if (store || !window.indexedDB) return;
      const name = DB_PREFIX + roomId;
      forgetAllDocs(name);
      store = new IndexeddbPersistence(name, doc);
      restoring = true;
      reportPending();
      store.whenSynced
        .then(() => store.get(UNSAVED))
        .then((unsaved) => {
          storedUnsaved = unsaved === true;
          if (storedUnsaved && !open) changedOffline = true;
          restoring = false;
          reportPending();
        });
    },

    /** The room has ended: no more socket. */
    close() {
      closed = true;
      clearTimeout(retryTimer);
      if (ws) ws.close();
    },

    /** The room has ended: its copy in this browser goes too. */
    forget() {
      if (store) store.clearData();
      store = null;
    },
  };
}

/** Deletes this browser's room documents (all but keep, a database name); resolves when the
 * deletions are done, or at once where the browser cannot list its databases. */
export async function forgetAllDocs(keep = null) {
  if (!window.indexedDB || typeof indexedDB.databases !== "function") return;
  const names = (await indexedDB.databases()).map((d) => d.name);
  const gone = names.filter((n) => n && n.startsWith(DB_PREFIX) && n !== keep);
  await Promise.all(
    gone.map(
      (n) =>
        new Promise((resolve) => {
          const req = indexedDB.deleteDatabase(n);
          req.onsuccess = req.onerror = req.onblocked = () => resolve();
        }),
    ),
  );
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
