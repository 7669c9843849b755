// The liaison page's state, in memory only: the invite's MAC key and id (the
// secret itself is wiped at once), this page's key pair, the conversation.
// Everything is wiped when the page goes or the liaison's part ends.
import * as e2e from "../lib/e2e.js";
import { clearComposerState, composerState } from "../lib/composer.js";

export const app = {
  screen: "loading", // loading | enter | joining | waiting | failed | declined | chat | ended
  link: null, // {macKey, inviteId, conversation}: from the secret, which is wiped at once
  keys: null, // this page's crypto_kx pair, until it becomes the conversation's
  socket: null,
  conv: null,
  outbox: null,
  request: "",
  role: "",
  pendingJoined: null, // a `joined` racing the join ack
  items: [],
  codes: new Map(), // counsellor kx_pk -> comparison code
  composer: null, // typing and delivered (lib/composer.js), set below
  failText: "",
  endedReason: "",
  draft: "",
  notice: "",
  online: true,
};

app.composer = composerState({ target: () => (app.conv ? { socket: app.socket, conversation: app.conv.id } : null) });

/** The server events by name (liaison/events.js), filled in at start-up by main.js. */
export const handlers = {};

export const forUs = (data) => data && app.conv && data.conversation === app.conv.id;

export function wipeSecrets() {
  if (app.link) {
    e2e.wipe(app.link.macKey);
    e2e.wipe(app.link.inviteId);
  }
  app.link = null;
  if (app.outbox) app.outbox.close();
  app.outbox = null;
  if (app.conv) app.conv.wipe();
  else if (app.keys) {
    e2e.wipe(app.keys.sk);
    e2e.wipe(app.keys.pk);
  }
  app.conv = null;
  app.keys = null;
  app.codes.clear();
  clearComposerState(app.composer);
}
