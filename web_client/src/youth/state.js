// The youth page's state: one object in this page's memory, never in any
// browser storage. Every secret (keys, the return code, what was typed) lives
// here and is wiped when the conversation ends, on the quick exit and on
// pagehide (exit.js). Design notes: docs/design/web-client.md.
import { clearComposerState, composerState } from "../lib/composer.js";

export const app = {
  screen: "loading",
  socket: null,
  status: null, // the `status` reply
  closedInfo: null, // {hours, alternatives} when nobody is on duty
  full: null, // {hours, alternatives, emergency} while the server refuses us as full
  fullTimer: null, // the next try to get back into a live conversation
  fullTries: 0,
  retrying: false, // a fresh connect after a refusal is under way
  conv: null,
  outbox: null,
  queue: { position: null, eta: null },
  items: [], // chat log: {kind: "in"|"out"|"system"|"bad"|"card", ...}
  endedReason: null,
  paused: false,
  resumeScreen: null, // the screen to return to from the decoy
  draft: "",
  notice: "", // a one-line error or status on the current screen
  starting: false,
  pending: [], // events that arrived before the start ack
  composer: null, // typing and delivered (lib/composer.js), set below
  confirmEnd: false,
  online: true,
  // Continuity and escalation (docs/design/returning.md, invites.md).
  returnInput: "", // the return code as typed on the start screen, until start
  profileValues: {}, // the start screen's choices, kept across re-renders until start
  professional: false, // "I contact you at work": the consultation lane
  startError: "", // "bad_passphrase" | "rate_limited_code": shown on the start screen
  startRefused: false, // start refused (rate limit, server trouble): show whom to call
  choosing: false, // returning: "choose" → wait for them / anyone now
  returnCode: null, // {passphrase, language, expiresAt}: shown once, dropped when its screen is left
  codeReturnTo: null, // the screen to go back to from the return-code screen
  lastConvId: "", // a return_code racing the end of its conversation is still shown
  intros: new Map(), // request -> {role, kxPk, from}: E2E introductions by the counsellor
  consents: new Map(), // request -> {request, role, kxPk}: consent_request waiting for an answer
  introducedRoles: new Map(), // liaison kx_pk -> role, as the counsellor introduced it
  // Counsellor seats whose page has been gone a while (presence): what is
  // sent meanwhile waits on the server for them (lib/reattach.js).
  counsellorAway: new Set(), // member ids
  resendSpan: null, // {first, last}: dropped at a re-attach while the youth was on the decoy
};

app.composer = composerState({
  target: () => (app.conv && !app.conv.wiped ? { socket: app.socket, conversation: app.conv.id } : null),
  canType: () => app.conv.state === "active",
});

/**
 * The server events by name (youth/events.js). Filled in at start-up by
 * main.js, so that a screen can pass an event on (a roster in a consent
 * reply, events held until the start ack) without importing the handlers.
 */
export const handlers = {};

export function forUs(data) {
  return data && app.conv && data.conversation === app.conv.id;
}

export function wipeConversation() {
  if (app.outbox) app.outbox.close();
  app.outbox = null;
  if (app.conv) app.conv.wipe();
  app.conv = null;
  clearComposerState(app.composer);
  app.intros.clear();
  app.consents.clear();
  app.introducedRoles.clear();
  app.counsellorAway.clear();
  app.resendSpan = null;
  app.choosing = false;
}
