// Hand-drawn SVG bar charts for the Statistics view: totals over time
// (vertical bars, one per month) and one dimension's categories (horizontal
// bars). Geometry goes in attributes (the CSP forbids inline styles); colours
// come from the stylesheet. A hidden count ("<5", "..") is drawn as a short
// hatched stub with its label, never as a height that would hint at it.
import { h } from "../lib/dom.js";

const fmt = (n) => (Math.round(n * 10) / 10).toString();

function niceCeil(v) {
  if (v <= 5) return Math.max(1, Math.ceil(v));
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}

/** True for a count the report hides ("<5" or ".."). */
export function isHidden(count) {
  return typeof count !== "number";
}

/**
 * Vertical bars over time. points: [{label, count}], count a number or a
 * hidden marker. Returns an <svg role="img"> described by `summary`.
 */
export function timeBars(id, points, summary) {
  const W = 600;
  const H = 200;
  const PAD = { left: 40, right: 10, top: 14, bottom: 30 };
  const max = Math.max(1, ...points.map((p) => (isHidden(p.count) ? 0 : p.count)));
  const top = niceCeil(max);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const slot = innerW / Math.max(1, points.length);
  const barW = Math.max(4, Math.min(48, slot * 0.7));
  const y = (v) => PAD.top + (1 - v / top) * innerH;
  const children = [h("svg:title", { text: summary })];
  for (const v of [0, top / 2, top]) {
    children.push(h("svg:line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: fmt(y(v)), y2: fmt(y(v)) }));
    children.push(h("svg:text", { x: PAD.left - 6, y: fmt(y(v) + 4), "text-anchor": "end", text: fmt(v) }));
  }
  const labelEvery = Math.ceil(points.length / 12);
  points.forEach((p, i) => {
    const cx = PAD.left + slot * (i + 0.5);
    const hidden = isHidden(p.count);
    const height = hidden ? 6 : (p.count / top) * innerH;
    children.push(
      h("svg:rect", {
        class: hidden ? "bar hidden-count" : "bar",
        x: fmt(cx - barW / 2),
        y: fmt(y(0) - height),
        width: fmt(barW),
        height: fmt(Math.max(0, height)),
        "data-label": p.label,
        "data-count": String(p.count),
      }),
    );
    if (hidden || points.length <= 12) {
      children.push(h("svg:text", { class: "bar-value", x: fmt(cx), y: fmt(y(0) - height - 4), "text-anchor": "middle", text: String(p.count) }));
    }
    if (i % labelEvery === 0) {
      children.push(h("svg:text", { x: fmt(cx), y: H - 10, "text-anchor": "middle", text: p.label }));
    }
  });
  children.push(h("svg:line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: fmt(y(0)), y2: fmt(y(0)) }));
  return h("svg:svg", { class: "chart bars", id, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, "data-bars": String(points.length) }, children);
}

/**
 * Horizontal bars, one per category. items: [{value, label, count}] in display
 * order (value: the code, label: its text).
 */
export function categoryBars(id, items, summary) {
  const W = 600;
  const ROW = 24;
  const LABEL_W = 200;
  const VALUE_W = 48;
  const H = Math.max(1, items.length) * ROW + 8;
  const max = Math.max(1, ...items.map((p) => (isHidden(p.count) ? 0 : p.count)));
  const innerW = W - LABEL_W - VALUE_W - 8;
  const children = [h("svg:title", { text: summary })];
  items.forEach((p, i) => {
    const top = 4 + i * ROW;
    const hidden = isHidden(p.count);
    const width = hidden ? 6 : (p.count / max) * innerW;
    children.push(h("svg:text", { x: LABEL_W - 8, y: fmt(top + ROW / 2 + 4), "text-anchor": "end", text: truncate(p.label, 28) }));
    children.push(
      h("svg:rect", {
        class: hidden ? "bar hidden-count" : "bar",
        x: LABEL_W,
        y: fmt(top + 4),
        width: fmt(Math.max(0, width)),
        height: ROW - 8,
        "data-label": p.label,
        "data-value": p.value,
        "data-count": String(p.count),
      }),
    );
    children.push(h("svg:text", { class: "bar-value", x: fmt(LABEL_W + width + 6), y: fmt(top + ROW / 2 + 4), text: String(p.count) }));
  });
  return h("svg:svg", { class: "chart bars categories", id, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, "data-bars": String(items.length) }, children);
}

function truncate(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}
