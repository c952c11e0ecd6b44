// 2048: slide the tiles, equal tiles merge; reach 2048. Runs entirely in the page (no network).
//
//   const game = mount(container, { t });   // t("English key") -> display text
//   game.destroy();
//
// Keyboard: focus the board (Tab or click) or an arrow button, then arrow keys or W/A/S/D. Touch and mouse: swipe
// or drag on the board, or use the arrow buttons under it. Every word shown goes through t().

const SIZE = 4;
const GOAL = 2048;
const SWIPE_MIN_PX = 24;
let best = 0; // best score while the page is open; nothing is stored

const DIRS = {
  up: { dr: -1, dc: 0 },
  down: { dr: 1, dc: 0 },
  left: { dr: 0, dc: -1 },
  right: { dr: 0, dc: 1 },
};
const KEYS = {
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right",
  w: "up", s: "down", a: "left", d: "right", W: "up", S: "down", A: "left", D: "right",
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Slides one line towards index 0; returns {line, gained}. Exported for tests. */
export function slideLine(line) {
  const tiles = line.filter((v) => v !== 0);
  const out = [];
  let gained = 0;
  for (let i = 0; i < tiles.length; i++) {
    if (i + 1 < tiles.length && tiles[i] === tiles[i + 1]) {
      out.push(tiles[i] * 2);
      gained += tiles[i] * 2;
      i++;
    } else {
      out.push(tiles[i]);
    }
  }
  while (out.length < line.length) out.push(0);
  return { line: out, gained };
}

/** Applies a move to a SIZE x SIZE grid (array of rows); returns {grid, gained, moved}. */
export function move(grid, dir) {
  const n = grid.length;
  const next = grid.map((row) => row.slice());
  let gained = 0;
  let moved = false;
  for (let k = 0; k < n; k++) {
    // Coordinates of line k, listed from the edge the tiles slide towards.
    const coords = [];
    for (let j = 0; j < n; j++) {
      if (dir === "left") coords.push([k, j]);
      else if (dir === "right") coords.push([k, n - 1 - j]);
      else if (dir === "up") coords.push([j, k]);
      else coords.push([n - 1 - j, k]);
    }
    const before = coords.map(([r, c]) => grid[r][c]);
    const result = slideLine(before);
    gained += result.gained;
    coords.forEach(([r, c], j) => {
      next[r][c] = result.line[j];
      if (result.line[j] !== before[j]) moved = true;
    });
  }
  return { grid: next, gained, moved };
}

function canMove(grid) {
  return Object.keys(DIRS).some((dir) => move(grid, dir).moved);
}

export function mount(container, { t = (key) => key } = {}) {
  const root = el("div", "game g2048");

  const bar = el("div", "game-bar");
  const stats = el("div", "game-stats");
  const scoreOut = el("span");
  const bestOut = el("span");
  stats.append(scoreOut, bestOut);
  const newGame = el("button", "btn btn-secondary", t("New game"));
  newGame.type = "button";
  bar.append(stats, newGame);

  const board = el("div", "g2048-board");
  board.tabIndex = 0;
  board.setAttribute("role", "group");
  board.setAttribute("aria-label", t("Game board"));
  const cells = [];
  for (let i = 0; i < SIZE * SIZE; i++) {
    const cell = el("div", "g2048-cell");
    cell.setAttribute("role", "img");
    board.append(cell);
    cells.push(cell);
  }

  const pad = el("div", "g2048-pad");
  for (const [dir, arrow, key] of [
    ["up", "↑", "Up"], ["left", "←", "Left"], ["down", "↓", "Down"], ["right", "→", "Right"],
  ]) {
    const b = el("button", `btn btn-secondary ${dir}`, arrow);
    b.type = "button";
    b.dataset.dir = dir;
    b.setAttribute("aria-label", t(key));
    pad.append(b);
  }

  const status = el("p", "game-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const help = el("p", "game-help",
    t("Use the arrow keys or swipe to move the tiles. Equal tiles merge."));
  help.id = `g2048-help-${Math.random().toString(36).slice(2, 8)}`;
  board.setAttribute("aria-describedby", help.id);

  root.append(bar, board, pad, status, help);
  container.append(root);

  let grid = [];
  let score = 0;
  let won = false;
  let over = false;
  let fresh = -1; // index of the newest tile, for its pop-in animation

  function addTile() {
    const empty = [];
    grid.forEach((row, r) => row.forEach((v, c) => { if (!v) empty.push([r, c]); }));
    if (!empty.length) return;
    const [r, c] = empty[Math.floor(Math.random() * empty.length)];
    grid[r][c] = Math.random() < 0.9 ? 2 : 4;
    fresh = r * SIZE + c;
  }

  function render() {
    grid.forEach((row, r) => row.forEach((v, c) => {
      const i = r * SIZE + c;
      const cell = cells[i];
      cell.textContent = v ? String(v) : "";
      cell.className = "g2048-cell" + (v > 512 ? " big" : "") + (i === fresh ? " new" : "");
      if (v) cell.dataset.v = String(v);
      else delete cell.dataset.v;
      cell.setAttribute("aria-label",
        `${t("Row")} ${r + 1}, ${t("column")} ${c + 1}: ${v ? v : t("empty")}`);
    }));
    best = Math.max(best, score);
    scoreOut.textContent = `${t("Score")}: ${score}`;
    bestOut.textContent = `${t("Best")}: ${best}`;
  }

  function start() {
    grid = Array.from({ length: SIZE }, () => Array(SIZE).fill(0));
    score = 0;
    won = false;
    over = false;
    addTile();
    addTile();
    status.textContent = "";
    render();
  }

  function play(dir) {
    if (over || !DIRS[dir]) return;
    const result = move(grid, dir);
    if (!result.moved) return;
    grid = result.grid;
    score += result.gained;
    addTile();
    if (!won && grid.some((row) => row.includes(GOAL))) {
      won = true;
      status.textContent = `${t("You won!")} ${t("Keep going, or start a new game.")}`;
    } else if (!canMove(grid)) {
      over = true;
      status.textContent = `${t("Game over")} ${t("Score")}: ${score}`;
    } else if (status.textContent && !won) {
      status.textContent = "";
    }
    render();
  }

  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const dir = KEYS[event.key];
    if (!dir) return;
    event.preventDefault();
    play(dir);
  }

  let startPoint = null;
  function onPointerDown(event) {
    if (!event.isPrimary || (event.pointerType === "mouse" && event.button !== 0)) return;
    startPoint = { x: event.clientX, y: event.clientY, id: event.pointerId };
    board.focus({ preventScroll: true });
    if (board.setPointerCapture) {
      try { board.setPointerCapture(event.pointerId); } catch { /* not capturable */ }
    }
  }
  function onPointerUp(event) {
    if (!startPoint || event.pointerId !== startPoint.id) return;
    const dx = event.clientX - startPoint.x;
    const dy = event.clientY - startPoint.y;
    startPoint = null;
    if (Math.max(Math.abs(dx), Math.abs(dy)) < SWIPE_MIN_PX) return;
    if (Math.abs(dx) > Math.abs(dy)) play(dx > 0 ? "right" : "left");
    else play(dy > 0 ? "down" : "up");
  }
  function onPointerCancel() {
    startPoint = null;
  }
  function onPadClick(event) {
    const b = event.target.closest("button[data-dir]");
    if (b) play(b.dataset.dir);
  }

  root.addEventListener("keydown", onKey);
  board.addEventListener("pointerdown", onPointerDown);
  board.addEventListener("pointerup", onPointerUp);
  board.addEventListener("pointercancel", onPointerCancel);
  pad.addEventListener("click", onPadClick);
  newGame.addEventListener("click", start);
  start();

  return {
    destroy() {
      root.removeEventListener("keydown", onKey);
      board.removeEventListener("pointerdown", onPointerDown);
      board.removeEventListener("pointerup", onPointerUp);
      board.removeEventListener("pointercancel", onPointerCancel);
      pad.removeEventListener("click", onPadClick);
      newGame.removeEventListener("click", start);
      root.remove();
    },
  };
}
