// The counsellor console: sign in (password + TOTP), duty toggle, the live
// queue, claim / take next, several end-to-end encrypted conversations at once
// with unread markers and typing indicators, end. One crypto_kx key pair per
// conversation, memory only, wiped when the conversation ends or the page goes.
// Continuity and escalation (docs/design/returning.md, invites.md): offer a
// return code, warm transfer, liaison invites (the invite secret lives only in
// this page's memory and the invite code), referral cards, contact-reason tags.
// Only the alias (set on the account by an admin) ever reaches a youth: this
// page never sends a name, only kx_pk and ciphertext.
//
// This module signs in, connects, draws the bar and wires the parts:
//   state.js         the state; one entry per conversation; wiping
//   view.js          the parts by name, the whole page, shared helpers
//   queue.js         duty, the queue, claim and take next
//   conversation.js  the list, the open pane, a conversation's life
//   log.js           the log's items
//   tools.js         return code, transfer, refer, reasons
//   invites.js       liaison invites, join requests, admit
//   offers.js        incoming transfer offers
//   events.js        what the server pushes
//   alerts.js        arrivals: tone, tab title, notifications; the bar's toggles
//   labels.js        conversation names ("Blue 14"), nicknames
//   canned.js        the centre's canned responses into the message box
//   wrapup.js        the end dialog (confirm, return code, reasons)
//   keys.js          keyboard shortcuts and their help overlay
//   reattach.js      after a reload: the seats this account holds, taken back under new keys
// Imports point one way, from main down to state (tests/unit/test_web_client_layout.py
// refuses a cycle): parts redraw each other through `painters`, and a new
// conversation replays early events through `handlers`, both filled here.
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import { call, connect } from "../lib/calls.js";
import { conversationTestSurface } from "../lib/conversation.js";
import { h, mount } from "../lib/dom.js";
import { onLangChange, t } from "../lib/i18n.js";
import { languageSelect, logout, me, renderLogin, session } from "../staff/session.js";
import { alertButtons } from "./alerts.js";
import { setCanned } from "./canned.js";
import { markEnded, renderConvList, renderPane } from "./conversation.js";
import { HANDLERS } from "./events.js";
import { expireInvites } from "./invites.js";
import { helpButton, installKeys } from "./keys.js";
import { renderOffers } from "./offers.js";
import { renderQueue, tickWaits, toggleDuty } from "./queue.js";
import { resetQueue } from "./queue_state.js";
import { watchTrouble } from "./trouble.js";
import * as handover from "../lib/handover.js";
import { app, handlers, newHandoverKeys, wipeAll } from "./state.js";
import { bar, painters, renderConsole } from "./view.js";

const ROLES = ["counsellor"];
const PENDING_MAX = 100; // events for a conversation whose claim ack is still on its way

Object.defineProperty(globalThis, "cv1", {
  value: Object.freeze({ ...e2e.testSurface, conversation: conversationTestSurface, invite: invite.inviteTestSurface }),
});

window.addEventListener("pagehide", () => {
  wipeAll();
  if (app.socket) app.socket.disconnect();
});

function renderBar() {
  const dutyButton = h("button", {
    type: "button",
    id: "duty",
    class: "secondary",
    "aria-pressed": app.duty.on ? "true" : "false",
    // Not before the socket is up: a click then could only answer "offline",
    // and a counsellor who clicks right after signing in would stay off duty.
    disabled: app.link !== "online",
    onclick: toggleDuty,
    text: t("staff.duty.toggle"),
  });
  mount(
    bar,
    h("h1", { text: t("staff.console_title") }),
    h("span", { class: "who-am-i", text: t("staff.signed_in", { username: session.username, alias: session.alias }) }),
    h(
      "span",
      { class: "duty" },
      dutyButton,
      h("span", { id: "duty-state", role: "status", text: `${app.duty.on ? t("staff.duty.on") : t("staff.duty.off")}${app.duty.capacity ? ` ${t("staff.duty.load", { load: app.duty.load, capacity: app.duty.capacity })}` : ""}` }),
    ),
    alertButtons(),
    helpButton(),
    languageSelect(),
    h("button", { type: "button", class: "secondary", id: "logout", onclick: onLogout, text: t("staff.logout") }),
  );
}

