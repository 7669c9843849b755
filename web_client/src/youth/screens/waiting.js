// In the queue: position and estimated wait, live; a returning youth's
// "wait for them or anyone?"; leave the queue.
import { call } from "../../lib/calls.js";
import { h, mount } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { setNotice } from "../../lib/notice.js";
import { app } from "../state.js";
import { connectionLine, errorText, go, heading, notice, render } from "../view.js";
import { troubleCard } from "./help.js";
import { onPause } from "./decoy.js";
import { endConversation } from "./ended.js";

export function waiting() {
  return [
    heading(t("youth.waiting.heading")),
    // A returning youth whose counsellor cannot take them now chooses; the
    // page says nothing else about that counsellor.
    app.choosing
      ? h(
          "section",
          { class: "card choose", id: "choose", "aria-labelledby": "ch-h" },
          h("h2", { id: "ch-h", tabindex: "-1", "data-autofocus": "", text: t("youth.choose.question") }),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "primary", id: "choose-wait", onclick: () => onChoose(true), text: t("youth.choose.wait") }),
            h("button", { type: "button", class: "secondary", id: "choose-anyone", onclick: () => onChoose(false), text: t("youth.choose.anyone") }),
          ),
        )
      : null,
    h("div", { class: "card queue", id: "queue-live", role: "status", "aria-live": "polite", "aria-atomic": "true" }, queueLines()),
    h("p", { text: t("youth.waiting.note") }),
    connectionLine(),
    troubleCard(),
    notice(),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", id: "pause", onclick: onPause, text: t("youth.chat.pause") }),
      h("button", { type: "button", class: "secondary", id: "leave", onclick: onLeaveQueue, text: t("youth.waiting.leave") }),
    ),
    h("p", { class: "hint", text: t("youth.chat.pause_hint") }),
  ];
}

/** Position and estimated wait, as the live region holds them. */
function queueLines() {
  const { position, eta } = app.queue;
  const etaText = eta === null ? "" : eta <= 60 ? t("youth.waiting.eta_soon") : t("youth.waiting.eta", { min: Math.ceil(eta / 60) });
  return [
    position ? h("p", { class: "position", text: t("youth.waiting.position", { n: position }) }) : null,
    etaText ? h("p", { class: "eta", text: etaText }) : null,
  ];
}

/** A `queue` push: only the live region changes (a screen reader reads it). */
export function refreshQueue() {
  if (app.screen !== "waiting") return;
  const live = document.getElementById("queue-live");
  if (live) mount(live, queueLines());
}

async function onLeaveQueue() {
  const conv = app.conv;
  if (!conv) return;
  await call(app.socket, "leave", { conversation: conv.id, reason: "done" });
  endConversation("left_queue");
}

async function onChoose(wait) {
  const conv = app.conv;
  if (!conv) return;
  const reply = await call(app.socket, "choose", { conversation: conv.id, wait });
  if (app.conv !== conv) return;
  if (reply.ok) {
    app.choosing = false;
    app.queue = { position: reply.position ?? app.queue.position, eta: reply.eta_secs ?? app.queue.eta };
    if (app.screen === "waiting") go("waiting");
  } else if (reply.error === "wrong_state") {
    app.choosing = false; // already on its way (claimed, or moved)
    if (app.screen === "waiting") render();
  } else setNotice(app, errorText(reply.error));
}
