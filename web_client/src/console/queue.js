// The queue panel and duty: who waits (with tags and how long), claim one,
// take the next; going on or off duty.
import * as e2e from "../lib/e2e.js";
import { call } from "../lib/calls.js";
import { formatDuration, h, keepFocus, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { queueArrivals } from "./alerts.js";
import { addConversation, select } from "./conversation.js";
import { idLabel, nameQueue } from "./labels.js";
import { derive } from "./queue_state.js";
import { app } from "./state.js";
import { errorText, paint, renderTags } from "./view.js";

export function renderQueue() {
  const panel = document.getElementById("queue-panel");
  if (!panel) return;
  nameQueue(app.queue.entries); // names kept while each waits (labels.js)
  keepFocus(() => {
    const { entries } = app.queue;
    const take = takeNextState();
    mount(
      panel,
      h("h2", { id: "queue-h" }, t("staff.queue.heading"), h("span", { id: "queue-total", role: "status", text: countText() })),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", id: "take-next", disabled: Boolean(take.why) || !take.ok, "aria-describedby": take.why ? "take-next-why" : null, onclick: onTakeNext, text: t("staff.queue.take_next") }),
      ),
      take.why ? h("p", { class: "hint", id: "take-next-why", text: take.why }) : null,
      !app.duty.on
        ? h("p", { text: t("staff.queue.off_duty") })
        : entries.length
          ? h("ul", { class: "queue-list", id: "queue-list" }, entries.map((e) => queueItem(e, take.full)))
          : h("p", { text: t("staff.queue.empty") }),
    );
  });
  queueArrivals(app.queue.entries); // the title; a tone and a notification for a youth not seen before
}

/** The count says what the list shows (waiting, offline), and how many more the server did not list. */
function countText() {
  const { total, entries, listedByServer } = app.queue;
  const offline = entries.filter((e) => e.offline).length;
  const more = Math.max(0, total - (listedByServer ?? entries.length));
  let text = t("staff.queue.total", { total: entries.length - offline });
  if (offline) text += ` · ${t("staff.queue.offline_count", { n: offline })}`;
  if (more) text += ` · ${t("staff.queue.more", { n: more })}`;
  return text;
}

/** Whether "take next" can succeed now, and if not, why (shown under it). */
function takeNextState() {
  const { total, entries, listedByServer } = app.queue;
  const full = app.duty.capacity > 0 && app.duty.load >= app.duty.capacity;
  if (!app.duty.on) return { ok: false, full, why: "" };
  if (full) return { ok: false, full, why: t("staff.queue.at_capacity", { load: app.duty.load, capacity: app.duty.capacity }) };
  // Take next passes over offline youths and the decoy screen (docs/design/queue.md).
  const claimable = entries.some((e) => !e.offline && (!e.state || e.state === "waiting"));
  const unlisted = total > (listedByServer ?? entries.length);
  if (claimable || unlisted) return { ok: true, full, why: "" };
  return { ok: false, full, why: entries.length ? t("staff.queue.none_claimable") : "" };
}

function queueItem(e, full) {
  const name = idLabel(e.conversation); // the name its tab will have (labels.js)
  const asking = app.confirmClaim === e.conversation;
  return h(
    "li",
    { class: ["queue-item", e.offline ? "offline" : ""], "data-conversation": e.conversation, "data-offline": e.offline ? "true" : "false" },
    h("span", { class: "pseudo", text: name }),
    " ",
    h("span", { class: "waited", "data-since": String(e.since || ""), text: waited(e.since) }),
    e.offline ? h("span", { class: "tag offline", text: t("staff.queue.offline") }) : null,
    e.state && e.state !== "waiting" ? h("span", { class: "tag", text: t(`staff.state.${e.state}`) }) : null,
    renderTags(e),
    asking
      ? h(
          "div",
          { class: "confirm", role: "group", "aria-labelledby": `confirm-q-${e.conversation}` },
          h("p", { id: `confirm-q-${e.conversation}`, text: t("staff.queue.offline_confirm") }),
          h("button", { type: "button", class: "primary", id: `claim-anyway-${e.conversation}`, onclick: () => onClaim(e, true), text: t("staff.queue.claim_anyway") }),
          h("button", { type: "button", class: "secondary", id: `claim-cancel-${e.conversation}`, onclick: () => askOffline(null), text: t("staff.queue.cancel") }),
        )
      : h("button", {
          type: "button",
          class: "secondary claim",
          id: `claim-${e.conversation}`,
          disabled: full,
          "aria-label": t("staff.queue.claim_label", { name }),
          onclick: () => (e.offline ? askOffline(e.conversation) : onClaim(e)),
          text: t("staff.queue.claim"),
        }),
  );
}

function askOffline(conversation) {
  app.confirmClaim = conversation;
  renderQueue();
  const next = document.getElementById(conversation ? `claim-anyway-${conversation}` : "take-next");
  if (next) next.focus();
}

function waited(since) {
  if (!Number.isFinite(since)) return "";
  return t("staff.queue.waited", { time: formatDuration((Date.now() - since) / 1000) });
}

/** Every second: the "waited" times count up. */
export function tickWaits() {
  for (const el of document.querySelectorAll(".waited[data-since]")) {
    const since = Number(el.getAttribute("data-since"));
    if (since) el.textContent = waited(since);
  }
}

export async function toggleDuty() {
  const reply = await call(app.socket, "duty", { on: !app.duty.on });
  if (reply.ok) {
    app.duty.on = Boolean(reply.on);
    setNotice(app, "");
  } else setNotice(app, errorText(reply.error));
  paint("bar");
  renderQueue();
  const btn = document.getElementById("duty");
  if (btn) btn.focus();
}

async function claimWith(event, payload, pseudonym) {
  if (app.busy) return;
  app.busy = true;
  const keys = e2e.keypair();
  // The list as it was: a queue update may take the entry out before the
  // reply comes, and its tags (languages, age, topic) go with the conversation.
  const listed = [...app.queue.entries];
  const reply = await call(app.socket, event, { ...payload, kx_pk: e2e.b64(keys.pk) });
  app.busy = false;
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    if (reply.error === "youth_offline" && payload.conversation) {
      // Gone offline since the list was drawn: ask, as for one shown offline.
      askOffline(payload.conversation);
      return;
    }
    setNotice(app, errorText(reply.error));
    return;
  }
  setNotice(app, "");
  const fromQueue = [...app.queue.entries, ...listed].find((e) => e.conversation === reply.conversation);
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || pseudonym || (fromQueue && fromQueue.pseudonym), fromQueue);
  } catch {
    setNotice(app, errorText("internal"));
    return;
  }
  entry.youthAway = reply.youth_online === false;
  derive(); // the claimed one is held here now, so no longer listed
  renderQueue();
  select(entry.conv.id);
}

function onClaim(queueEntry, offlineOk = false) {
  app.confirmClaim = null;
  const payload = { conversation: queueEntry.conversation };
  if (offlineOk) payload.offline_ok = true; // the counsellor was asked (docs/protocol.md, claim)
  return claimWith("claim", payload, queueEntry.pseudonym);
}

function onTakeNext() {
  return claimWith("take_next", {}, null);
}
