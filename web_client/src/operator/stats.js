// The Statistics view: the funders' follow-up for a month, quarter, year or
// range of months. Pictures first (contacts per month, then one bar chart per
// dimension for the whole period), the numbers behind them on request, a CSV
// download, a printable summary and the hand-entered counts. Every figure
// comes from GET /staff/api/stats, already suppressed by the server ("<5",
// ".."): this page never sees, and so can never show, a small count.
import { h, mount } from "../lib/dom.js";
import { raw, t } from "../lib/i18n.js";
import { jsonFetch } from "../staff/session.js";
import { categoryBars, isHidden, timeBars } from "./stats_charts.js";
import { manualForm } from "./stats_form.js";

const MODES = ["month", "quarter", "year", "range"];
// The order dimensions are shown in; the server lists the same.
const DIMENSIONS = ["contacts", "contact_kind", "gender", "age_band", "municipality", "district", "topic", "reason", "language", "workplace_municipality", "profession", "referral", "referral_partner", "outreach", "channel", "unmet_closed", "unmet_left"];
// Dimension -> the youth catalog's code list that labels its values.
const CODE_LISTS = { gender: "genders", age_band: "age_bands", topic: "topics", reason: "topics", language: "languages", profession: "professions", district: "districts" };

function thisMonth() {
  const d = new Date();
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

const state = {
  mode: "month",
  month: thisMonth(),
  year: Number(thisMonth().slice(0, 4)),
  quarter: Math.floor((Number(thisMonth().slice(5)) - 1) / 3) + 1,
  from: thisMonth(),
  to: thisMonth(),
  report: null,
  error: "",
  loading: false,
  showNumbers: false,
};
let region = null;
// The manual-entry form is built once per render (not per redraw), so what
// was typed and the "saved" message survive the report reloading under it.
let form = null;

/** The range the picker names: [from, to] as 'YYYY-MM'. */
export function periodRange(s) {
  const pad = (m) => String(m).padStart(2, "0");
  if (s.mode === "quarter") return [`${s.year}-${pad(s.quarter * 3 - 2)}`, `${s.year}-${pad(s.quarter * 3)}`];
  if (s.mode === "year") return [`${s.year}-01`, `${s.year}-12`];
  if (s.mode === "range") return [s.from, s.to];
  return [s.month, s.month];
}

export function valueLabel(dimension, value) {
  const list = CODE_LISTS[dimension];
  const own = list ? raw(`codes.${list}.${value}`) : undefined;
  if (typeof own === "string") return own;
  const shared = raw(`operator.stats.values.${value}`);
  return typeof shared === "string" ? shared : value;
}

function dimensionLabel(dimension) {
  const label = raw(`operator.stats.dim.${dimension}`);
  return typeof label === "string" ? label : dimension;
}

async function load() {
  const [from, to] = periodRange(state);
  state.loading = true;
  state.error = "";
  draw();
  const q = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  const { body } = await jsonFetch(`/staff/api/stats?${q}`, { method: "GET", headers: { Accept: "application/json" } });
  state.loading = false;
  if (body.ok) {
    state.report = body;
  } else {
    state.report = null;
    state.error = String(body.error || "");
  }
  draw();
}

function picker() {
  const mode = h(
    "select",
    { id: "stats-mode", onchange: (e) => ((state.mode = e.target.value), draw()) },
    MODES.map((m) => h("option", { value: m, selected: m === state.mode, text: t(`operator.stats.mode_${m}`) })),
  );
  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id, text: label }), input);
  const monthInput = (id, key) => h("input", { id, type: "month", value: state[key], onchange: (e) => (state[key] = e.target.value) });
  const yearInput = h("input", { id: "stats-year", type: "number", min: "2000", max: "2999", value: String(state.year), onchange: (e) => (state.year = Number(e.target.value)) });
  const fields = [field("stats-mode", t("operator.stats.period"), mode)];
  if (state.mode === "month") fields.push(field("stats-month", t("operator.stats.month"), monthInput("stats-month", "month")));
  if (state.mode === "quarter" || state.mode === "year") fields.push(field("stats-year", t("operator.stats.year"), yearInput));
  if (state.mode === "quarter") {
    const q = h(
      "select",
      { id: "stats-quarter", onchange: (e) => (state.quarter = Number(e.target.value)) },
      [1, 2, 3, 4].map((n) => h("option", { value: String(n), selected: n === state.quarter, text: t("operator.stats.quarter_n", { n: String(n) }) })),
    );
    fields.push(field("stats-quarter", t("operator.stats.quarter"), q));
  }
  if (state.mode === "range") {
    fields.push(field("stats-from", t("operator.stats.from"), monthInput("stats-from", "from")));
    fields.push(field("stats-to", t("operator.stats.to"), monthInput("stats-to", "to")));
  }
  return h(
    "form",
    { id: "stats-picker", class: "stats-picker no-print", onsubmit: (e) => (e.preventDefault(), load()) },
    fields,
    h("button", { type: "submit", id: "stats-show", class: "primary", disabled: state.loading, text: t("operator.stats.show") }),
  );
}

/** rows of the report as {period: {dimension: [{value, count}]}} */
function byPeriod(report) {
  const out = {};
  for (const r of report.rows || []) {
    if (!r || typeof r !== "object") continue;
    const p = (out[r.period] ||= {});
    (p[r.dimension] ||= []).push({ value: String(r.value), count: r.count });
  }
  return out;
}

