// One chat message as a list item, shared by the break room and the learning room:
//   <li class="chat-message [own] [pending]" data-client-id data-msg-id>
//     <span class="chat-time"> <span class="chat-from"> <span class="chat-text">
// own: written by this page's user; pending: sent, not yet acknowledged by the hub.

import { clockTime } from "./i18n.js";

export function messageItem(m, { own = false, pending = false } = {}) {
  const li = document.createElement("li");
  li.className = "chat-message";
  if (own || pending) li.classList.add("own");
  if (pending) li.classList.add("pending");
  if (m.client_msg_id) li.dataset.clientId = m.client_msg_id;
  if (m.msg_id !== undefined && m.msg_id !== null) li.dataset.msgId = String(m.msg_id);
  const time = document.createElement("span");
  time.className = "chat-time";
  time.textContent = m.ts ? clockTime(m.ts) : "";
  const from = document.createElement("span");
  from.className = "chat-from";
  from.textContent = m.from || "";
  const text = document.createElement("span");
  text.className = "chat-text";
  text.textContent = m.text;
  li.append(time, from, text);
  return li;
}
