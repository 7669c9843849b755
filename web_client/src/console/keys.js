// Keyboard shortcuts for a counsellor with three conversations at once, and
// the help overlay ("?") that lists them. Single keys (j, k, n, c, t, ?)
// act only when no field has the focus, so they never eat a letter being
// typed; the Alt shortcuts (conversations, canned texts) and Escape work in
// the message box too, as the overlay says. Nothing fires while a dialog
// (the end dialog, this overlay) is open. Everything goes through the
// buttons a mouse would use, so a shortcut can do no more than a click.
// The single keys can be switched off in the overlay.
import { h, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { canned, insertCanned } from "./canned.js";
import { app } from "./state.js";

export const SHORTCUTS = [
  ["j", "Alt+↓", "next"],
  ["k", "Alt+↑", "previous"],
  ["n", "", "take_next"],
  ["c", "", "composer"],
  ["t", "", "tools"],
  ["", "Alt+1 … Alt+9", "canned"],
  ["", "Esc", "leave_field"],
  ["?", "", "help"],
];

let overlay = null;
// WCAG 2.1.4: single-character shortcuts can be turned off (speech input,
// stray key presses); the overlay has the switch, the bar's "?" still opens it.
let singleKeys = true;

function inField(el) {
  if (!el || el === document.body) return false;
  return el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
}

function dialogOpen() {
  return [...document.querySelectorAll("dialog")].some((d) => d.open);
}

function clickId(id) {
  const el = document.getElementById(id);
  if (!el || el.disabled) return false;
  el.click();
  return true;
}

function move(step) {
  if (!app.order.length) return;
  const at = app.order.indexOf(app.selected);
  const next = app.order[(at + step + app.order.length) % app.order.length];
  clickId(`tab-${next}`);
}

function focusComposer() {
  const ta = document.getElementById("composer");
  if (ta && !ta.disabled) ta.focus();
}

function focusTools() {
  const first = document.querySelector("#pane .tool summary");
  if (first) first.focus();
}

export function openHelp() {
  if (!overlay || !overlay.isConnected) {
    overlay = h("dialog", { id: "keys-help", class: "keys-help", "aria-labelledby": "keys-help-h" });
    document.body.appendChild(overlay);
  }
  mount(
    overlay,
    h("h2", { id: "keys-help-h", text: t("staff.keys.heading") }),
    h(
      "table",
      { class: "keys-table" },
      h("tbody", {}, SHORTCUTS.map(([key, alt, what]) => h("tr", {}, h("td", {}, [key, alt].filter(Boolean).map((k, i) => [i ? " / " : "", h("kbd", { dir: "ltr", text: k })])), h("td", { text: t(`staff.keys.${what}`) })))),
    ),
    h("p", { class: "hint", text: t("staff.keys.fields") }),
    h(
      "div",
      { class: "field check" },
      h("input", { type: "checkbox", id: "keys-single", checked: singleKeys, onchange: (e) => (singleKeys = e.target.checked) }),
      h("label", { for: "keys-single", text: t("staff.keys.single") }),
    ),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "keys-help-close", onclick: () => overlay.close(), text: t("staff.keys.close") })),
  );
  if (!overlay.open) overlay.showModal();
  document.getElementById("keys-help-close").focus();
}

function onKey(e) {
  if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.metaKey || dialogOpen()) return;
  const entry = app.selected && app.convs.get(app.selected);
  if (e.altKey && !e.shiftKey) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      move(e.key === "ArrowDown" ? 1 : -1);
      return;
    }
    // The key's place, not its character: Alt+1 types "¡" on some layouts.
    const digit = /^Digit([1-9])$/.exec(e.code);
    if (digit && canned.list.length) {
      e.preventDefault();
      insertCanned(Number(digit[1]) - 1, entry);
    }
    return;
  }
  if (e.key === "Escape" && inField(e.target)) {
    // Out of the box, so the single-key shortcuts work; the draft stays.
    e.target.blur();
    return;
  }
  if (e.altKey || !singleKeys || inField(e.target)) return;
  const act = {
    j: () => move(1),
    k: () => move(-1),
    n: () => clickId("take-next"),
    c: focusComposer,
    t: focusTools,
    "?": openHelp,
  }[e.key];
  if (!act) return;
  e.preventDefault();
  act();
}

export function installKeys() {
  document.addEventListener("keydown", onKey);
}

/** The "?" button in the bar, for those who do not know the key. */
export function helpButton() {
  return h("button", { type: "button", class: "secondary", id: "keys-help-open", "aria-keyshortcuts": "?", "aria-label": t("staff.keys.heading"), onclick: openHelp, text: "?" });
}
