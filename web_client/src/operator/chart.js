// A small hand-made SVG line chart of queue length over time. One line does
// not need a chart library. Geometry goes in attributes (the CSP forbids
// inline styles); colours come from the stylesheet.
import { formatClock, h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

const W = 600;
const H = 180;
const PAD = { left: 36, right: 12, top: 12, bottom: 26 };
const HOURS = 6; // protocol.md: history covers the last 6 hours

export function queueChart(history, nowMs, labelledBy) {
  const end = nowMs;
  const start = end - HOURS * 3600 * 1000;
  const points = history
    .filter((p) => p && Number.isFinite(p.at) && Number.isFinite(p.queue_length) && p.at >= start && p.at <= end)
    .sort((a, b) => a.at - b.at);
  const max = Math.max(1, ...points.map((p) => p.queue_length));
  const top = niceCeil(max);
  const x = (at) => PAD.left + ((at - start) / (end - start)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v / top) * (H - PAD.top - PAD.bottom);
  const fmt = (n) => (Math.round(n * 10) / 10).toString();
  const line = points.map((p) => `${fmt(x(p.at))},${fmt(y(p.queue_length))}`).join(" ");
  const baseY = fmt(y(0));
  const area = points.length ? `M${fmt(x(points[0].at))},${baseY} L${line.replace(/ /g, " L")} L${fmt(x(points[points.length - 1].at))},${baseY} Z` : "";
  const now = points.length ? points[points.length - 1].queue_length : 0;
  const summary = t("operator.ops.chart_summary", { max: Math.max(0, ...points.map((p) => p.queue_length)), hours: HOURS, now });

  const children = [h("svg:title", { text: summary })];
  const ticks = top >= 2 && top % 2 === 0 ? [0, top / 2, top] : [0, top];
  for (const v of ticks) {
    children.push(h("svg:line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: fmt(y(v)), y2: fmt(y(v)) }));
    children.push(h("svg:text", { x: PAD.left - 6, y: fmt(y(v) + 4), "text-anchor": "end", text: fmt(v) }));
  }
  for (let i = 0; i <= HOURS; i++) {
    const at = start + i * 3600 * 1000;
    children.push(h("svg:text", { x: fmt(x(at)), y: H - 8, "text-anchor": i === 0 ? "start" : i === HOURS ? "end" : "middle", text: formatClock(at) }));
  }
  children.push(h("svg:line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: baseY, y2: baseY }));
  if (points.length > 1) children.push(h("svg:path", { class: "area", d: area }));
  if (points.length) {
    const last = points[points.length - 1];
    children.push(h("svg:polyline", { class: "line", points: line }));
    children.push(h("svg:circle", { class: "dot", cx: fmt(x(last.at)), cy: fmt(y(last.queue_length)), r: 3.5 }));
  }
  return h(
    "svg:svg",
    { class: "chart", id: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": labelledBy, "aria-describedby": "chart-desc", "data-points": String(points.length) },
    children,
    h("svg:desc", { id: "chart-desc", text: summary }),
  );
}

function niceCeil(v) {
  if (v <= 5) return Math.max(1, Math.ceil(v));
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * mag >= v) return m * mag;
  return 10 * mag;
}