function sum(items) {
  let total = 0;
  for (const i of items || []) {
    if (isHidden(i.count)) return null;
    total += i.count;
  }
  return total;
}

function pictures(report, grouped, whole) {
  const months = (report.periods || []).filter((p) => p !== report.total_period);
  const parts = [];
  if (months.length > 1) {
    const points = months.map((m) => {
      const items = (grouped[m] || {}).contacts || [];
      const total = sum(items);
      // A month with a hidden cell shows no sum. Its marker is the cell's own
      // when it is the only one; otherwise "..": youth ".." (protecting a
      // small professional count) is no "<5" month.
      const hidden = items.length === 1 ? items[0].count : "..";
      return { label: m, count: total === null ? hidden : total };
    });
    const summary = t("operator.stats.chart_time_summary", { from: report.from, to: report.to });
    parts.push(h("h3", { id: "stats-time-h", text: t("operator.stats.chart_time") }), timeBars("stats-time-chart", points, summary));
  }
  const dims = Object.keys(whole).sort((a, b) => rank(a) - rank(b));
  for (const dim of dims) {
    const items = whole[dim].map((i) => ({ value: i.value, label: valueLabel(dim, i.value), count: i.count }));
    const summary = t("operator.stats.chart_dim_summary", { dimension: dimensionLabel(dim), period: periodLabel(report) });
    parts.push(h("section", { class: "stats-dim", "data-dimension": dim }, h("h3", { text: dimensionLabel(dim) }), categoryBars(`stats-chart-${dim}`, items, summary)));
  }
  return parts;
}

function rank(dim) {
  const i = DIMENSIONS.indexOf(dim);
  return i < 0 ? DIMENSIONS.length : i;
}

function periodLabel(report) {
  return report.from === report.to ? report.from : `${report.from} – ${report.to}`;
}

function numbers(report, grouped) {
  const periods = report.periods || [];
  const dims = [...new Set(periods.flatMap((p) => Object.keys(grouped[p] || {})))].sort((a, b) => rank(a) - rank(b));
  return dims.map((dim) => {
    const values = [...new Set(periods.flatMap((p) => ((grouped[p] || {})[dim] || []).map((i) => i.value)))].sort();
    const cell = (p, v) => {
      const found = ((grouped[p] || {})[dim] || []).find((i) => i.value === v);
      return found ? String(found.count) : "0";
    };
    const headId = `stats-table-${dim}-h`;
    return h(
      "section",
      { class: "stats-table" },
      h("h3", { id: headId, text: dimensionLabel(dim) }),
      h(
        "table",
        { "aria-labelledby": headId, "data-dimension": dim },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: t("operator.stats.value") }), periods.map((p) => h("th", { scope: "col", text: p === report.total_period ? t("operator.stats.total") : p })))),
        h("tbody", {}, values.map((v) => h("tr", {}, h("th", { scope: "row", text: valueLabel(dim, v) }), periods.map((p) => h("td", { "data-period": p, text: cell(p, v) }))))),
      ),
    );
  });
}

function draw() {
  if (!region) return;
  const report = state.report;
  const [from, to] = periodRange(state);
  const body = [];
  if (state.loading) body.push(h("p", { role: "status", text: t("operator.stats.loading") }));
  if (state.error) body.push(h("p", { class: "error", role: "alert", id: "stats-error", text: t("operator.stats.error", { error: state.error }) }));
  if (report) {
    const grouped = byPeriod(report);
    const wholeKey = report.total_period || report.from;
    const whole = grouped[wholeKey] || {};
    const csv = `/staff/api/stats.csv?from=${encodeURIComponent(report.from)}&to=${encodeURIComponent(report.to)}`;
    body.push(
      h("h2", { id: "stats-summary-h", class: "print-title", text: t("operator.stats.summary_heading", { period: periodLabel(report) }) }),
      h("p", { class: "hint", id: "stats-rule", text: t("operator.stats.rule", { n: String(report.suppress_below), m: String(report.suppress_below - 1) }) }),
      h(
        "div",
        { class: "stats-actions no-print" },
        h("button", {
          type: "button",
          id: "stats-numbers-toggle",
          class: "secondary",
          "aria-pressed": state.showNumbers ? "true" : "false",
          "aria-controls": "stats-numbers",
          onclick: () => ((state.showNumbers = !state.showNumbers), draw()),
          text: t(state.showNumbers ? "operator.stats.hide_numbers" : "operator.stats.show_numbers"),
        }),
        h("a", { id: "stats-csv", class: "button secondary", href: csv, download: `statistics-${report.from}-${report.to}.csv`, text: t("operator.stats.csv") }),
        h("button", { type: "button", id: "stats-print", class: "secondary", onclick: () => window.print(), text: t("operator.stats.print") }),
      ),
      (report.rows || []).length ? pictures(report, grouped, whole) : h("p", { id: "stats-empty", text: t("operator.stats.empty") }),
      h("div", { id: "stats-numbers", class: "stats-numbers", hidden: !state.showNumbers }, numbers(report, grouped)),
    );
  }
  form ||= manualForm(from === to ? from : to, () => load());
  body.push(form);
  mount(region, h("h2", { class: "no-print", text: t("operator.stats.heading") }), picker(), h("div", { id: "stats-body", "aria-busy": state.loading ? "true" : "false" }, body));
}

export const statsView = {
  id: "stats",
  labelKey: "operator.nav.stats",
  render(target) {
    region = target;
    form = null; // texts in the current language
    draw();
    if (!state.report && !state.loading && !state.error) load();
  },
  leave() {
    region = null;
  },
};
