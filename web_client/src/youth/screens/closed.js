// Nobody on duty (closed), or the server holds as many youths as it may
// (full): hours, the emergency number and other services to call, and
// "try again".
import { h } from "../../lib/dom.js";
import { localized, t } from "../../lib/i18n.js";
import { onContinue } from "../socket.js";
import { app } from "../state.js";
import { emergency, heading, hoursText, notice, telHref } from "../view.js";

export function closed() {
  const info = app.closedInfo || app.status || {};
  const hours = hoursText();
  return [
    heading(t("youth.closed.heading")),
    h("p", { text: t("youth.closed.body") }),
    dangerCard(),
    hours ? h("section", { class: "card", "aria-labelledby": "c-hours" }, h("h2", { id: "c-hours", text: t("youth.closed.hours_heading") }), h("p", { text: hours })) : null,
    alternativesCard(info.alternatives),
    notice(),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "retry", onclick: onContinue, text: t("youth.closed.retry") })),
  ];
}

// The server holds as many youths as it may (server_full): never a spinner,
// always someone to call, and a "try again" that really connects again.
export function full() {
  const info = app.full || app.status || {};
  return [
    heading(t("youth.full.heading")),
    h("p", { text: t("youth.full.body") }),
    dangerCard(),
    alternativesCard(info.alternatives),
    notice(),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "retry", onclick: onContinue, disabled: app.retrying, text: t("youth.closed.retry") })),
  ];
}

/** Whom to call when the chat cannot take the youth: every refusal shows these. */
export function helpCards(alternatives) {
  return [dangerCard(), alternativesCard(alternatives)];
}

function dangerCard() {
  return h("p", { class: "card danger" }, h("a", { href: telHref(emergency()), class: "tel", text: t("youth.closed.danger", { emergency: emergency() }) }));
}

/** Other services to call (from `status`, `nobody_on_duty` or `server_full`). */
function alternativesCard(list) {
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
