// The queue view this console holds (docs/protocol.md, "Queue views"): the
// server's whole view (`queue`), then its changes (`queue_delta`) applied in
// place. One map holds the entries; the list shown and every count derive
// from it (derive), so the count can never disagree with the list.
import { call } from "../lib/calls.js";
import { app } from "./state.js";

const view = { v: null, order: [], byId: new Map(), total: 0, offline: 0, syncing: false };

/** A whole view: replaces what was held. False if it is not one. */
export function takeSnapshot(data) {
  if (!data || !Array.isArray(data.entries)) return false;
  view.order = [];
  view.byId = new Map();
  for (const e of data.entries) {
    if (!e || typeof e.conversation !== "string" || view.byId.has(e.conversation)) continue;
    view.order.push(e.conversation);
    view.byId.set(e.conversation, e);
  }
  view.v = Number.isInteger(data.v) ? data.v : null;
  view.total = Number(data.total) || 0;
  view.offline = Number(data.offline) || 0;
  view.syncing = false;
  return true;
}

/**
 * A change: "applied"; "stale" (older than the view held, or a whole view is
 * on its way); "gap" (a change was missed: the whole view is asked for).
 */
export function takeDelta(data) {
  if (view.syncing) return "stale";
  if (!data || data.from_v !== view.v || view.v === null || !validDelta(data)) {
    if (data && Number.isInteger(data.v) && view.v !== null && data.v <= view.v) return "stale";
    resync();
    return "gap";
  }
  const gone = new Set(data.removed);
  view.order = view.order.filter((id) => !gone.has(id));
  for (const id of gone) view.byId.delete(id);
  for (const e of data.changed) if (view.byId.has(e.conversation)) view.byId.set(e.conversation, e);
  for (const a of [...data.added].sort((x, y) => x.at - y.at)) {
    if (view.byId.has(a.entry.conversation)) continue;
    view.order.splice(a.at, 0, a.entry.conversation);
    view.byId.set(a.entry.conversation, a.entry);
  }
  view.v = data.v;
  view.total = Number(data.total) || 0;
  view.offline = Number(data.offline) || 0;
  return "applied";
}

function validDelta(d) {
  return Number.isInteger(d.v) && Array.isArray(d.removed) && Array.isArray(d.changed) && Array.isArray(d.added) &&
    d.changed.every((e) => e && typeof e.conversation === "string") &&
    d.added.every((a) => a && Number.isInteger(a.at) && a.entry && typeof a.entry.conversation === "string");
}

/** Ask for the whole view again; changes are ignored until it comes. */
export async function resync() {
  if (view.syncing || !app.socket) return;
  view.syncing = true;
  const reply = await call(app.socket, "queue_sync", {});
  if (!reply.ok) view.syncing = false; // off duty or gone: a connect or duty on sends one
}

/** app.queue from the view: the entries listed, without conversations held here. */
export function derive() {
  const mine = app.convs;
  app.queue = {
    v: view.v,
    total: view.total,
    offline: view.offline,
    listedByServer: view.order.length,
    entries: view.order.map((id) => view.byId.get(id)).filter((e) => !mine.has(e.conversation)),
  };
  return app.queue;
}

/** Signed out: nothing of the queue is kept. */
export function resetQueue() {
  takeSnapshot({ v: null, total: 0, offline: 0, entries: [] });
  return derive();
}
