// How the liaison page draws: one screen at a time (registered in `screens`
// by main.js), the bar with the language switch, the log, and how members
// are named (the counsellor by alias, the youth and liaisons by role).
import { h, keepFocus, mount, NO_TRACE_INPUT } from "../lib/dom.js";
import { languages, lang, raw, setLang, t } from "../lib/i18n.js";
import { renderItem } from "../lib/messages.js";
import { noticeLine } from "../lib/notice.js";
import { app, wipeSecrets } from "./state.js";

const bar = document.getElementById("bar");
export const main = document.getElementById("main");

/** Screen name -> () => nodes. */
export const screens = {};

function renderBar() {
  const select = h(
    "select",
    { id: "lang", class: "lang", "aria-label": `${t("liaison.language")} / Language`, ...NO_TRACE_INPUT },
    languages().map((l) => h("option", { value: l.code, lang: l.code, text: l.name, selected: l.code === lang() })),
  );
  select.addEventListener("change", () => setLang(select.value));
  mount(bar, h("h1", { text: t("liaison.title") }), select);
}

export function roleName(role) {
  const v = raw(`liaison.roles.${role}`);
  return typeof v === "string" ? v : String(role || "");
}

export function memberName(m) {
  if (!m) return "";
  if (m.role === "counsellor") return m.alias || roleName("counsellor");
  if (m.role === "youth") return roleName("youth");
  return roleName(m.alias || m.role);
}

export function render(focus = false) {
  captureDraft();
  if (!focus) {
    keepFocus(paint);
    return;
  }
  paint();
  window.scrollTo(0, 0);
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1, h2");
  if (target) target.focus({ preventScroll: true });
}

function paint() {
  renderBar();
  const screen = screens[app.screen] || screens.loading;
  mount(main, ...[].concat(screen()));
  main.setAttribute("data-screen", app.screen);
}

export function go(screen) {
  app.screen = screen;
  app.notice = "";
  render(true);
}

export function heading(text) {
  return h("h2", { class: "page-h", tabindex: "-1", text });
}

export function notice() {
  return noticeLine(app.notice);
}

export function offline() {
  return app.online ? null : h("p", { class: "offline", role: "status", text: t("liaison.reconnecting") });
}

function captureDraft() {
  const ta = document.getElementById("composer");
  if (ta) app.draft = ta.value;
}

/** The liaison's part is over (left, removed, ended, lost): wipe and say why. */
export function endWith(reason) {
  captureDraft();
  app.endedReason = reason;
  wipeSecrets();
  app.draft = "";
  go("ended");
}

// --- the log -------------------------------------------------------------------------

export function typingText() {
  const names = [...app.composer.peerTyping.keys()].map((id) => memberName(app.conv && app.conv.memberById(id)));
  return names.length ? t("liaison.typing", { alias: names.join(", ") }) : "";
}

export function refreshTyping() {
  const el = document.getElementById("typing");
  if (el) el.textContent = typingText();
}

const LOOK = {
  you: () => t("liaison.you", { role: roleName(app.role) }),
  someone: () => "",
  bad: () => t("liaison.bad"),
  // "failed" alone is a join failure's text in this catalog.
  state: (state) => t(`liaison.${state === "failed" ? "failed_msg" : state}`),
  retryText: () => t("liaison.retry"),
  retryClass: "link",
  retry: (item) => app.outbox && app.outbox.retry(item),
};

export function logItem(item) {
  return renderItem(item, LOOK);
}

export function appendItem(item) {
  app.items.push(item);
  const log = app.screen === "chat" && document.getElementById("log");
  if (log) {
    const li = logItem(item);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }
}

export function refreshItem(item) {
  if (app.screen === "chat" && item.el && item.el.isConnected) item.el.replaceWith(logItem(item));
}
