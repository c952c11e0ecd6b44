// The room's whiteboard: pen strokes in a few colours, an eraser and "clear", drawn on a <canvas>
// with pointer events (mouse, pen or finger) and kept in the shared document (doc.js).
//
// Shape of the document (the same for every client, e.g. a kiosk with pycrdt):
//   strokes: Y.Array of Y.Map {
//     mode: "pen" | "erase",          erase removes ink under it
//     color: "#rrggbb",               pen colour (ignored for erase)
//     width: number,                  line width in board units
//     points: Y.Array of numbers,     x0, y0, x1, y1, ... in board units
//   }
// The board is BOARD_W × BOARD_H units (4:3), scaled to the canvas, so a drawing looks the same
// on every screen. A stroke is in the document from the first touch and grows while it is drawn,
// so the other side sees it appear live. Clear deletes every stroke: a Yjs operation like any
// other, so it clears both sides (a stroke drawn at the same moment survives).

import { Y } from "./doc.js";

export const BOARD_W = 1600;
export const BOARD_H = 1200;
const PEN_WIDTH = 6;
const ERASER_WIDTH = 48;
const MIN_STEP = 3; // board units between stored points: fewer points, same line
const COLOR = /^#[0-9a-f]{6}$/i;

/**
 * canvas: the <canvas>; toolbar: an element with buttons [data-tool="pen"][data-color],
 * [data-tool="erase"] and [data-action="clear"]. The canvas's data-strokes attribute holds the
 * number of strokes (for tests and the page).
 */
export function mountWhiteboard({ shared, canvas, toolbar }) {
  const { doc, strokes } = shared;
  const LOCAL = Symbol("whiteboard");
  const ctx = canvas.getContext("2d");
  let tool = { mode: "pen", color: "#1b1d21" };
  let enabled = true;
  let drawing = null; // {pointerId, points (Y.Array), last: [x, y], buffer: [], flushQueued}
  let frame = 0;

  // ---- drawing the document -----------------------------------------------------------------

  function scheduleRender() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    scheduleRender();
  }

  function drawStroke(stroke, scale) {
    if (!(stroke instanceof Y.Map)) return;
    const points = stroke.get("points");
    if (!(points instanceof Y.Array) || points.length < 2) return;
    const xy = points.toArray();
    const mode = stroke.get("mode") === "erase" ? "erase" : "pen";
    const color = String(stroke.get("color") || "");
    const width = Math.min(200, Math.max(1, Number(stroke.get("width")) || PEN_WIDTH));
    ctx.globalCompositeOperation = mode === "erase" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = mode === "erase" || !COLOR.test(color) ? "#000" : color;
    ctx.lineWidth = width * scale;
    ctx.beginPath();
    ctx.moveTo(xy[0] * scale, xy[1] * scale);
    if (xy.length < 4) {
      ctx.arc(xy[0] * scale, xy[1] * scale, (width * scale) / 2, 0, 2 * Math.PI); // a dot
      ctx.fill();
      return;
    }
    for (let i = 2; i + 1 < xy.length; i += 2) ctx.lineTo(xy[i] * scale, xy[i + 1] * scale);
    ctx.stroke();
  }

  function render() {
    frame = 0;
    const scale = canvas.width / BOARD_W;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    strokes.forEach((stroke) => drawStroke(stroke, scale));
    ctx.globalCompositeOperation = "source-over";
    canvas.dataset.strokes = String(strokes.length);
  }

  strokes.observeDeep(scheduleRender);
  new ResizeObserver(resize).observe(canvas);

  // ---- pointer input --------------------------------------------------------------------------

  function boardPoint(event) {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * BOARD_W;
    const y = ((event.clientY - rect.top) / rect.height) * BOARD_H;
    return [
      Math.round(Math.min(BOARD_W, Math.max(0, x))),
      Math.round(Math.min(BOARD_H, Math.max(0, y))),
    ];
  }

  function flushPoints() {
    if (!drawing || drawing.buffer.length === 0) return;
    const { points, buffer } = drawing;
    drawing.buffer = [];
    doc.transact(() => points.push(buffer), LOCAL);
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!enabled || drawing || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = boardPoint(event);
    const stroke = new Y.Map();
    const points = new Y.Array();
    doc.transact(() => {
      stroke.set("mode", tool.mode);
      stroke.set("color", tool.mode === "erase" ? "#ffffff" : tool.color);
      stroke.set("width", tool.mode === "erase" ? ERASER_WIDTH : PEN_WIDTH);
      stroke.set("points", points);
      points.push([x, y]);
      strokes.push([stroke]);
    }, LOCAL);
    drawing = { pointerId: event.pointerId, points, last: [x, y], buffer: [], flushQueued: false };
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drawing || event.pointerId !== drawing.pointerId) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const [x, y] = boardPoint(e);
      const [lx, ly] = drawing.last;
      if (Math.abs(x - lx) + Math.abs(y - ly) < MIN_STEP) continue;
      drawing.buffer.push(x, y);
      drawing.last = [x, y];
    }
    // One document update per frame, not per mouse event.
    if (drawing.buffer.length && !drawing.flushQueued) {
      drawing.flushQueued = true;
      requestAnimationFrame(() => {
        if (drawing) drawing.flushQueued = false;
        flushPoints();
      });
    }
  });

  function endStroke(event) {
    if (!drawing || event.pointerId !== drawing.pointerId) return;
    flushPoints();
    drawing = null;
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);

  // ---- tools ----------------------------------------------------------------------------------

  function selectTool(button) {
    tool = { mode: button.dataset.tool, color: button.dataset.color || tool.color };
    for (const b of toolbar.querySelectorAll("[data-tool]")) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    }
    canvas.dataset.tool = tool.mode;
  }

  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || !enabled) return;
    if (button.dataset.tool) selectTool(button);
    if (button.dataset.action === "clear" && strokes.length) {
      doc.transact(() => strokes.delete(0, strokes.length), LOCAL);
    }
  });
  const first = toolbar.querySelector("[data-tool]");
  if (first) selectTool(first);

  resize();

  return {
    /** Read-only after the session ended. */
    setEnabled(value) {
      enabled = value;
      drawing = null;
      for (const b of toolbar.querySelectorAll("button")) b.disabled = !value;
      canvas.dataset.enabled = value ? "true" : "false";
    },
  };
}
