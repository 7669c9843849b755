// How the console draws. The page is five parts — the bar, incoming
// transfer offers, the queue, the list of conversations and the open
// conversation's pane — each drawn by the module that owns it and
// registered in `painters` by main.js; everything else redraws a part by
// name (paint("queue")), so no module imports the one that imports it.
// Also the small helpers several parts share (names, tags, labels).
import { h, keepFocus, mount } from "../lib/dom.js";
import { lang, raw, t } from "../lib/i18n.js";
import { noticeLine } from "../lib/notice.js";
import { app } from "./state.js";

export const bar = document.getElementById("bar");
const main = document.getElementById("main");

/** Part name ("bar", "offers", "queue", "convList", "pane") -> () => void. */
export const painters = {};

export function paint(part) {
  painters[part]();
}

/** Redraw the open pane if it shows this conversation, keeping focus and draft. */
export function refreshPane(entry) {
  if (app.selected === entry.conv.id) keepFocus(painters.pane);
}

const LINK_TEXT = { connecting: "staff.connecting", unreachable: "staff.unreachable", lost: "staff.offline" };

export function renderConsole() {
  // The whole page is rebuilt (a dropped or restored connection, a language
  // switch): keep the open conversation's unsent text, the focus and the caret.
  saveDraft();
  keepFocus(paintConsole);
}

function paintConsole() {
  paint("bar");
  mount(
    main,
    app.link === "online" ? null : h("p", { class: "offline", role: "status", text: t(LINK_TEXT[app.link]) }),
    noticeLine(app.notice),
    h("div", { id: "offers", class: "offers" }),
    h(
      "div",
      { class: "console" },
      h("section", { class: "panel", id: "queue-panel", "aria-labelledby": "queue-h" }),
      h("section", { class: "panel", id: "convs-panel", "aria-labelledby": "convs-h" }),
      h("section", { class: "panel pane", id: "pane", "aria-label": t("staff.convs.heading") }),
    ),
  );
  paint("offers");
  paint("queue");
  paint("convList");
  paint("pane");
}

/** Keep what was typed in the open conversation's box before it is redrawn. */
export function saveDraft() {
  const pane = document.getElementById("pane");
  const typed = document.getElementById("composer");
  const entry = app.selected && app.convs.get(app.selected);
  if (pane && typed && entry && pane.getAttribute("data-conversation") === entry.conv.id) entry.draft = typed.value;
}

// --- shared helpers ------------------------------------------------------------------

export function errorText(code) {
  const key = `staff.errors.${code}`;
  const text = t(key);
  return text === key ? t("staff.errors.generic", { code }) : text;
}

export function stateKey(entry) {
  if (entry.state === "ended") return entry.reason || "ended";
  // The youth's page has been gone a while (presence): "offline — waiting for them".
  return entry.youthAway ? "offline" : entry.state;
}

export function stateLabel(entry) {
  return t(`staff.state.${stateKey(entry)}`);
}

/** A language code by its name in the console's language ("Persiska"). */
export function languageName(code) {
  const name = raw(`staff.languages.${code}`);
  return typeof name === "string" ? name : codeLabel("languages", code);
}

export function codeLabel(list, code) {
  const label = raw(`codes.${list}.${code}`);
  return typeof label === "string" ? label : String(code);
}

export function formatDateTime(ms) {
  try {
    return new Date(ms).toLocaleString(lang(), { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  } catch {
    return new Date(ms).toISOString();
  }
}

function tagList(e) {
  if (!e) return [];
  return [
    e.urgent ? { text: t("staff.queue.urgent"), urgent: true } : null,
    e.returning ? { text: t("staff.queue.returning"), returning: true } : null,
    e.lane === "professional" ? { text: t("staff.queue.professional"), professional: true } : null,
    // Both by their names in the console's language: what the youth chose to
    // chat in, and what their page was shown in (they may differ).
    e.language ? { text: t("staff.queue.chat_language", { name: languageName(e.language) }), language: true } : null,
    e.page_language ? { text: t("staff.queue.page_language", { name: languageName(e.page_language) }), language: true } : null,
    e.age_band ? { text: codeLabel("age_bands", e.age_band) } : null,
    e.topic ? { text: codeLabel("topics", e.topic) } : null,
  ].filter(Boolean);
}

/** A queue entry's (or offer's) tags: urgent, returning to you, professional, language, age, topic. */
export function renderTags(e) {
  const tags = tagList(e);
  if (!tags.length) return null;
  return h(
    "ul",
    { class: "tags", "aria-label": "tags" },
    tags.map((tag) => h("li", { class: ["tag", tag.urgent ? "urgent" : "", tag.returning ? "returning" : "", tag.professional ? "professional" : "", tag.language ? "language" : ""], text: tag.text })),
  );
}

export function aliasOf(entry, memberId) {
  return memberName(entry.conv.memberById(memberId));
}

/** A youth is "Youth"; a counsellor its alias; a liaison its role (the server
 *  seats a liaison with its invite's role as alias). */
export function memberName(m) {
  if (!m || m.role === "youth") return t("staff.convs.youth");
  if (m.role === "liaison") return roleLabel(m.alias);
  return m.alias || t("staff.roles.counsellor");
}

export function roleLabel(role) {
  const v = raw(`staff.roles.${role}`);
  return typeof v === "string" ? v : String(role || "");
}
