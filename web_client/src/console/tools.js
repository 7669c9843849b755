// The five tools under an open conversation (<details>, open state kept
// across re-renders): offer a return code, transfer to a colleague, invite
// a liaison (invites.js), refer to a partner (partners.js; the card goes end to end), and
// contact reasons.
import { call } from "../lib/calls.js";
import { h, NO_TRACE_INPUT, uid } from "../lib/dom.js";
import { raw, t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { session } from "../staff/session.js";
import { sealHandover } from "./handover.js";
import { inviteFields } from "./invites.js";
import { referFields } from "./partners.js";
import { reasonChecks } from "./reasons.js";
import { app } from "./state.js";
import { errorText, formatDateTime, refreshPane } from "./view.js";

const SLOW_CALL_MS = 30000; // offer_return runs a memory-hard hash on the server

function tool(entry, name, title, ...children) {
  return h(
    "details",
    {
      class: "tool",
      id: `tool-${name}`,
      open: entry.openTools.has(name),
      ontoggle: (e) => {
        if (e.target.open) entry.openTools.add(name);
        else entry.openTools.delete(name);
      },
    },
    h("summary", { text: title }),
    ...children,
  );
}

export function tools(entry) {
  const roleId = uid("r");
  const linkId = uid("l");
  const codeId = uid("c");
  const queryId = uid("q");
  const noteId = "handover-note";
  const topics = Object.keys(raw("codes.topics") || {});
  const transferText = entry.transfer
    ? entry.transfer.state === "offered"
      ? t("staff.tools.transfer_offered", { alias: entry.transfer.alias })
      : t(entry.transfer.state === "timed_out" ? "staff.tools.transfer_timed_out" : "staff.tools.transfer_declined")
    : "";
  return h(
    "div",
    { class: "tools" },
    tool(
      entry,
      "return",
      t("staff.tools.return_heading"),
      h("p", { class: "hint", text: t("staff.tools.return_hint") }),
      h("button", { type: "button", class: "secondary", id: "offer-return", disabled: entry.returnBusy, onclick: () => onOfferReturn(entry), text: t("staff.tools.return_offer") }),
      entry.returnIssued ? h("p", { id: "return-issued", role: "status", text: t("staff.tools.return_issued", { date: formatDateTime(entry.returnIssued) }) }) : null,
    ),
    tool(
      entry,
      "transfer",
      t("staff.tools.transfer_heading"),
      h("label", { for: noteId, text: t("staff.tools.handover_note") }),
      h("textarea", { id: noteId, name: "handover-note", class: "handover-note", rows: "3", maxlength: "2000", value: entry.handoverNote, ...NO_TRACE_INPUT, oninput: (e) => (entry.handoverNote = e.target.value) }),
      h("p", { class: "hint", text: t("staff.tools.handover_hint") }),
      h("button", { type: "button", class: "secondary", id: "transfer-list", onclick: () => onListColleagues(entry), text: t("staff.tools.transfer_list") }),
      entry.colleagues
        ? entry.colleagues.length
          ? h(
              "ul",
              { class: "pick-list", id: "colleagues" },
              entry.colleagues.map((c) =>
                h("li", {}, h("button", { type: "button", class: "secondary", "data-staff": String(c.staff), disabled: Boolean(entry.transfer && entry.transfer.state === "offered"), onclick: () => onTransfer(entry, c), text: t("staff.tools.transfer_to", { alias: c.alias, load: c.load, capacity: c.capacity }) })),
              ),
            )
          : h("p", { text: t("staff.tools.transfer_none") })
        : null,
      transferText ? h("p", { id: "transfer-state", role: "status", "data-state": entry.transfer.state, text: transferText }) : null,
    ),
    tool(entry, "invite", t("staff.tools.invite_heading"), ...inviteFields(entry, roleId, linkId, codeId)),
    tool(entry, "refer", t("staff.tools.refer_heading"), ...referFields(entry, queryId)),
    tool(
      entry,
      "reasons",
      t("staff.tools.reasons_heading"),
      h(
        "fieldset",
        { class: "reasons" },
        h("legend", { class: "visually-hidden", text: t("staff.tools.reasons_heading") }),
        reasonChecks(entry, topics, "reason"),
      ),
      h("button", { type: "button", class: "secondary", id: "reasons-save", onclick: () => onTag(entry), text: t("staff.tools.reasons_save") }),
      entry.reasonsSaved ? h("p", { id: "reasons-saved", role: "status", text: t("staff.tools.reasons_saved") }) : null,
    ),
  );
}

// --- actions ---------------------------------------------------------------------------

async function onOfferReturn(entry) {
  entry.returnBusy = true;
  refreshPane(entry);
  const reply = await call(app.socket, "offer_return", { conversation: entry.conv.id }, SLOW_CALL_MS);
  entry.returnBusy = false;
  // The reply says only when it expires: the words go to the youth's page alone.
  if (reply.ok) entry.returnIssued = Number(reply.expires_at) || null;
  else setNotice(app, errorText(reply.error));
  refreshPane(entry);
}

async function onListColleagues(entry) {
  const reply = await call(app.socket, "colleagues", {});
  if (!reply.ok) return setNotice(app, errorText(reply.error));
  entry.colleagues = Array.isArray(reply.colleagues) ? reply.colleagues : [];
  refreshPane(entry);
}

async function onTransfer(entry, colleague) {
  const payload = { conversation: entry.conv.id, to: colleague.staff };
  let box = null;
  try {
    box = sealHandover(entry, colleague, session.alias);
  } catch {
    return setNotice(app, errorText("too_large")); // the note alone does not fit
  }
  if (box) payload.handover = box;
  const reply = await call(app.socket, "transfer", payload);
  if (!reply.ok) return setNotice(app, errorText(reply.error));
  setNotice(app, box ? "" : t("staff.tools.handover_unavailable"));
  entry.handoverNote = "";
  entry.transfer = { state: "offered", alias: colleague.alias };
  refreshPane(entry);
}

async function onTag(entry) {
  const reply = await call(app.socket, "tag", { conversation: entry.conv.id, reasons: [...entry.reasons] });
  if (!reply.ok) return setNotice(app, errorText(reply.error));
  entry.reasons = new Set(Array.isArray(reply.reasons) ? reply.reasons : entry.reasons);
  entry.reasonsSaved = true;
  refreshPane(entry);
}
