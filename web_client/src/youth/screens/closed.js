// Nobody on duty (closed), or the server holds as many youths as it may
// (full): hours, the emergency number and other services to call, and
// "try again". Whom to call is drawn by help.js.
import { h } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { onContinue } from "../socket.js";
import { app } from "../state.js";
import { heading, hoursText, notice } from "../view.js";
import { alternativesCard, dangerCard } from "./help.js";

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
