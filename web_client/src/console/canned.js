// Canned responses: short texts the centre writes in its config
// ([[service.canned]], docs/operations.md), per language, that reach this
// page with the session (GET /staff/api/me, docs/protocol.md). A click or
// Alt+1 … Alt+9 puts one into the message box at the caret, in the
// conversation's language when the centre wrote it in that language, else in
// the console's; the counsellor edits it and sends it like anything typed.
// Nothing is ever sent by itself.
import { h } from "../lib/dom.js";
import { lang, localized, t } from "../lib/i18n.js";

export const canned = { list: [] };
const MAX = 9;

/** The session's list, as the server sent it (anything malformed is left out). */
export function setCanned(list) {
  canned.list = (Array.isArray(list) ? list : [])
    .filter((c) => c && typeof c.key === "string" && c.text && typeof c.text === "object")
    .slice(0, MAX);
}

function textFor(c, entry) {
  const chat = entry && entry.queueEntry && entry.queueEntry.language;
  if (chat && typeof c.text[chat] === "string") return c.text[chat];
  if (typeof c.text[lang()] === "string") return c.text[lang()];
  return localized(c.text);
}

function titleFor(c) {
  return localized(c.title) || c.key;
}

/** Put text i into the composer at the caret; true if it went in. */
export function insertCanned(i, entry) {
  const c = canned.list[i];
  const ta = document.getElementById("composer");
  if (!c || !ta || ta.disabled) return false;
  const text = textFor(c, entry);
  const start = ta.selectionStart ?? ta.value.length;
  const end = ta.selectionEnd ?? ta.value.length;
  ta.focus();
  ta.setRangeText(text, start, end, "end");
  // As if typed: the draft is kept and the typing mark goes out.
  ta.dispatchEvent(new Event("input", { bubbles: true }));
  return true;
}

/** The row of buttons above the message box (nothing when the centre configured none). */
export function cannedBar(entry, disabled) {
  if (!canned.list.length) return null;
  return h(
    "div",
    { class: "canned", id: "canned", role: "group", "aria-label": t("staff.canned.heading") },
    h("span", { class: "canned-h", "aria-hidden": "true", text: t("staff.canned.heading") }),
    canned.list.map((c, i) =>
      h("button", {
        type: "button",
        class: "secondary small canned-btn",
        id: `canned-${i + 1}`,
        "data-key": c.key,
        disabled,
        title: t("staff.canned.hint", { n: i + 1 }),
        "aria-keyshortcuts": `Alt+${i + 1}`,
        // mousedown would take the focus (and the caret) from the box first
        onmousedown: (e) => e.preventDefault(),
        onclick: () => insertCanned(i, entry),
        text: titleFor(c),
      }),
    ),
  );
}
