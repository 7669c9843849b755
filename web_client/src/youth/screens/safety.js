// The first screen, before any choice: what the chat is and is not, the duty
// to report, private windows, the quick exit, 112, opening hours. What it
// says is in safety-content.js, which the build also writes into the page's
// HTML: the first render here replaces that markup with the same elements.
import { h } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { onContinue } from "../socket.js";
import { app } from "../state.js";
import { emergency, hoursText, notice, telHref } from "../view.js";
import { safetyContent } from "./safety-content.js";

export function safety() {
  const content = safetyContent(t, { emergency: emergency(), telHref, hours: hoursText(), retrying: app.retrying });
  return content.map(toElement);
}

function toElement(node) {
  if (node === null) return null;
  if (typeof node === "string") return node;
  const [tag, attrs, ...children] = node;
  if (attrs.id === "notice") return notice();
  const el = h(tag, attrs, ...children.map(toElement));
  if (attrs.id === "go-on") el.addEventListener("click", onContinue);
  // A re-render (the script taking over the written page, the opening hours
  // arriving, a language switch) keeps a <details> the youth opened open.
  if (tag === "details" && attrs.id) {
    const now = document.getElementById(attrs.id);
    if (now && now.open) el.open = true;
  }
  return el;
}
