// A reload (or a crashed laptop, or the console opened on another machine)
// loses every key and resume secret this page held: they live in its memory
// only. The seats stay on the server for grace_secs, and on every connect the
// server lists them (`seats`). Each one this page does not hold is taken back
// under a new key pair (`reattach`: the session's account is the seat's, no
// resume secret needed); the youth's page is told the counsellor is back.
// What was said before is gone for this page: it was never stored anywhere,
// and the log says so (docs/protocol.md, "Re-attach after a reload").
import * as e2e from "../lib/e2e.js";
import { call } from "../lib/calls.js";
import { setNotice } from "../lib/notice.js";
import { addConversation, renderConvList, renderPane, select } from "./conversation.js";
import { app } from "./state.js";
import { errorText } from "./view.js";

const asking = new Set(); // conversations whose reattach call is on its way

/** The `seats` event: take back every seat this page does not hold. */
export async function reattachSeats(data) {
  if (!data || !Array.isArray(data.conversations)) return;
  const socket = app.socket;
  let first = null;
  for (const seat of data.conversations) {
    const id = seat && typeof seat.conversation === "string" ? seat.conversation : null;
    // One held here is resumed with its own secret (main.js, onConnect).
    if (!id || app.convs.has(id) || asking.has(id)) continue;
    asking.add(id);
    try {
      const entry = await reattachOne(socket, id, typeof seat.pseudonym === "string" ? seat.pseudonym : "");
      if (entry && !first) first = entry;
    } finally {
      asking.delete(id);
    }
  }
  if (!first) return;
  renderConvList();
  if (!app.selected) select(first.conv.id);
  else renderPane();
}

async function reattachOne(socket, id, pseudonym) {
  const keys = e2e.keypair();
  const reply = await call(socket, "reattach", { conversation: id, kx_pk: e2e.b64(keys.pk) });
  if (!reply.ok || app.socket !== socket || app.convs.has(id)) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    // Gone meanwhile (ended, timed out): nothing to show. Anything else is news.
    if (!reply.ok && reply.error !== "unknown_conversation" && reply.error !== "not_member") setNotice(app, errorText(reply.error));
    return null;
  }
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || pseudonym, null);
  } catch {
    setNotice(app, errorText("internal"));
    return null;
  }
  entry.youthAway = reply.youth_online === false;
  // First in the log: nothing from before this page came back is shown.
  entry.items.unshift({ kind: "system", key: "staff.convs.reloaded" });
  return entry;
}
