// The chat service having trouble reaching its shared state (calls answer
// `unavailable`; lib/trouble.js): a banner at the top of the console until a
// call gets through again, and a try every TROUBLE_RETRY_MS while it lasts,
// so the banner goes by itself: resumes still owed after a reconnect (main.js
// keeps those conversations instead of ending them), else, on duty, a
// queue_sync (a whole queue view, harmless). Unsent messages are retried by
// their Outbox (lib/conversation.js). Off duty with nothing owed, the next
// call the counsellor makes ends it.
import { call } from "../lib/calls.js";
import { onTroubleChange, trouble, troubleBanner } from "../lib/trouble.js";
import { app } from "./state.js";

const TROUBLE_RETRY_MS = 4000;

/** resumeOwed(): resume the conversations whose resume answered `unavailable`. */
export function watchTrouble(resumeOwed) {
  troubleBanner("staff.trouble");
  let timer = null;
  const tryAgain = async () => {
    timer = null;
    if (!trouble.on) return;
    if (app.socket && app.socket.connected) {
      if ([...app.convs.values()].some((e) => e.resumeOwed && e.state !== "ended")) await resumeOwed();
      else if (app.duty.on) await call(app.socket, "queue_sync", {});
    }
    if (trouble.on && !timer) timer = setTimeout(tryAgain, TROUBLE_RETRY_MS);
  };
  onTroubleChange(() => {
    clearTimeout(timer);
    timer = trouble.on ? setTimeout(tryAgain, TROUBLE_RETRY_MS) : null;
  });
}
