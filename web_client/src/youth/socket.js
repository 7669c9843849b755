// The youth page's connection: open it, get back into a live conversation
// after a drop (resume), the "server is full" refusal, and "continue" / "try
// again", which may have to connect again first. Server events go to the
// handlers in events.js (through state.handlers).
import { call, connect } from "../lib/calls.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { onTroubleChange, trouble } from "../lib/trouble.js";
import { isWiped } from "./exit.js";
import { setCounsellorAway } from "./events.js";
import { endConversation } from "./screens/ended.js";
import { YOUTH_TRANSPORTS } from "./socket-takeover.js";
import { app, handlers } from "./state.js";
import { go, render } from "./view.js";

/** Connect to /youth and route every event; called once, at start-up. */
export function openSocket() {
  // Takes over the socket the page's inline script opened (socket-takeover.js).
  const socket = connect("/youth", YOUTH_TRANSPORTS);
  app.socket = socket;
  onTroubleChange(onTrouble);
  expectStatusPush();
  socket.on("status", onStatusPush);
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  socket.on("connect_error", onConnectError);
  for (const event of Object.keys(handlers)) {
    socket.on(event, (data) => {
      if (isWiped()) return;
      if (!app.conv && app.starting) {
        app.pending.push([event, data]);
        return;
      }
      handlers[event](data);
    });
  }
}

/** Resolve when the socket is connected, refused as full, or after timeoutMs. */
function whenConnected(timeoutMs = 10000) {
  const socket = app.socket;
  if (!socket || socket.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function refused(err) {
      if (err && err.message === "server_full") done();
    }
    function done() {
      clearTimeout(timer);
      socket.off("connect", done);
      socket.off("connect_error", refused);
      resolve();
    }
    socket.on("connect", done);
    socket.on("connect_error", refused);
  });
}

/** Connect again after a refusal (socket.io does not retry a refused
 * namespace): resolves to null once connected, or to the next error. */
function connectAgain() {
  const socket = app.socket;
  if (socket.connected) return Promise.resolve(null);
  return new Promise((resolve) => {
    const done = (err) => {
      socket.off("connect", done);
      socket.off("connect_error", done);
      resolve(err || null);
    };
    socket.on("connect", done);
    socket.on("connect_error", done);
    socket.connect();
  });
}

// On slow 3G every call is a 2 s round trip (docs/performance.md, "The youth
// page on a slow phone"). The status asked for on connect is shared with a
// "continue" pressed meanwhile, and the safety page's "continue" goes on with
// a status this connection got in the last STATUS_FRESH_MS instead of asking
// again: a youth reads that page for a while. If the answer has changed since
// (nobody on duty any more), the start is refused as nobody_on_duty and the
// page goes to "closed" then. "Try again" on closed or full always asks.
const STATUS_FRESH_MS = 60000;
// The server sends the status right behind its connect answer, which saves
// the page one round trip before its first screen can go on. If that push has
// not come within STATUS_PUSH_WAIT_MS of connecting, the page asks.
const STATUS_PUSH_WAIT_MS = 5000;
let statusCall = null;
let statusAt = -Infinity;
let statusPush = null; // {promise, resolve, taken} for this connection's pushed status

function expectStatusPush() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  statusPush = { promise, resolve, taken: false };
}

function onStatusPush(data) {
  if (isWiped() || !data || typeof data !== "object") return;
  app.status = { ...data, ok: true };
  statusAt = performance.now();
  if (statusPush) statusPush.resolve(app.status);
}

/** The status pushed on connect, once per connection; null if it did not come. */
async function pushedStatus() {
  const push = statusPush;
  if (!push || push.taken) return null;
  push.taken = true;
  const timer = setTimeout(() => push.resolve(null), STATUS_PUSH_WAIT_MS);
  const status = await push.promise;
  clearTimeout(timer);
  return status;
}

function refreshStatus() {
  if (!statusCall) {
    statusCall = (async () => {
      // A slow phone may press "continue" before the socket is up: wait for it.
      await whenConnected();
      const pushed = await pushedStatus();
      if (pushed) return pushed;
      const reply = await call(app.socket, "status", {});
      if (!reply.ok) return null;
      app.status = reply;
      statusAt = performance.now();
      return reply;
    })().finally(() => {
      statusCall = null;
    });
  }
  return statusCall;
}

function freshStatus() {
  const fresh = app.socket && app.socket.connected && !app.full && performance.now() - statusAt < STATUS_FRESH_MS;
  return fresh ? app.status : null;
}

