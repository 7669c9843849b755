// Whom to call when the chat cannot help the youth now: the emergency number
// and the other services, on every refusal (closed, full, a refused start)
// and while the chat is having trouble (the shared live state `unavailable`,
// lib/trouble.js). Its own module so that the waiting and chat screens can
// show it without importing the closed screen's "try again" (socket.js).
import { h } from "../../lib/dom.js";
import { localized, t } from "../../lib/i18n.js";
import { trouble } from "../../lib/trouble.js";
import { app } from "../state.js";
import { emergency, telHref } from "../view.js";

/**
 * The chat is having trouble (a call answered `unavailable`; lib/trouble.js):
 * said plainly, with whom to call from the error's data — never a spinner.
 * It goes by itself when a call gets through again (socket.js retries).
 */
export function troubleCard() {
  if (!trouble.on) return null;
  const info = trouble.info || app.status || {};
  return h(
    "section",
    { class: "card trouble", id: "trouble", role: "alert", "aria-labelledby": "trouble-h" },
    h("h2", { id: "trouble-h", text: t("youth.trouble.heading") }),
    h("p", { text: t("youth.trouble.body") }),
    dangerCard(),
    alternativesCard(info.alternatives),
  );
}

/** Whom to call when the chat cannot take the youth: every refusal shows these. */
export function helpCards(alternatives) {
  return [dangerCard(), alternativesCard(alternatives)];
}

export function dangerCard() {
  return h("p", { class: "card danger" }, h("a", { href: telHref(emergency()), class: "tel", text: t("youth.closed.danger", { emergency: emergency() }) }));
}

/** Other services to call (from `status`, `nobody_on_duty` or `server_full`). */
export function alternativesCard(list) {
  const alternatives = Array.isArray(list) ? list : [];
  if (!alternatives.length) return null;
  return h(
    "section",
    { class: "card", "aria-labelledby": "c-alt" },
    h("h2", { id: "c-alt", text: t("youth.closed.alternatives_heading") }),
    h(
      "ul",
      { class: "alternatives" },
      alternatives.map((a) =>
        h(
          "li",
          {},
          h("strong", { text: String(a.name || "") }),
          " ",
          a.phone ? h("a", { href: telHref(a.phone), class: "tel", text: t("youth.closed.call", { phone: String(a.phone) }) }) : null,
          a.hours ? h("span", { class: "alt-hours", text: localized(a.hours) }) : null,
        ),
      ),
    ),
  );
}
