// The referral tool under an open conversation (the slussfunktion): search
// the partner directory on the server, refer, and the card goes end to end.
// Operators change the directory while consoles are open: on
// `partners_changed` every list shown here is searched again, so a counsellor
// never sends a card the directory no longer holds (protocol.md, /staff).
import { call } from "../lib/calls.js";
import { h, NO_TRACE_INPUT } from "../lib/dom.js";
import { lang, t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { kindName } from "../lib/partner-kinds.js";
import { appendItem } from "./log.js";
import { app } from "./state.js";
import { errorText, formatDateTime, refreshPane } from "./view.js";

function partnerName(p) {
  return lang() !== "sv" && p.name_en ? p.name_en : p.name;
}

function checkedText(p) {
  const at = Date.parse(p.verified_at || "");
  return Number.isFinite(at) ? t("staff.tools.refer_checked", { date: formatDateTime(at) }) : t("staff.tools.refer_unchecked");
}

function partnerItem(entry, p) {
  const place = [p.municipality, ...(Array.isArray(p.districts) ? p.districts : [])].filter(Boolean).join(", ");
  return h(
    "li",
    { "data-partner": p.code },
    h("span", { class: "p-name", text: partnerName(p) }),
    h("span", { class: "p-meta", text: [kindName(p.kind), place].filter(Boolean).join(" · ") }),
    h("span", { class: p.phone ? "p-phone" : "p-phone none", dir: p.phone ? "ltr" : null, text: p.phone || t("staff.tools.refer_no_phone") }),
    h("span", { class: p.verified_at ? "p-checked" : "p-checked unchecked", text: checkedText(p) }),
    h("button", { type: "button", class: "secondary", onclick: () => onRefer(entry, p), text: t("staff.tools.refer_send") }),
  );
}

/** The refer tool's contents: the search form, the answer, the last note. */
export function referFields(entry, queryId) {
  return [
    h(
      "form",
      {
        class: "refer-search",
        role: "search",
        onsubmit: (e) => {
          e.preventDefault();
          onPartnerSearch(entry);
        },
      },
      h("label", { for: queryId, text: t("staff.tools.refer_search") }),
      h("input", { id: queryId, name: "partner-query", type: "search", maxlength: "64", value: entry.partnerQuery, ...NO_TRACE_INPUT, oninput: (e) => (entry.partnerQuery = e.target.value) }),
      h("button", { type: "submit", class: "secondary", id: "partner-search", text: t("staff.tools.refer_button") }),
    ),
    entry.partners
      ? entry.partners.length
        ? h("ul", { class: "pick-list", id: "partner-list" }, entry.partners.map((p) => partnerItem(entry, p)))
        : h("p", { text: t("staff.tools.refer_none") })
      : null,
    entry.referNote ? h("p", { id: "refer-note", role: "status", text: entry.referNote }) : null,
  ];
}

async function search(entry, query) {
  const reply = await call(app.socket, "partners", { query });
  if (!reply.ok) return reply;
  entry.partners = Array.isArray(reply.partners) ? reply.partners : [];
  entry.partnersFor = query;
  return reply;
}

async function onPartnerSearch(entry) {
  const reply = await search(entry, (entry.partnerQuery || "").trim().slice(0, 64));
  if (!reply.ok) return setNotice(app, errorText(reply.error));
  entry.referNote = "";
  refreshPane(entry);
}

async function onRefer(entry, partner) {
  const reply = await call(app.socket, "refer", { conversation: entry.conv.id, partner: partner.code });
  if (!reply.ok || !reply.partner) return setNotice(app, errorText(reply.error || "internal"));
  // The referral is recorded; the card goes to the youth end to end.
  const card = reply.partner;
  const now = Date.now();
  const item = { kind: "card-out", payload: { type: "card", card, sent_at: now }, sentAt: now, state: "sending" };
  appendItem(entry, item);
  entry.outbox.push(item);
  entry.referNote = t("staff.tools.refer_sent", { name: card.name || card.code });
  refreshPane(entry);
}

/** `partners_changed`: search again wherever a list is shown. */
export async function onPartnersChanged() {
  for (const entry of app.convs.values()) {
    if (!entry.partners || entry.state === "ended") continue;
    const reply = await search(entry, entry.partnersFor || "");
    if (!reply.ok) continue;
    entry.referNote = t("staff.tools.refer_updated");
    refreshPane(entry);
  }
}
