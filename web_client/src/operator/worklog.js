// The Staff work view: the audit log for following up interventions —
// metadata only (who did what, to which conversation pseudonym, when; never
// what was said). Per-member summaries of a period, the entries filtered by
// staff member, action and days (paged, newest first), CSV files of both,
// and whether the chain verifies (GET /staff/api/worklog…, operators and
// admins only; docs/design/audit.md, "Staff work").
import { h, mount } from "../lib/dom.js";
import { raw, t } from "../lib/i18n.js";
import { kindName } from "../lib/partner-kinds.js";
import { jsonFetch } from "../staff/session.js";

function day(offsetDays) {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}

const state = {
  from: day(-29),
  to: day(0),
  actor: "",
  action: "",
  page: 1,
  list: null,
  summary: null,
  chain: null,
  error: "",
  loading: false,
};
let region = null;

function actionLabel(action) {
  const label = raw(`operator.worklog.actions.${action}`);
  return typeof label === "string" ? label : action;
}

function query(extra) {
  const q = new URLSearchParams({ from: state.from, to: state.to, ...extra });
  return q.toString();
}

async function getJson(url) {
  const { body } = await jsonFetch(url, { method: "GET", headers: { Accept: "application/json" } });
  return body;
}

async function loadEntries() {
  const body = await getJson(`/staff/api/worklog?${query({ actor: state.actor, action: state.action, page: String(state.page) })}`);
  if (body.ok) state.list = body;
  else state.error = String(body.error || "");
}

async function load() {
  state.loading = true;
  state.error = "";
  draw();
  const [summary, chain] = await Promise.all([getJson(`/staff/api/worklog/summary?${query({})}`), getJson("/staff/api/worklog/verify"), loadEntries()]);
  state.loading = false;
  if (summary.ok) state.summary = summary;
  else state.error = String(summary.error || "");
  state.chain = chain.ok ? chain : null;
  if (state.error) {
    state.summary = null;
    state.list = null;
  }
  draw();
}

async function turnPage(page) {
  state.page = page;
  state.loading = true;
  draw();
  await loadEntries();
  state.loading = false;
  draw();
}

function chainLine() {
  const c = state.chain;
  if (!c) return null;
  let text;
  let cls = "chain-status";
  if (c.status === "ok") {
    text = t("operator.worklog.chain_ok", { n: String(c.entries) });
    if (c.pruned) text += " " + t("operator.worklog.chain_pruned", { n: String(c.pruned) });
    cls += " ok";
  } else if (c.status === "unsealed") {
    text = t("operator.worklog.chain_unsealed");
    cls += " error";
  } else {
    text = t("operator.worklog.chain_broken", { seq: String(c.seq) });
    cls += " error";
  }
  return h("p", { id: "worklog-chain", class: cls, role: "status", text });
}

function filters() {
  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id, text: label }), input);
  const dateInput = (id, key) => h("input", { id, type: "date", required: true, value: state[key], onchange: (e) => (state[key] = e.target.value) });
  const choices = (id, key, all, values, label) =>
    h(
      "select",
      { id, onchange: (e) => (state[key] = e.target.value) },
      h("option", { value: "", text: all }),
      values.map((v) => h("option", { value: v, selected: v === state[key], text: label(v) })),
    );
  // The choices are the members and actions the period holds; the one chosen
  // stays even when a new period no longer holds it.
  const actors = new Set(state.list ? state.list.actors : []);
  const actions = new Set(state.list ? state.list.actions : []);
  if (state.actor) actors.add(state.actor);
  if (state.action) actions.add(state.action);
  return h(
    "form",
    {
      id: "worklog-filters",
      class: "stats-picker",
      onsubmit: (e) => {
        e.preventDefault();
        state.page = 1;
        load();
      },
    },
    field("worklog-from", t("operator.worklog.from"), dateInput("worklog-from", "from")),
    field("worklog-to", t("operator.worklog.to"), dateInput("worklog-to", "to")),
    field("worklog-actor", t("operator.worklog.staff"), choices("worklog-actor", "actor", t("operator.worklog.all_staff"), [...actors].sort(), (v) => v)),
    field("worklog-action", t("operator.worklog.action"), choices("worklog-action", "action", t("operator.worklog.all_actions"), [...actions].sort(), actionLabel)),
    h("button", { type: "submit", id: "worklog-show", class: "primary", disabled: state.loading, text: t("operator.worklog.show") }),
  );
}

function table(id, caption, headers, rows) {
  return h(
    "table",
    { id, class: "worklog-table" },
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows),
  );
}

