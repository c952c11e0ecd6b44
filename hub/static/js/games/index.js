// The break room's games. Each module exports mount(container, { t }) -> { destroy() } and runs
// entirely in the page (no network requests). Loaded only when first shown.

export const GAMES = [
  { id: "memory", titleKey: "Memory", load: () => import("./memory.js") },
  { id: "2048", titleKey: "2048", load: () => import("./2048.js") },
];

/**
 * Optional helper: builds tabs (one per game, WAI-ARIA tabs pattern) and a panel inside
 * container, and mounts the chosen game in the panel. Returns { destroy() }.
 * container usually is <section class="games">. t maps an English key to display text.
 */
export function mountGames(container, { t = (key) => key, games = GAMES } = {}) {
  const uid = Math.random().toString(36).slice(2, 8);
  const tabs = document.createElement("div");
  tabs.className = "tabs";
  tabs.setAttribute("role", "tablist");
  tabs.setAttribute("aria-label", t("Games"));
  const panel = document.createElement("div");
  panel.className = "game-panel";
  panel.id = `games-panel-${uid}`;
  panel.setAttribute("role", "tabpanel");
  container.append(tabs, panel);

  const buttons = games.map((game) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "tab";
    b.id = `games-tab-${uid}-${game.id}`;
    b.setAttribute("role", "tab");
    b.setAttribute("aria-controls", panel.id);
    b.textContent = t(game.titleKey);
    tabs.append(b);
    return b;
  });

  let current = null;
  let selected = -1;
  let destroyed = false;
  let token = 0;

  async function select(index, focus = false) {
    if (index === selected || destroyed) return;
    selected = index;
    buttons.forEach((b, i) => {
      b.setAttribute("aria-selected", i === index ? "true" : "false");
      b.tabIndex = i === index ? 0 : -1;
    });
    if (focus) buttons[index].focus();
    panel.setAttribute("aria-labelledby", buttons[index].id);
    if (current) current.destroy();
    current = null;
    panel.textContent = "";
    const mine = ++token;
    const module = await games[index].load();
    if (destroyed || mine !== token) return;
    current = module.mount(panel, { t });
  }

  function onClick(event) {
    const i = buttons.indexOf(event.target.closest('[role="tab"]'));
    if (i >= 0) select(i);
  }

  function onKey(event) {
    const i = buttons.indexOf(event.target);
    if (i < 0) return;
    const n = buttons.length;
    const next = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[
      event.key
    ];
    if (next === undefined) return;
    event.preventDefault();
    select(next, true);
  }

  tabs.addEventListener("click", onClick);
  tabs.addEventListener("keydown", onKey);
  select(0);

  return {
    destroy() {
      destroyed = true;
      if (current) current.destroy();
      tabs.removeEventListener("click", onClick);
      tabs.removeEventListener("keydown", onKey);
      tabs.remove();
      panel.remove();
    },
  };
}
