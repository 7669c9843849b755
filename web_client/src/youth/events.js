// What the server pushes to the youth page (docs/protocol.md, "Server →
// youth"): queue position, rosters, boxes, typing, state, and the
// continuity and escalation events (return code, choose, consent_request).
// Each ignores an event for another conversation.
import { clearPeerTyping, onPeerTyping, scheduleDelivered } from "../lib/composer.js";
import { resendUndelivered, settleHeld, undeliveredSpan } from "../lib/reattach.js";
import { aliasOf, appendItem, memberLabel, refreshItem, refreshTyping } from "./log.js";
import { endConversation } from "./screens/ended.js";
import { refreshQueue } from "./screens/waiting.js";
import { app, forUs } from "./state.js";
import { go, render } from "./view.js";

export const HANDLERS = {
  queue(data) {
    if (!forUs(data)) return;
    app.queue = { position: data.position ?? app.queue.position, eta: data.eta_secs ?? app.queue.eta };
    refreshQueue();
  },

  roster(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    let change;
    try {
      change = conv.applyRoster(data);
    } catch {
      appendItem({ kind: "bad" });
      return;
    }
    for (const m of change.joined) appendItem({ kind: "system", key: "youth.chat.joined", vars: { alias: memberLabel(m) } });
    for (const m of change.left) appendItem({ kind: "system", key: "youth.chat.left", vars: { alias: memberLabel(m) } });
    counsellorsChanged(change, data);
    if (app.outbox) app.outbox.kick();
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    if (data.state === "ended") return;
    if (app.screen === "waiting" && conv.others().length) go("chat");
    else if (app.screen === "chat") {
      render();
    } else if (app.screen === "decoy") app.resumeScreen = conv.others().length ? "chat" : app.resumeScreen;
  },

  box(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    const r = conv.openBox(data);
    if (r.kind === "ignored" || r.kind === "held") return;
    if (r.kind !== "replay") scheduleDelivered(app.composer, data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem({ kind: "system", key: "youth.chat.gap" });
    if (r.kind === "bad") appendItem({ kind: "bad" });
    else if (r.kind === "msg") {
      clearPeerTyping(app.composer, r.from, refreshTyping);
      appendItem({ kind: "in", from: r.from, alias: aliasOf(r.from), text: r.text, sentAt: r.sentAt });
    } else if (r.kind === "handed_over") {
      appendItem({ kind: "system", key: "youth.chat.handed_over", vars: { alias: aliasOf(r.from) } });
    } else if (r.kind === "card") {
      appendItem({ kind: "card", from: r.from, alias: aliasOf(r.from), card: r.card, sentAt: r.sentAt });
    } else if (r.kind === "intro") {
      // Kept in memory only, to check the consent_request that follows.
      if (app.intros.size >= 20) app.intros.delete(app.intros.keys().next().value);
      app.intros.set(r.request, { role: r.role, kxPk: r.kxPk, from: r.from });
      if (app.consents.has(r.request) && app.screen === "chat") {
        render();
      }
    }
  },

  // A counsellor seat's page gone a while, or back (docs/protocol.md, presence).
  presence(data) {
    if (!forUs(data)) return;
    const m = app.conv.memberById(data.member);
    if (!m || m.role !== "counsellor") return;
    setCounsellorAway(m.member, data.online === false);
    if (app.screen === "chat") render();
  },

  typing(data) {
    if (!forUs(data) || data.from === app.conv.member) return;
    onPeerTyping(app.composer, data.from, data.active, refreshTyping);
  },

  state(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    if (data.state === "ended") {
      endConversation(data.reason || "done");
      return;
    }
    conv.state = data.state;
    if (data.state === "paused") return;
    if (data.state === "active" && app.screen === "waiting" && conv.others().length) go("chat");
    else if (app.screen === "chat") {
      render();
    }
  },

  return_code(data) {
    // Shown once; also when it races the end of its own conversation.
    if (!data || typeof data.passphrase !== "string" || !data.passphrase) return;
    if (!forUs(data) && !(app.lastConvId && data.conversation === app.lastConvId)) return;
    const language = typeof data.language === "string" && /^[a-z]{2,3}$/.test(data.language) ? data.language : "";
    app.returnCode = { passphrase: data.passphrase, language, expiresAt: Number(data.expires_at) || 0 };
    if (app.screen === "decoy") {
      if (app.resumeScreen !== "returncode") app.codeReturnTo = app.resumeScreen;
      app.resumeScreen = "returncode";
      return;
    }
    if (app.screen !== "returncode") app.codeReturnTo = app.screen;
    go("returncode");
  },

  choose(data) {
    if (!forUs(data)) return;
    app.choosing = true;
    if (app.screen === "waiting") go("waiting");
  },

  consent_request(data) {
    if (!forUs(data) || typeof data.request !== "string" || typeof data.kx_pk !== "string") return;
    app.consents.set(data.request, { request: data.request, role: String(data.role || ""), kxPk: data.kx_pk });
    if (app.screen !== "chat") return; // shown when the youth is back in the chat
    render();
    const hd = document.getElementById(`consent-h-${data.request}`);
    if (hd) {
      hd.scrollIntoView({ block: "nearest" });
      hd.focus({ preventScroll: true });
    }
  },
};

/** Mark a counsellor seat away or back; back: what was held reaches them now. */
export function setCounsellorAway(member, away) {
  if (away) app.counsellorAway.add(member);
  else if (app.counsellorAway.delete(member) && !app.counsellorAway.size) settleHeld(app.items, "sent", refreshItem);
}

/**
 * A roster changed the counsellors: one that came back under a new key
 * (a reload of their console) is announced and gets again what was dropped
 * for its lost key; one that left took what was held for it along.
 */
function counsellorsChanged(change, data) {
  const conv = app.conv;
  for (const m of change.left) {
    if (!app.counsellorAway.delete(m.member)) continue;
    if (!app.counsellorAway.size) settleHeld(app.items, "failed", refreshItem);
  }
  const back = typeof data.reattached === "string" && conv.memberById(data.reattached);
  if (!back || back.role !== "counsellor") return;
  appendItem({ kind: "system", key: "youth.chat.reconnected", vars: { alias: memberLabel(back) } });
  setCounsellorAway(back.member, false);
  const span = undeliveredSpan(data);
  // Behind the decoy the youth sends nothing (the server would refuse it):
  // those go when the youth leaves it (screens/decoy.js).
  if (app.paused || conv.state === "paused") app.resendSpan = span || app.resendSpan;
  else resendUndelivered(app.items, app.outbox, span);
}
