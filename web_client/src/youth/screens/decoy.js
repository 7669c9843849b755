// "Someone is coming": the decoy screen, a neutral list of notes, shown at
// once (synchronously) when the youth pauses; the server is told afterwards.
import { h } from "../../lib/dom.js";
import { raw, t } from "../../lib/i18n.js";
import { call } from "../../lib/calls.js";
import { resendUndelivered } from "../../lib/reattach.js";
import { app } from "../state.js";
import { go, heading, render } from "../view.js";

export function decoy() {
  const items = raw("youth.decoy.items");
  return [
    heading(t("youth.decoy.heading")),
    h("ul", { class: "notes" }, (Array.isArray(items) ? items : []).map((text) => h("li", { text }))),
    h("div", { class: "actions" }, h("button", { type: "button", class: "plain", id: "decoy-done", onclick: onUnpause, text: t("youth.decoy.done") })),
  ];
}

export function onPause() {
  const conv = app.conv;
  if (app.screen === "decoy" || (!conv && app.screen !== "returncode")) return;
  // The decoy comes first and synchronously; the server is told afterwards.
  app.resumeScreen = app.screen;
  app.paused = true;
  app.screen = "decoy";
  render(true);
  if (conv && !app.endedReason) call(app.socket, "pause", { conversation: conv.id, paused: true });
}

async function onUnpause() {
  const conv = app.conv;
  app.paused = false;
  const live = conv && conv.state !== "ended" && !app.endedReason;
  if (app.returnCode) {
    // A return code that arrived (or was on screen) behind the decoy: show it now.
    if (app.resumeScreen !== "returncode") app.codeReturnTo = app.resumeScreen;
    go("returncode");
  } else if (!live) {
    go("ended");
    return;
  } else go(app.resumeScreen || "chat");
  if (!live) return;
  const reply = await call(app.socket, "pause", { conversation: conv.id, paused: false });
  if (reply.ok && reply.state && app.conv === conv) {
    conv.state = reply.state;
    if (reply.state === "active" && app.resendSpan) {
      // A counsellor's console re-attached while the decoy was up: what it
      // could not open goes again now (events.js, counsellorsChanged).
      resendUndelivered(app.items, app.outbox, app.resendSpan);
      app.resendSpan = null;
    }
    if (reply.state === "active" && app.screen === "waiting") go("chat");
    else if (app.screen === "chat") render();
  }
}
