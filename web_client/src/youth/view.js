// How the youth page draws: one screen at a time in <main data-screen>, the
// top bar with the quick exit and the language switch, and the small pieces
// several screens share. Screens live in screens/*.js and are registered in
// `screens` by main.js: they import this module, never the other way round.
import { h, keepFocus, mount, NO_TRACE_INPUT } from "../lib/dom.js";
import { languages, lang, localized, setLang, t } from "../lib/i18n.js";
import { noticeLine } from "../lib/notice.js";
import { trouble } from "../lib/trouble.js";
import { isWiped } from "./exit.js";
import { app } from "./state.js";

const main = document.getElementById("main");
const bar = document.getElementById("bar");

/** Screen name -> () => nodes. */
export const screens = {};

// --- top bar: exit button, language switch -----------------------------------

export function renderBar() {
  const exitLink = document.getElementById("qx");
  const decoy = app.screen === "decoy";
  bar.classList.toggle("decoy-bar", decoy);
  if (decoy) {
    // A red "Quick exit" on the decoy would give it away: the decoy has its own
    // neutral close control (still first in tab order, still a quick exit).
    mount(bar, h("button", { type: "button", class: "decoy-close", "data-quick-exit": "", "aria-label": t("youth.exit.link"), text: "✕" }));
    return;
  }
  const select = h(
    "select",
    { id: "lang", class: "lang", "aria-label": `${t("youth.language")} / Language / اللغة`, ...NO_TRACE_INPUT },
    languages().map((l) => h("option", { value: l.code, lang: l.code, dir: l.dir, text: l.name, selected: l.code === lang() })),
  );
  select.addEventListener("change", () => setLang(select.value));
  const button = exitLink && exitLink.parentElement === bar ? exitLink : h("a", { id: "qx", class: "qx", href: "/exit", "data-quick-exit": "" });
  button.textContent = t("youth.exit.button");
  button.setAttribute("title", t("youth.exit.shift_hint"));
  mount(bar, button, select);
  const srLink = document.getElementById("qx-link");
  if (srLink) srLink.textContent = t("youth.exit.link");
}

// --- rendering -----------------------------------------------------------------

export function render(focus = false) {
  if (isWiped()) return;
  // The message box is rebuilt from app.draft: take what is in it now (text
  // typed while offline, or since the last render) before it goes.
  captureDraft();
  if (focus) {
    paint();
    focusScreen();
  } else keepFocus(paint);
}

function paint() {
  renderBar();
  const screen = screens[app.screen] || screens.loading;
  // The chat's log scrolls on its own (youth.css): a re-render builds a new
  // one, which must not jump back to the oldest message.
  const log = main.querySelector(".log-wrap");
  const logAtEnd = !log || log.scrollHeight - log.scrollTop - log.clientHeight < 4;
  const logTop = log ? log.scrollTop : 0;
  mount(main, ...[].concat(screen()));
  const newLog = main.querySelector(".log-wrap");
  if (newLog) newLog.scrollTop = logAtEnd ? newLog.scrollHeight : logTop;
  main.setAttribute("data-screen", app.screen);
  // youth.css lays the whole page out per screen (the chat fills the screen).
  document.body.setAttribute("data-screen", app.screen);
}

function focusScreen() {
  // A new screen starts at the top, under the sticky exit bar.
  window.scrollTo(0, 0);
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) target.focus({ preventScroll: true });
}

export function go(screen) {
  // The ended screen is the last place the transcript may show: leaving it
  // drops the messages, so nobody who picks up the device later can read them.
  if (app.screen === "ended" && screen !== "ended") app.items = [];
  app.screen = screen;
  app.notice = "";
  app.confirmEnd = false;
  render(true);
}

function captureDraft() {
  const ta = document.getElementById("composer");
  if (ta) app.draft = ta.value;
}

// --- pieces of several screens ---------------------------------------------------

export function heading(text) {
  return h("h1", { tabindex: "-1", text });
}

export function notice() {
  return noticeLine(app.notice);
}

export function hoursText() {
  const src = (app.closedInfo && app.closedInfo.hours) || (app.status && app.status.hours) || (app.full && app.full.hours);
  return localized(src);
}

export function emergency() {
  // A page refused as full never got `status`: the refusal carries the number
  // (so does `unavailable`).
  const number = String((app.status && app.status.emergency) || (app.full && app.full.emergency) || (trouble.info && trouble.info.emergency) || "112").replace(/[^0-9+ -]/g, "");
  return number || "112";
}

export function telHref(number) {
  return `tel:${String(number).replace(/[^0-9+]/g, "")}`;
}

export function connectionLine() {
  return app.online ? null : h("p", { class: "offline", role: "status", text: t("youth.chat.reconnecting") });
}

export function formatDate(ms) {
  try {
    return new Date(ms).toLocaleDateString(lang(), { year: "numeric", month: "long", day: "numeric" });
  } catch {
    return new Date(ms).toISOString().slice(0, 10);
  }
}

export function errorText(code) {
  if (code === "queue_full") return t("youth.error.queue_full");
  if (code === "rate_limited") return t("youth.error.rate_limited");
  if (code === "unavailable") return t("youth.trouble.start");
  if (code === "offline" || code === "timeout") return t("youth.error.offline");
  return t("youth.error.generic");
}