Object.assign(painters, { bar: renderBar, offers: renderOffers, queue: renderQueue, convList: renderConvList, pane: renderPane });
Object.assign(handlers, HANDLERS);

async function onLogout() {
  wipeAll();
  if (app.socket) app.socket.disconnect();
  app.socket = null;
  app.duty = { on: false, load: 0, capacity: 0 };
  resetQueue();
  setCanned([]);
  await logout();
  start(t("staff.logout"));
}

async function onConnect() {
  app.link = "online";
  // A handover key for this connection (the server forgets it with the
  // connection): colleagues seal a transfer's history to it.
  const keys = newHandoverKeys(handover.newKeys());
  call(app.socket, "handover_key", { kx_pk: e2e.b64(keys.pk) });
  // After a dropped connection, take every live conversation back.
  await resumeConversations(false);
  renderConsole();
}

/**
 * Resume every live conversation (after a connect), or only those whose
 * resume answered `unavailable` (the shared live state out of reach: nothing
 * was done and the seat is kept, so the conversation stays and is tried
 * again by trouble.js).
 */
async function resumeConversations(onlyOwed) {
  for (const entry of app.convs.values()) {
    if (entry.state === "ended" || (onlyOwed && !entry.resumeOwed)) continue;
    const conv = entry.conv;
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    entry.resumeOwed = reply.error === "unavailable";
    if (entry.resumeOwed) continue;
    if (!reply.ok) {
      markEnded(entry, "timed_out");
      continue;
    }
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
      entry.state = reply.state || entry.state;
      entry.youthAway = reply.youth_online === false; // a presence push may have been missed
    } catch {
      markEnded(entry, "timed_out");
      continue;
    }
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    entry.outbox.kick();
  }
}

// --- start-up ----------------------------------------------------------------------------

async function start(message = "") {
  document.title = t("staff.console_title");
  const loginBar = () => mount(bar, h("h1", { text: t("staff.console_title") }), languageSelect());
  loginBar();
  let who = await me();
  if (!who || !ROLES.includes(who.role)) {
    await renderLogin(document.getElementById("main"), ROLES, message, () => {
      document.title = t("staff.console_title");
      loginBar();
    });
    who = await me(); // the session's data (the centre's canned texts) under the new cookie
  }
  setCanned(who && who.canned);
  await e2e.ready();
  app.link = "connecting"; // a new socket (sign-in, or again after sign-out)
  const socket = connect("/staff");
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", () => {
    app.link = "lost";
    renderConsole();
  });
  socket.on("connect_error", (err) => {
    if (err && err.message === "session_required") {
      socket.disconnect();
      wipeAll();
      start(t("staff.session_expired"));
    } else if (app.link === "connecting" && app.socket === socket) {
      // Not "connecting …" for ever: a counsellor at the start of a shift
      // should see that the server is not answering (and call IT), not wait.
      // socket.io keeps trying by itself; this only changes what is shown.
      // (A refusal by the server other than session_required — a foreign
      // Origin behind a misconfigured proxy — is not retried by socket.io and
      // still shows this text: docs/design/web-client.md.)
      app.link = "unreachable";
      renderConsole();
    }
  });
  for (const event of Object.keys(HANDLERS)) {
    socket.on(event, (data) => {
      if (!data || typeof data !== "object") return;
      const needsConv = ["roster", "box", "typing", "state", "presence"].includes(event);
      if (needsConv && !app.convs.has(data.conversation)) {
        // Possibly a claim whose ack has not arrived yet; keep briefly.
        app.pending.push([event, data]);
        if (app.pending.length > PENDING_MAX) app.pending.shift();
        return;
      }
      HANDLERS[event](data);
    });
  }
  renderConsole();
}

onLangChange(() => {
  if (!app.socket) return;
  const ta = document.getElementById("composer");
  const entry = app.selected && app.convs.get(app.selected);
  if (entry && ta) entry.draft = ta.value;
  renderConsole();
});

document.addEventListener("visibilitychange", () => {
  // Coming back to the tab: the open conversation has now been seen.
  const entry = !document.hidden && app.selected && app.convs.get(app.selected);
  if (entry && entry.unread) {
    entry.unread = 0;
    renderConvList();
  }
});

installKeys();
watchTrouble(async () => {
  await resumeConversations(true);
  renderConsole();
});
setInterval(() => {
  tickWaits();
  expireInvites();
}, 1000);
start();
