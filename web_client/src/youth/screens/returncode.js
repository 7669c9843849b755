// The return code (six words in the page's language), shown once: gone from
// memory and the DOM as soon as the youth leaves this screen
// (docs/design/returning.md).
import { h } from "../../lib/dom.js";
import { raw, t } from "../../lib/i18n.js";
import { app } from "../state.js";
import { formatDate, go, heading } from "../view.js";
import { onPause } from "./decoy.js";

export function returncode() {
  const rc = app.returnCode;
  if (!rc) return [heading(t("youth.code.heading"))];
  const advice = raw("youth.code.advice");
  return [
    heading(t("youth.code.heading")),
    h("p", { class: "lead", text: t("youth.code.intro") }),
    // The words: large, left to right in every UI language, not selectable
    // (a copy would land in the clipboard, which keyboards often keep). One
    // box per word, so a phone shows them in rows of two or three; the spaces
    // between the boxes keep them six words for a screen reader. `lang` is the
    // list's language, so a reader pronounces Swedish words as Swedish.
    h("p", { class: "passphrase", id: "passphrase", lang: rc.language || null, dir: "ltr", translate: "no" }, wordBoxes(rc.passphrase)),
    h("p", { class: "valid", text: t("youth.code.valid", { date: formatDate(rc.expiresAt) }) }),
    h(
      "section",
      { class: "card", "aria-labelledby": "adv-h" },
      h("h2", { id: "adv-h", text: t("youth.code.advice_heading") }),
      h("ul", { class: "advice" }, (Array.isArray(advice) ? advice : []).map((text) => h("li", { text }))),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", id: "code-done", onclick: onCodeDone, text: t("youth.code.done") }),
      h("button", { type: "button", class: "secondary", id: "pause", onclick: onPause, text: t("youth.chat.pause") }),
    ),
    h("p", { class: "hint", text: t("youth.code.once") }),
  ];
}

function wordBoxes(passphrase) {
  const boxes = [];
  for (const word of passphrase.split(" ")) {
    if (boxes.length) boxes.push(" ");
    boxes.push(h("span", { class: "word", text: word }));
  }
  return boxes;
}

/** Leaving the return-code screen drops the code: it is shown only once. */
function onCodeDone() {
  app.returnCode = null;
  const back = app.codeReturnTo;
  app.codeReturnTo = null;
  if (app.endedReason || !app.conv) go("ended");
  else go(back && back !== "returncode" ? back : "chat");
}
