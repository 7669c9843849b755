// Careful endings: "End the conversation" first asks, in a dialog that also
// holds the wrap-up — offer a return code and tick the contact reasons
// (metadata only, the same `tag` call as the tools) — so nothing is forgotten
// and nothing ends by a slip of the mouse. Cancel (or Escape) closes the
// dialog and sends nothing. The dialog lives outside the pane, so the pane
// can redraw (a message arrives) while it is open.
import { call } from "../lib/calls.js";
import { h, mount } from "../lib/dom.js";
import { raw, t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { displayName } from "./labels.js";
import { reasonChecks } from "./reasons.js";
import { app } from "./state.js";
import { errorText, formatDateTime, refreshPane } from "./view.js";

const SLOW_CALL_MS = 30000; // offer_return runs a memory-hard hash on the server

let dialog = null;
let current = null; // {entry, onConfirm}

function ensureDialog() {
  if (dialog && dialog.isConnected) return dialog;
  dialog = h("dialog", { id: "end-dialog", class: "end-dialog", "aria-labelledby": "end-dialog-h" });
  dialog.addEventListener("close", () => {
    current = null;
  });
  document.body.appendChild(dialog);
  return dialog;
}

/** Ask before ending; onConfirm(entry) ends it (conversation.js). */
export function askEnd(entry, onConfirm) {
  current = { entry, onConfirm, busy: false };
  const d = ensureDialog();
  paint();
  if (!d.open) d.showModal();
  const cancel = document.getElementById("end-cancel");
  if (cancel) cancel.focus(); // the safe choice has the focus
}

/** Close the dialog (Cancel); with an entry, only if it asks about that one (it ended meanwhile). */
export function closeEndDialog(entry) {
  if (!dialog || !dialog.open) return;
  if (entry && entry.conv && current && current.entry !== entry) return;
  dialog.close();
}

function paint() {
  if (!current || !dialog) return;
  const { entry } = current;
  const topics = Object.keys(raw("codes.topics") || {});
  mount(
    dialog,
    h("h2", { id: "end-dialog-h", text: t("staff.end.heading", { name: displayName(entry) }) }),
    h("p", { text: t("staff.end.body") }),
    h(
      "section",
      { class: "end-return" },
      h("h3", { text: t("staff.tools.return_heading") }),
      h("p", { class: "hint", text: t("staff.tools.return_hint") }),
      entry.returnIssued
        ? h("p", { id: "end-return-issued", role: "status", text: t("staff.tools.return_issued", { date: formatDateTime(entry.returnIssued) }) })
        : h("button", { type: "button", class: "secondary", id: "end-return", disabled: entry.returnBusy || entry.state !== "active", onclick: () => onReturn(entry), text: t("staff.tools.return_offer") }),
    ),
    h(
      "fieldset",
      { class: "reasons end-reasons" },
      h("legend", { text: t("staff.tools.reasons_heading") }),
      reasonChecks(entry, topics, "end-reason"),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "secondary", id: "end-cancel", onclick: () => closeEndDialog(), text: t("staff.end.cancel") }),
      h("button", { type: "button", class: "danger-btn", id: "end-confirm", disabled: current.busy, onclick: onConfirm, text: t("staff.end.confirm") }),
    ),
  );
}

async function onReturn(entry) {
  entry.returnBusy = true;
  paint();
  const reply = await call(app.socket, "offer_return", { conversation: entry.conv.id }, SLOW_CALL_MS);
  entry.returnBusy = false;
  // The reply says only when it expires: the words go to the youth's page alone.
  if (reply.ok) entry.returnIssued = Number(reply.expires_at) || null;
  else setNotice(app, errorText(reply.error));
  if (current && current.entry === entry) paint();
  refreshPane(entry);
}

async function onConfirm() {
  if (!current || current.busy) return;
  const job = current;
  job.busy = true;
  paint();
  const { entry } = job;
  // The reasons go first: after the end the conversation takes no more tags.
  if (entry.reasons.size && !entry.reasonsSaved) {
    const reply = await call(app.socket, "tag", { conversation: entry.conv.id, reasons: [...entry.reasons] });
    if (reply.ok) entry.reasonsSaved = true;
    else setNotice(app, errorText(reply.error));
  }
  closeEndDialog();
  await job.onConfirm(entry);
}
