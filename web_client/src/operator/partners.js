// The "Partners" view: the referral partner directory as operators keep it.
// Add, edit, retire (and restore) and mark checked with the partner; every
// change is saved on the server at once, audited there, and reaches every
// open console by push (`partners_changed`) without a reload. The whole
// directory downloads as CSV or TOML for the annual check with the
// municipalities (docs/operations.md, "The partner directory").
import { h, mount } from "../lib/dom.js";
import { lang, t } from "../lib/i18n.js";
import { kindName } from "../lib/partner-kinds.js";
import { jsonFetch, session } from "../staff/session.js";
import { bodyOf, draftOf, partnerForm } from "./partner-form.js";

const API = "/staff/api/partners";
const state = { partners: null, kinds: [], version: 0, filter: "", draft: null, notice: "", region: null };

function errorText(error) {
  const key = `operator.partners.errors.${error}`;
  const text = t(key);
  return text === key ? t("operator.partners.errors.other", { code: String(error) }) : text;
}

async function send(method, url, body) {
  const { body: reply } = await jsonFetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": session.csrf },
    body: JSON.stringify(body),
  });
  return reply;
}

async function load() {
  const { body } = await jsonFetch(API, { method: "GET", headers: { Accept: "application/json" } });
  if (!body.ok) {
    state.notice = errorText(body.error);
    return;
  }
  state.partners = Array.isArray(body.partners) ? body.partners : [];
  state.kinds = Array.isArray(body.kinds) ? body.kinds : [];
  state.version = Number(body.version) || 0;
}

function matches(p, words) {
  const hay = [p.code, p.name, p.name_en, p.municipality, kindName(p.kind), p.phone].join(" ").toLocaleLowerCase();
  return words.every((w) => hay.includes(w));
}

function formatDate(ms) {
  try {
    return new Date(ms).toLocaleDateString(lang(), { year: "numeric", month: "short", day: "numeric" });
  } catch {
    return new Date(ms).toISOString().slice(0, 10);
  }
}

function checked(p) {
  const at = Date.parse(p.verified_at || "");
  return Number.isFinite(at) ? t("operator.partners.checked", { date: formatDate(at), by: p.verified_by }) : t("operator.partners.unchecked");
}

function row(p) {
  return h(
    "tr",
    { "data-partner": p.code, class: p.retired ? "retired" : null },
    h("td", {}, h("span", { class: "p-name", text: p.name }), p.retired ? h("span", { class: "p-retired", text: ` (${t("operator.partners.retired")})` }) : null),
    h("td", { text: kindName(p.kind) }),
    h("td", { text: p.municipality || t("operator.partners.county_wide") }),
    h("td", { class: p.phone ? "p-phone" : "p-phone none", dir: p.phone ? "ltr" : null, text: p.phone || t("operator.partners.no_phone") }),
    h("td", { class: "p-checked", text: checked(p) }),
    h(
      "td",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", "data-action": "edit", onclick: () => openForm(p), text: t("operator.partners.edit") }),
      p.retired ? null : h("button", { type: "button", class: "secondary", "data-action": "verify", onclick: () => change("POST", `${API}/${encodeURIComponent(p.code)}/verify`, {}), text: t("operator.partners.verify") }),
      h("button", { type: "button", class: "secondary", "data-action": "retire", onclick: () => change("POST", `${API}/${encodeURIComponent(p.code)}/retire`, { retired: !p.retired }), text: p.retired ? t("operator.partners.restore") : t("operator.partners.retire") }),
    ),
  );
}

function table() {
  if (state.partners === null) return h("p", { id: "partners-empty", text: t("operator.partners.loading") });
  const words = state.filter.toLocaleLowerCase().split(/\s+/).filter(Boolean);
  const shown = state.partners.filter((p) => matches(p, words));
  if (!shown.length) return h("p", { id: "partners-empty", text: t("operator.partners.none") });
  return h(
    "table",
    { id: "partners-table", "aria-labelledby": "partners-h" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["name", "kind", "municipality", "phone", "checked_col", "actions"].map((c) => h("th", { scope: "col", text: t(`operator.partners.col.${c}`) })),
      ),
    ),
    h("tbody", {}, shown.map(row)),
  );
}

function draw() {
  const region = state.region;
  if (!region || !region.isConnected) return;
  const unchecked = (state.partners || []).filter((p) => !p.retired && !p.verified_at).length;
  mount(
    region,
    h("h2", { id: "partners-h", text: t("operator.partners.heading") }),
    h("p", { class: "hint", text: t("operator.partners.intro") }),
    state.partners ? h("p", { id: "partners-unchecked", text: t("operator.partners.unchecked_count", { count: unchecked }) }) : null,
    h(
      "p",
      { class: "downloads" },
      h("a", { href: `${API}/export?format=csv`, download: "", id: "partners-csv", text: t("operator.partners.download_csv") }),
      " ",
      h("a", { href: `${API}/export?format=toml`, download: "", id: "partners-toml", text: t("operator.partners.download_toml") }),
    ),
    state.notice ? h("p", { id: "partners-notice", role: "status", text: state.notice }) : null,
    state.draft
      ? partnerForm(state.draft, state.kinds, save, () => {
          state.draft = null;
          draw();
        })
      : h("button", { type: "button", class: "primary", id: "partner-new", onclick: () => openForm(null), text: t("operator.partners.new") }),
    h(
      "div",
      { class: "field" },
      h("label", { for: "partners-filter", text: t("operator.partners.filter") }),
      h("input", {
        id: "partners-filter",
        type: "search",
        value: state.filter,
        autocomplete: "off",
        oninput: (e) => {
          state.filter = e.target.value;
          const old = document.getElementById("partners-table") || document.getElementById("partners-empty");
          if (old) old.replaceWith(table());
        },
      }),
    ),
    table(),
  );
}

function openForm(partner) {
  state.draft = draftOf(partner);
  state.notice = "";
  draw();
  const first = document.querySelector("#partner-form input");
  if (first) first.focus();
}

async function change(method, url, body) {
  const reply = await send(method, url, body);
  state.notice = reply.ok ? t("operator.partners.saved", { name: reply.partner.name }) : errorText(reply.error);
  await load();
  draw();
  return reply;
}

async function save(d) {
  const url = d.isNew ? API : `${API}/${encodeURIComponent(d.code)}`;
  const reply = await send(d.isNew ? "POST" : "PUT", url, bodyOf(d));
  if (!reply.ok) {
    d.field = (reply.info && reply.info.field) || "";
    d.error = d.field ? t("operator.partners.errors.field", { error: errorText(reply.error), field: t(`operator.partners.field.${d.field}`) }) : errorText(reply.error);
    draw();
    const bad = document.querySelector('#partner-form [aria-invalid="true"]');
    if (bad) bad.focus();
    return;
  }
  state.draft = null;
  state.notice = t("operator.partners.saved", { name: reply.partner.name });
  await load();
  draw();
}

export const partnersView = {
  id: "partners",
  labelKey: "operator.nav.partners",
  render(region) {
    state.region = region;
    draw();
    load().then(draw);
  },
  // Another operator (or node, or the CLI import) changed the directory.
  async onPartnersChanged(app, data) {
    if (data && Number(data.version) === state.version) return;
    await load();
    draw();
  },
  leave() {
    state.region = null;
    state.draft = null;
    state.notice = "";
  },
};
