// Memory: find the 8 pairs on a 4x4 grid of cards. Runs entirely in the page (no network).
//
//   const game = mount(container, { t });   // t("English key") -> display text
//   game.destroy();
//
// Mouse, touch (tap a card) and keyboard (Tab to the grid, arrow keys / Home / End to move,
// Enter or Space to turn a card). Every word shown goes through t().

const SYMBOLS = [
  "🐱", "🐶", "🦊", "🐼", "🐸", "🐙", "🦄", "🐢",
  "🍎", "🍕", "🍩", "🚀", "⚽", "🎸", "🌈", "⭐",
];
const SIZE = 4;
const MISMATCH_MS = 900;

function shuffle(list) {
  const a = list.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function mount(container, { t = (key) => key } = {}) {
  const root = el("div", "game memory");

  const bar = el("div", "game-bar");
  const stats = el("div", "game-stats");
  const movesOut = el("span");
  const pairsOut = el("span");
  stats.append(movesOut, pairsOut);
  const newGame = el("button", "btn btn-secondary", t("New game"));
  newGame.type = "button";
  bar.append(stats, newGame);

  const grid = el("div", "memory-grid");
  grid.setAttribute("role", "group");
  grid.setAttribute("aria-label", t("Memory cards"));

  const status = el("p", "game-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");

  const help = el("p", "game-help",
    t("Find all the pairs. Use the arrow keys to move and Enter to turn a card."));

  root.append(bar, grid, status, help);
  container.append(root);

  let cards = [];        // {symbol, up, matched, button}
  let open = [];         // indices turned up and not yet matched (0, 1 or 2)
  let moves = 0;
  let pairs = 0;
  let focusIndex = 0;
  let timer = null;

  function label(i) {
    const c = cards[i];
    const name = `${t("Card")} ${i + 1}`;
    if (c.matched) return `${name}: ${c.symbol}, ${t("matched")}`;
    if (c.up) return `${name}: ${c.symbol}`;
    return `${name}, ${t("face down")}`;
  }

  function renderCard(i) {
    const c = cards[i];
    const b = c.button;
    b.textContent = "";
    const face = el("span", "", c.up || c.matched ? c.symbol : "?");
    face.setAttribute("aria-hidden", "true");
    b.append(face);
    b.classList.toggle("is-up", c.up || c.matched);
    b.classList.toggle("is-matched", c.matched);
    b.setAttribute("aria-label", label(i));
    b.setAttribute("aria-disabled", c.matched ? "true" : "false");
    b.tabIndex = i === focusIndex ? 0 : -1;
  }

  function renderStats() {
    movesOut.textContent = `${t("Moves")}: ${moves}`;
    pairsOut.textContent = `${t("Pairs")}: ${pairs}/${cards.length / 2}`;
  }

  function hideMismatch() {
    clearTimeout(timer);
    timer = null;
    if (open.length === 2) {
      for (const i of open) {
        cards[i].up = false;
        renderCard(i);
      }
      open = [];
    }
  }

  function turn(i) {
    const c = cards[i];
    if (!c || c.matched) return;
    if (open.length === 2) hideMismatch(); // a third tap hides the last pair at once
    if (c.up) return;
    c.up = true;
    open.push(i);
    renderCard(i);
    if (open.length < 2) {
      status.textContent = "";
      return;
    }
    moves += 1;
    const [a, b] = open;
    if (cards[a].symbol === cards[b].symbol) {
      cards[a].matched = cards[b].matched = true;
      cards[a].up = cards[b].up = false;
      open = [];
      pairs += 1;
      renderCard(a);
      renderCard(b);
      if (pairs === cards.length / 2) {
        status.textContent = `${t("You won!")} ${t("Moves")}: ${moves}`;
      } else {
        status.textContent = t("Pair found!");
      }
    } else {
      status.textContent = t("Not a pair");
      timer = setTimeout(hideMismatch, MISMATCH_MS);
    }
    renderStats();
  }

  function moveFocus(i) {
    const prev = focusIndex;
    focusIndex = Math.max(0, Math.min(cards.length - 1, i));
    cards[prev].button.tabIndex = -1;
    cards[focusIndex].button.tabIndex = 0;
    cards[focusIndex].button.focus();
  }

  function start() {
    clearTimeout(timer);
    timer = null;
    const chosen = shuffle(SYMBOLS).slice(0, (SIZE * SIZE) / 2);
    const hadFocus = grid.contains(document.activeElement);
    grid.textContent = "";
    cards = shuffle([...chosen, ...chosen]).map((symbol) => {
      const button = el("button", "memory-card");
      button.type = "button";
      grid.append(button);
      return { symbol, up: false, matched: false, button };
    });
    open = [];
    moves = 0;
    pairs = 0;
    focusIndex = 0;
    cards.forEach((_, i) => renderCard(i));
    renderStats();
    status.textContent = "";
    if (hadFocus) cards[0].button.focus();
  }

  function indexOf(target) {
    return cards.findIndex((c) => c.button === target || c.button.contains(target));
  }

  function onClick(event) {
    const i = indexOf(event.target);
    if (i < 0) return;
    if (i !== focusIndex) {
      cards[focusIndex].button.tabIndex = -1;
      focusIndex = i;
      cards[i].button.tabIndex = 0;
    }
    turn(i);
  }

  function onKey(event) {
    const i = indexOf(event.target);
    if (i < 0) return;
    const row = Math.floor(i / SIZE);
    let next = null;
    switch (event.key) {
      case "ArrowRight": next = i + 1; break;
      case "ArrowLeft": next = i - 1; break;
      case "ArrowDown": next = i + SIZE < cards.length ? i + SIZE : i; break;
      case "ArrowUp": next = i - SIZE >= 0 ? i - SIZE : i; break;
      case "Home": next = event.ctrlKey ? 0 : row * SIZE; break;
      case "End": next = event.ctrlKey ? cards.length - 1 : row * SIZE + SIZE - 1; break;
      default: return;
    }
    event.preventDefault();
    moveFocus(next);
  }

  grid.addEventListener("click", onClick);
  grid.addEventListener("keydown", onKey);
  newGame.addEventListener("click", start);
  start();

  return {
    destroy() {
      clearTimeout(timer);
      grid.removeEventListener("click", onClick);
      grid.removeEventListener("keydown", onKey);
      newGame.removeEventListener("click", start);
      root.remove();
    },
  };
}