function referralText(referrals) {
  const parts = Object.entries(referrals || {}).map(([kind, n]) => `${kindName(kind)} ${n}`);
  return parts.join(", ");
}

function summarySection() {
  const s = state.summary;
  if (!s) return null;
  const csv = `/staff/api/worklog/summary.csv?${query({})}`;
  const rows = (s.rows || []).map((r) =>
    h(
      "tr",
      { "data-actor": r.actor },
      h("th", { scope: "row", text: r.actor }),
      h("td", { text: String(r.duty_hours) }),
      h("td", { text: String(r.claims) }),
      h("td", { text: `${r.transfers_offered} / ${r.transfers_accepted}` }),
      h("td", { text: String(r.referrals_total) + (r.referrals_total ? ` (${referralText(r.referrals)})` : "") }),
      h("td", { text: String(r.invites) }),
      h("td", { text: String(r.return_codes) }),
    ),
  );
  const cols = ["staff", "duty_hours", "claims", "transfers", "referrals", "invites", "return_codes"].map((k) => t(`operator.worklog.col.${k}`));
  return h(
    "section",
    { class: "worklog-summary", "aria-labelledby": "worklog-summary-h" },
    h("h3", { id: "worklog-summary-h", text: t("operator.worklog.summary_heading", { from: s.from, to: s.to }) }),
    rows.length ? table("worklog-summary", t("operator.worklog.summary_caption"), cols, rows) : h("p", { id: "worklog-summary-empty", text: t("operator.worklog.empty") }),
    h("a", { id: "worklog-summary-csv", class: "button secondary", href: csv, download: `staff-summary-${s.from}-${s.to}.csv`, text: t("operator.worklog.summary_csv") }),
  );
}

function detailText(detail) {
  return Object.entries(detail || {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function entriesSection() {
  const l = state.list;
  if (!l) return null;
  const rows = (l.entries || []).map((e) =>
    h(
      "tr",
      { "data-seq": String(e.seq) },
      h("td", { text: String(e.at).replace("T", " ").slice(0, 19) }),
      h("td", { text: e.actor }),
      h("td", { text: actionLabel(e.action) }),
      h("td", { text: e.conversation || "" }),
      h("td", { text: detailText(e.detail) }),
    ),
  );
  const cols = ["at", "staff", "action", "conversation", "detail"].map((k) => t(`operator.worklog.col.${k}`));
  const csv = `/staff/api/worklog.csv?${query({ actor: state.actor, action: state.action })}`;
  return h(
    "section",
    { class: "worklog-entries", "aria-labelledby": "worklog-entries-h" },
    h("h3", { id: "worklog-entries-h", text: t("operator.worklog.entries_heading", { n: String(l.total) }) }),
    rows.length ? table("worklog-entries", t("operator.worklog.entries_caption"), cols, rows) : h("p", { id: "worklog-entries-empty", text: t("operator.worklog.empty") }),
    h(
      "div",
      { class: "worklog-pages" },
      h("button", { type: "button", id: "worklog-prev", class: "secondary", disabled: state.loading || l.page <= 1, onclick: () => turnPage(l.page - 1), text: t("operator.worklog.prev") }),
      h("span", { id: "worklog-page", text: t("operator.worklog.page", { page: String(l.page), pages: String(l.pages) }) }),
      h("button", { type: "button", id: "worklog-next", class: "secondary", disabled: state.loading || l.page >= l.pages, onclick: () => turnPage(l.page + 1), text: t("operator.worklog.next") }),
    ),
    h("a", { id: "worklog-csv", class: "button secondary", href: csv, download: `staff-work-${state.from}-${state.to}.csv`, text: t("operator.worklog.entries_csv") }),
  );
}

function draw() {
  if (!region) return;
  mount(
    region,
    h("h2", { id: "worklog-h", text: t("operator.worklog.heading") }),
    h("p", { class: "hint", text: t("operator.worklog.intro") }),
    chainLine(),
    filters(),
    state.loading ? h("p", { role: "status", text: t("operator.worklog.loading") }) : null,
    state.error ? h("p", { id: "worklog-error", class: "error", role: "alert", text: t("operator.worklog.error", { error: state.error }) }) : null,
    summarySection(),
    entriesSection(),
  );
}

export const worklogView = {
  id: "worklog",
  labelKey: "operator.nav.worklog",
  render(target) {
    // Fetched afresh when the view is chosen; a language switch only redraws.
    const entering = region === null;
    region = target;
    if (entering && !state.loading) load();
    else draw();
  },
  leave() {
    region = null;
  },
};
