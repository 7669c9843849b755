// The first screen, before any choice: what the chat is and is not, the duty
// to report, private windows, the quick exit, 112, opening hours.
import { h } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { onContinue } from "../socket.js";
import { app } from "../state.js";
import { emergency, heading, hoursText, notice, telHref } from "../view.js";

export function safety() {
  const hours = hoursText();
  return [
    heading(t("youth.safety.heading")),
    h("p", { class: "lead", text: t("youth.safety.intro") }),
    h(
      "section",
      { class: "card danger", "aria-labelledby": "s-danger" },
      h("h2", { id: "s-danger", text: t("youth.safety.danger_heading") }),
      h("p", {}, h("a", { href: telHref(emergency()), class: "tel", text: t("youth.safety.danger_body", { emergency: emergency() }) })),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "s-what" },
      h("h2", { id: "s-what", text: t("youth.safety.what_heading") }),
      h("p", { text: t("youth.safety.what_is") }),
      h("p", { text: t("youth.safety.what_isnt") }),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "s-report" },
      h("h2", { id: "s-report", text: t("youth.safety.report_heading") }),
      h("p", { text: t("youth.safety.report_body") }),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "s-history" },
      h("h2", { id: "s-history", text: t("youth.safety.history_heading") }),
      h("p", { text: t("youth.safety.history_body") }),
      h(
        "ul",
        { class: "browsers" },
        ["chrome", "safari", "firefox", "samsung"].map((b) => h("li", { text: t(`youth.safety.private_${b}`) })),
      ),
      h("p", { text: t("youth.safety.private_after") }),
    ),
    h(
      "section",
      { class: "card exit-info", "aria-labelledby": "s-exit" },
      h("h2", { id: "s-exit", text: t("youth.safety.exit_heading") }),
      h("p", { text: t("youth.safety.exit_body") }),
      h("p", { text: t("youth.exit.shift_hint") }),
      h("p", { class: "try", text: t("youth.safety.exit_try") }),
    ),
    hours
      ? h(
          "section",
          { class: "card", "aria-labelledby": "s-hours" },
          h("h2", { id: "s-hours", text: t("youth.safety.hours_heading") }),
          h("p", { text: hours }),
        )
      : null,
    notice(),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "go-on", onclick: onContinue, disabled: app.retrying, text: t("youth.safety.continue") })),
  ];
}
