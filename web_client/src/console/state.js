// The console's state, in this page's memory only: the queue, duty, and one
// entry per open conversation (its keys, log, draft, timers and the tools'
// state). Invite secrets and keys are wiped when a conversation ends, on
// sign-out and on pagehide.
import * as e2e from "../lib/e2e.js";
import { clearComposerState, composerState } from "../lib/composer.js";

export const INVITE_ROLES = ["police", "health", "social_services"]; // protocol.md invite_create

export const app = {
  socket: null,
  duty: { on: false, load: 0, capacity: 0 },
  // total and offline: the server's counts for this counsellor's view of the
  // queue; entries: the listed part, without the conversations held here.
  queue: { total: 0, offline: 0, entries: [] },
  confirmClaim: null, // the offline youth whose claim waits for "claim anyway"
  handoverKeys: null, // this console's handover key pair (lib/handover.js), memory only
  convs: new Map(), // id -> entry (see newEntry)
  order: [], // conversation ids, oldest first
  selected: null,
  notice: "",
  // The socket: "connecting" (before its first connect), "unreachable" (the
  // first connect failed; socket.io keeps trying), "online", "lost" (after).
  link: "connecting",
  pending: [],
  busy: false,
  offers: new Map(), // conversation -> transfer_offer waiting for this counsellor's answer
};

/**
 * The server events by name (console/events.js), filled in at start-up by
 * main.js: a conversation that is added passes on the events that raced
 * ahead of its claim ack without importing the handlers.
 */
export const handlers = {};

/** One open conversation: the Conversation (keys) and all this page keeps about it. */
export function newEntry(conv, pseudonym, state, queueEntry) {
  const entry = {
    conv,
    pseudonym,
    state,
    reason: null,
    items: [],
    unread: 0,
    draft: "",
    composer: null, // typing and delivered (lib/composer.js), set below
    outbox: null,
    queueEntry: queueEntry || null, // language, age band, topic, urgent: as the youth chose
    youthAway: false, // the server says the youth's page has been gone a while (presence)
    handover: null, // {fromAlias, note, omitted, items} or {failed: true}: from a transfer
    handoverNote: "", // the note being written for a transfer    // Continuity and escalation, all in memory only:
    openTools: new Set(), // which <details> tools are open
    returnIssued: null, // expires_at of the return code offered (never the words)
    returnBusy: false,
    colleagues: null, // [{staff, alias, load, capacity}] after "show colleagues"
    transfer: null, // {state: "offered"|"declined"|"timed_out", alias}
    inviteRole: INVITE_ROLES[0],
    invites: new Map(), // invite id (b64) -> {id, macKey, role, expiresAt}: secrets never leave memory
    lastInvite: null, // {link, code, role, expiresAt, idB64}: shown for copying until used or expired
    requests: new Map(), // request -> {request, role, kxPk, verified, code, state, error}
    codes: new Map(), // liaison kx_pk -> comparison code
    partnerQuery: "",
    partners: null,
    referNote: "",
    reasons: new Set(),
    reasonsSaved: false,
  };
  entry.composer = composerState({
    target: () => (entry.state !== "ended" ? { socket: app.socket, conversation: conv.id } : null),
    // Paused: the youth is on the decoy screen; what is written waits for them.
    canType: () => entry.state === "active" || entry.state === "paused",
  });
  return entry;
}

// --- wiping ----------------------------------------------------------------------

function wipeInvites(entry) {
  for (const inv of entry.invites.values()) {
    e2e.wipe(inv.id);
    e2e.wipe(inv.macKey);
  }
  entry.invites.clear();
  entry.lastInvite = null; // the code (the secret) leaves the DOM on the next render
}

export function wipeEntry(entry) {
  if (entry.outbox) entry.outbox.close();
  wipeInvites(entry);
  entry.requests.clear();
  entry.handoverNote = "";
  entry.conv.wipe();
  clearComposerState(entry.composer);
}

/** A fresh handover key pair for a new connection; the old one is zeroed. */
export function newHandoverKeys(keys) {
  wipeHandoverKeys();
  app.handoverKeys = keys;
  return keys;
}

function wipeHandoverKeys() {
  if (!app.handoverKeys) return;
  e2e.wipe(app.handoverKeys.sk);
  e2e.wipe(app.handoverKeys.pk);
  app.handoverKeys = null;
}

export function wipeAll() {
  wipeHandoverKeys();
  app.confirmClaim = null;
  for (const entry of app.convs.values()) {
    wipeEntry(entry);
    entry.items = [];
  }
  app.convs.clear();
  app.order = [];
  app.selected = null;
  app.offers.clear();
}
