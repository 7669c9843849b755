// The end of a conversation: the screen that says why, and "start again".
import { h } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";
import { logItem } from "../log.js";
import { app, wipeConversation } from "../state.js";
import { go, heading, notice, render } from "../view.js";

// How long the ended screen keeps the last messages readable. Long enough to
// read the end message and a last line again (a number to call, say), short
// enough that a parent who picks up the phone later finds no conversation.
export const TRANSCRIPT_KEEP_MS = 60_000;
let transcriptTimer = 0;

export function ended() {
  const reason = app.endedReason || "done";
  const key = `youth.ended.${reason}`;
  return [
    heading(t("youth.ended.heading")),
    h("p", { class: "lead", text: t(key) === key ? t("youth.ended.done") : t(key) }),
    app.items.length ? h("ol", { class: "log", "aria-label": t("youth.chat.log_label") }, app.items.map((item) => logItem(item))) : null,
    h("p", { text: t("youth.ended.after") }),
    notice(),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "again", onclick: onStartAgain, text: t("youth.ended.again") })),
  ];
}

export function endConversation(reason) {
  // Unsent text goes with the conversation: empty the box too, or the next
  // render would take it back into app.draft.
  const ta = document.getElementById("composer");
  if (ta) ta.value = "";
  app.draft = "";
  app.endedReason = reason;
  wipeConversation();
  clearTimeout(transcriptTimer);
  transcriptTimer = setTimeout(dropTranscript, TRANSCRIPT_KEEP_MS);
  // Stay neutral on the decoy ("Done" shows the end); never pull the youth
  // away from a return code they are learning ("continue" shows the end).
  if (app.screen === "decoy" || app.screen === "returncode") return;
  go("ended");
}

/** The deadline: the messages leave memory and the DOM, the end message stays. */
function dropTranscript() {
  if (!app.items.length) return;
  app.items = [];
  if (app.screen === "ended") render();
}

function onStartAgain() {
  // A new connection for a new conversation: nothing of the old one survives.
  // The old deadline must not empty the next conversation's log.
  clearTimeout(transcriptTimer);
  wipeConversation();
  app.items = [];
  app.endedReason = null;
  app.returnCode = null;
  app.codeReturnTo = null;
  app.startError = "";
  app.profileValues = {};
  app.queue = { position: null, eta: null };
  app.socket.disconnect();
  app.socket.connect();
  go("safety");
}
