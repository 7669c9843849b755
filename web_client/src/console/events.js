// What the server pushes to the console (docs/protocol.md, /staff): rosters,
// boxes, typing and state of the conversations held here, transfer offers
// and answers, join requests and the youth's consent answers, the queue, duty and
// partner-directory changes.
import { onPeerTyping, scheduleDelivered } from "../lib/composer.js";
import { keepFocus } from "../lib/dom.js";
import { messageArrived } from "./alerts.js";
import { markEnded, peerWrote, refreshTyping, renderConvList, renderPane } from "./conversation.js";
import { takeJoinRequest } from "./invites.js";
import { appendItem } from "./log.js";
import { renderOffers } from "./offers.js";
import { onPartnersChanged } from "./partners.js";
import { renderQueue } from "./queue.js";
import { derive, takeDelta, takeSnapshot } from "./queue_state.js";
import { reattachSeats } from "./reattach.js";
import { app } from "./state.js";
import { aliasOf, memberName, paint, refreshPane } from "./view.js";

export const HANDLERS = {
  roster(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry || entry.state === "ended") return;
    let change;
    try {
      change = entry.conv.applyRoster(data);
    } catch {
      appendItem(entry, { kind: "bad" });
      return;
    }
    for (const m of change.joined) appendItem(entry, { kind: "system", key: "staff.convs.joined", vars: { alias: memberName(m) } });
    for (const m of change.left) appendItem(entry, { kind: "system", key: "staff.convs.left", vars: { alias: memberName(m) } });
    for (const m of change.joined) {
      // A liaison we admitted is seated: its comparison code moves to the member list.
      const r = [...entry.requests.values()].find((q) => q.kxPk === m.kx_pk);
      if (m.role === "liaison" && r) {
        if (r.code) entry.codes.set(m.kx_pk, r.code);
        entry.requests.delete(r.request);
      }
    }
    if ((change.joined.length || change.left.length) && app.selected === entry.conv.id) keepFocus(renderPane);
    if (data.state && data.state !== entry.state && data.state !== "ended") {
      entry.state = data.state;
      renderConvList();
      if (app.selected === entry.conv.id) renderPane();
    }
    entry.outbox.kick();
    for (const box of entry.conv.releaseHeld()) HANDLERS.box(box);
  },

  box(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry || entry.state === "ended") return;
    const r = entry.conv.openBox(data);
    if (r.kind === "ignored" || r.kind === "held") return;
    if (r.kind !== "replay") scheduleDelivered(entry.composer, data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem(entry, { kind: "system", key: "staff.convs.gap" });
    if (r.kind === "bad") appendItem(entry, { kind: "bad" });
    else if (r.kind === "msg") {
      peerWrote(entry, r.from);
      appendItem(entry, { kind: "in", from: r.from, alias: aliasOf(entry, r.from), text: r.text, sentAt: r.sentAt });
    } else return;
    if (app.selected !== entry.conv.id || document.hidden) {
      entry.unread += 1;
      renderConvList();
      messageArrived(entry); // a tone, the title, a notification without content
    }
  },

  typing(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry || data.from === entry.conv.member) return;
    onPeerTyping(entry.composer, data.from, data.active, () => refreshTyping(entry));
  },

  state(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry) return;
    if (data.state === "ended") {
      markEnded(entry, data.reason);
      return;
    }
    entry.state = data.state;
    renderConvList();
    if (app.selected === entry.conv.id) keepFocus(renderPane); // renderPane keeps the draft
  },

  transfer_offer(data) {
    if (typeof data.conversation !== "string") return;
    app.offers.set(data.conversation, data);
    renderOffers();
  },

  transfer_declined(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry) return;
    entry.transfer = { state: data.reason === "timed_out" ? "timed_out" : "declined", alias: entry.transfer ? entry.transfer.alias : "" };
    refreshPane(entry);
  },

  join_request(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry || entry.state === "ended" || typeof data.request !== "string" || entry.requests.has(data.request)) return;
    takeJoinRequest(entry, data);
    if (app.selected !== entry.conv.id) {
      entry.unread += 1;
      renderConvList();
    }
    refreshPane(entry);
  },

  consent_declined(data) {
    const entry = app.convs.get(data.conversation);
    const r = entry && entry.requests.get(data.request);
    if (!r) return;
    r.state = "declined";
    refreshPane(entry);
  },

  // The whole queue view, then its changes (queue_state.js). What is shown
  // is counted from what is listed (queue.js); total and offline only say
  // how many more the server left out.
  queue(data) {
    if (!takeSnapshot(data)) return;
    derive();
    renderQueue();
  },

  queue_delta(data) {
    if (takeDelta(data) !== "applied") return;
    derive();
    renderQueue();
  },

  presence(data) {
    const entry = app.convs.get(data.conversation);
    const m = entry && entry.conv.memberById(data.member);
    if (!m || m.role !== "youth" || entry.state === "ended") return;
    entry.youthAway = data.online === false;
    renderConvList();
    refreshPane(entry);
  },

  // The seats this account holds, on every connect: after a reload they are
  // taken back under new keys (reattach.js).
  seats(data) {
    reattachSeats(data);
  },

  partners_changed() {
    onPartnersChanged();
  },

  duty(data) {
    if (!data) return;
    app.duty = { on: Boolean(data.on), load: Number(data.load) || 0, capacity: Number(data.capacity) || 0 };
    paint("bar");
    renderQueue();
  },
};
