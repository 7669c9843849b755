// The one-line notice of a page (an error or a status after an action): one
// element, id "notice", role=alert so a screen reader says it at once. The
// text is also kept in the page's state, so the next full render shows it.
import { h } from "./dom.js";

/** The notice line, empty (and collapsed by the stylesheet) without text. */
export function noticeLine(text) {
  return h("p", { class: ["notice", text ? "" : "empty"], role: "alert", id: "notice", text: text || "" });
}

/** Show text in the notice line now and keep it in holder.notice for re-renders. */
export function setNotice(holder, text) {
  holder.notice = text;
  const el = document.getElementById("notice");
  if (el) {
    el.textContent = text;
    el.classList.toggle("empty", !text);
  }
}
