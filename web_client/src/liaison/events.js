// What the server pushes to the liaison page: `joined` (seated) or
// `join_declined`, then rosters, boxes, typing and state like every member.
import { call } from "../lib/calls.js";
import { clearPeerTyping, onPeerTyping, scheduleDelivered } from "../lib/composer.js";
import { Conversation, Outbox } from "../lib/conversation.js";
import { t } from "../lib/i18n.js";
import { resendUndelivered, undeliveredSpan } from "../lib/reattach.js";
import { computeCodes, fail } from "./join.js";
import { app, forUs, wipeSecrets } from "./state.js";
import { appendItem, endWith, go, memberName, refreshItem, refreshTyping, render } from "./view.js";

export const HANDLERS = {
  joined(data) {
    const link = app.link;
    if (!data || !link || data.conversation !== link.conversation || app.conv) return;
    if (!app.request) {
      app.pendingJoined = data; // the join ack is still on its way
      return;
    }
    const conv = new Conversation({ id: data.conversation, member: data.member, resume: data.resume, keys: app.keys });
    try {
      conv.applyRoster({ state: data.state, epoch: data.epoch, members: data.members });
    } catch {
      conv.wipe();
      app.keys = null;
      return fail(t("liaison.failed", { code: "roster" }));
    }
    app.keys = null; // now owned (and wiped) by the conversation
    app.conv = conv;
    app.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), refreshItem);
    computeCodes();
    go("chat");
  },

  join_declined(data) {
    if (!data || !app.link || data.conversation !== app.link.conversation || app.conv) return;
    wipeSecrets();
    if (app.socket) app.socket.disconnect();
    go("declined");
  },

  roster(data) {
    if (!forUs(data)) return;
    let change;
    try {
      change = app.conv.applyRoster(data);
    } catch {
      appendItem({ kind: "bad" });
      return;
    }
    for (const m of change.joined) appendItem({ kind: "system", key: "liaison.joined", vars: { alias: memberName(m) } });
    for (const m of change.left) appendItem({ kind: "system", key: "liaison.left", vars: { alias: memberName(m) } });
    const back = typeof data.reattached === "string" && app.conv.memberById(data.reattached);
    if (back && back.role === "counsellor") {
      // The counsellor's console came back under a new key (a reload): the
      // comparison code with them changes, and what they never got goes again.
      appendItem({ kind: "system", key: "liaison.reconnected", vars: { alias: memberName(back) } });
      resendUndelivered(app.items, app.outbox, undeliveredSpan(data));
    }
    computeCodes();
    app.outbox.kick();
    for (const box of app.conv.releaseHeld()) HANDLERS.box(box);
    if (app.screen === "chat") render();
  },

  box(data) {
    if (!forUs(data)) return;
    const r = app.conv.openBox(data);
    if (r.kind === "ignored" || r.kind === "held") return;
    if (r.kind !== "replay") scheduleDelivered(app.composer, data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem({ kind: "system", key: "liaison.gap" });
    if (r.kind === "bad") appendItem({ kind: "bad" });
    else if (r.kind === "msg") {
      clearPeerTyping(app.composer, r.from, refreshTyping);
      appendItem({ kind: "in", from: r.from, alias: memberName(app.conv.memberById(r.from)), text: r.text, sentAt: r.sentAt });
    }
    // "card" and "intro" are for the youth; a liaison's page ignores them.
  },

  typing(data) {
    if (!forUs(data) || data.from === app.conv.member) return;
    onPeerTyping(app.composer, data.from, data.active, refreshTyping);
  },

  state(data) {
    if (!forUs(data)) return;
    if (data.state === "ended") {
      endWith(data.reason || "done");
      if (app.socket) app.socket.disconnect();
      return;
    }
    app.conv.state = data.state;
    if (app.screen === "chat") render();
  },
};