/** "Continue" on the safety page, "try again" when closed or full. */
export async function onContinue() {
  if (app.retrying) return;
  const from = app.screen;
  if (app.full) {
    // Refused as full, perhaps while reading the safety page (which stays: its
    // emergency number and advice matter most to a youth who cannot get in).
    // A place may have freed since: one fresh try before saying "full".
    app.retrying = true;
    render();
    const err = await connectAgain();
    app.retrying = false;
    if (isWiped()) return;
    if (err) {
      go("full");
      if (from === "full") setNotice(app, t(err.message === "server_full" ? "youth.full.still" : "youth.error.offline"));
      return;
    }
  }
  const status = (from === "safety" && freshStatus()) || (await refreshStatus());
  if (isWiped()) return;
  if (!status) {
    if (app.full) go("full"); // refused while we waited for the connection
    else setNotice(app, t("youth.error.offline"));
    return;
  }
  if (status.open) go("profile");
  else {
    app.closedInfo = { hours: status.hours, alternatives: status.alternatives };
    go("closed");
    if (from === "closed") setNotice(app, t("youth.closed.body"));
  }
}

async function onConnect() {
  app.online = true;
  app.full = null;
  app.fullTries = 0;
  clearTimeout(app.fullTimer);
  const conv = app.conv;
  if (conv && !conv.wiped) {
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    if (app.conv !== conv) return;
    if (reply.error === "unavailable") {
      // Nothing was done and the seat is kept: tried again (tryAgain below).
      resumeOwed = true;
      return;
    }
    if (!reply.ok) {
      endConversation("lost");
      return;
    }
    resumeOwed = false;
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
    } catch {
      endConversation("lost");
      return;
    }
    for (const box of conv.releaseHeld()) handlers.box(box);
    // A presence push may have been missed while this page was away.
    const counsellors = conv.others().filter((m) => m.role === "counsellor");
    for (const m of counsellors) setCounsellorAway(m.member, reply.counsellor_online === false);
    if (reply.position !== undefined) app.queue = { position: reply.position, eta: reply.eta_secs ?? null };
    if (app.outbox) app.outbox.kick();
    if (app.screen !== "decoy") render();
  } else {
    await refreshStatus();
    if (app.screen === "loading") go("safety");
    else if (app.screen === "safety" || app.screen === "closed") render();
  }
}

function onConnectError(err) {
  if (isWiped() || !err || err.message !== "server_full") return;
  const data = err.data || {};
  app.full = { hours: data.hours, alternatives: data.alternatives, emergency: data.emergency };
  if (app.conv && !app.conv.wiped) {
    // A live conversation lost its connection and the server is now full:
    // its place is kept for the grace period, so keep knocking (with backoff,
    // as socket.io would) and show "reconnecting" meanwhile.
    const delay = Math.min(15000, 1000 * 2 ** app.fullTries++) * (0.5 + Math.random());
    clearTimeout(app.fullTimer);
    app.fullTimer = setTimeout(() => {
      if (!isWiped() && !app.socket.connected) app.socket.connect();
    }, delay);
  } else if (app.screen === "profile") go("full");
  // Elsewhere the screen stays. The safety page is kept: the refusal comes
  // while the youth reads it, and its advice (private window, quick exit,
  // the emergency number) matters most to someone who cannot get in; its
  // "continue" tries once more and shows "full" if refused again. On "full"
  // and "closed" the button that asked for the try shows the answer.
}

function onDisconnect() {
  if (isWiped()) return;
  app.online = false;
  statusAt = -Infinity; // a status from before the drop is not this connection's
  expectStatusPush(); // the next connection's status comes with its connect answer
  if (app.screen === "waiting" || app.screen === "chat") {
    render();
  }
}

// --- the chat having trouble ---------------------------------------------------------
// A call answered `unavailable` (the shared live state out of reach,
// lib/trouble.js): the waiting and chat screens show whom to call
// (screens/help.js) and the page tries again by itself every
// TROUBLE_RETRY_MS until a call gets through, which ends the trouble: a
// resume still owed; else, with nothing unsent (the Outbox retries unsent
// messages itself), a `typing` that repeats what the others already see.
// The start screen has no such try: starting again is the youth's choice
// (and counts against the start budget); its "start" button is the retry.
const TROUBLE_RETRY_MS = 4000;
let troubleTimer = null;
let resumeOwed = false; // a resume answered `unavailable`: this connection is not in the chat yet

function onTrouble() {
  if (isWiped()) return;
  clearTimeout(troubleTimer);
  troubleTimer = trouble.on ? setTimeout(tryAgain, TROUBLE_RETRY_MS) : null;
  if (app.screen === "waiting" || app.screen === "chat") render();
}

async function tryAgain() {
  troubleTimer = null;
  const conv = app.conv;
  if (isWiped() || !trouble.on) return;
  if (conv && !conv.wiped && app.socket.connected) {
    if (resumeOwed) await onConnect();
    else if (!(app.outbox && app.outbox.queue.length)) {
      await call(app.socket, "typing", { conversation: conv.id, active: app.composer.typingSent });
    }
  }
  if (trouble.on && !isWiped() && !troubleTimer) troubleTimer = setTimeout(tryAgain, TROUBLE_RETRY_MS);
}
