// The room on a narrow screen: one part at a time, chosen with the tabs Video · Chat · Notes ·
// Whiteboard (WAI-ARIA tabs, selected on arrow keys too), the other person's video kept small
// beside the tabs while another part is open, and a count of the chat messages that came while
// the chat was not shown. Wide screens show every part at once; there the tabs are not shown.
//
//   const tabs = mountRoomTabs({ root, t, onSelect });
//   tabs.shows("chat");   // whether that part is on the screen now
//   tabs.unseenMessage(); // a message came: counted unless the chat is on the screen
//
// The markup is in hub/templates/_room.html; app.css shows the part named by root's data-tab.

const NARROW = "(max-width: 63.99em)"; // the same width as app.css's room tabs

export function mountRoomTabs({ root, t, onSelect = () => {} }) {
  const tabs = [...root.querySelectorAll('.room-tabs [role="tab"]')];
  const badge = root.querySelector("#room-chat-badge");
  const unreadText = root.querySelector("#room-chat-unread");
  const call = root.querySelector("#room-call");
  const narrow = window.matchMedia(NARROW);
  let current = root.dataset.tab || "video";
  let unread = 0;

  const panelOf = (tab) => document.getElementById(tab.getAttribute("aria-controls"));

  /** Tab panels only while the tabs are shown; a panel without a heading is named by its tab. */
  function markPanels() {
    for (const tab of tabs) {
      const panel = panelOf(tab);
      if (narrow.matches) {
        panel.setAttribute("role", "tabpanel");
        if (!panel.hasAttribute("aria-labelledby")) {
          panel.setAttribute("aria-labelledby", tab.id);
          panel.dataset.namedByTab = "true";
        }
      } else {
        panel.removeAttribute("role");
        if (panel.dataset.namedByTab) {
          panel.removeAttribute("aria-labelledby");
          delete panel.dataset.namedByTab;
        }
      }
    }
  }

  function setUnread(n) {
    unread = n;
    badge.textContent = n ? String(n) : "";
    badge.hidden = !n;
    if (!n) unreadText.textContent = "";
    else if (n === 1) unreadText.textContent = t("1 new message in the chat");
    else unreadText.textContent = t("{n} new messages in the chat", { n });
  }

  function select(name, { focus = false } = {}) {
    const changed = name !== current;
    current = name;
    root.dataset.tab = name;
    for (const tab of tabs) {
      const on = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    }
    if (name === "chat") setUnread(0);
    if (!changed) return;
    // From further down the page (the tabs stay at the top): start the new part at its top.
    const grid = root.querySelector(".room-grid");
    const top = grid.getBoundingClientRect().top;
    if (top < 0) window.scrollBy(0, top);
    onSelect(name);
  }

  function visible(tab) {
    return !tab.hidden;
  }

  root.querySelector(".room-tabs").addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tab.dataset.tab);
  });
  root.querySelector(".room-tabs").addEventListener("keydown", (event) => {
    const shown = tabs.filter(visible);
    const i = shown.indexOf(event.target);
    if (i < 0) return;
    const n = shown.length;
    const next = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[
      event.key
    ];
    if (next === undefined) return;
    event.preventDefault();
    select(shown[next].dataset.tab, { focus: true });
  });
  // A tap on the small video opens the video (the Video tab does the same from the keyboard).
  call.addEventListener("click", () => {
    if (narrow.matches && current !== "video") select("video");
  });
  narrow.addEventListener("change", () => {
    markPanels();
    if (!narrow.matches) setUnread(0);
  });
  markPanels();
  select(current);

  return {
    shows(name) {
      return !narrow.matches || current === name;
    },

    unseenMessage() {
      if (!this.shows("chat")) setUnread(unread + 1);
    },

    /** After the session there is no video: the tabs keep the chat, the notes and the board. */
    ended() {
      const video = tabs.find((tab) => tab.dataset.tab === "video");
      video.hidden = true;
      if (current === "video") select("notes");
    },
  };
}
