// The queue panel and duty: who waits (with tags and how long), claim one,
// take the next; going on or off duty.
import * as e2e from "../lib/e2e.js";
import { call } from "../lib/calls.js";
import { formatDuration, h, keepFocus, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { addConversation, select } from "./conversation.js";
import { app } from "./state.js";
import { errorText, paint, renderTags } from "./view.js";

export function renderQueue() {
  const panel = document.getElementById("queue-panel");
  if (!panel) return;
  keepFocus(() => {
    const { total, entries } = app.queue;
    mount(
      panel,
      h("h2", { id: "queue-h" }, t("staff.queue.heading"), h("span", { id: "queue-total", role: "status", text: t("staff.queue.total", { total }) })),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "take-next", disabled: !app.duty.on || !total, onclick: onTakeNext, text: t("staff.queue.take_next") })),
      !app.duty.on
        ? h("p", { text: t("staff.queue.off_duty") })
        : entries.length
          ? h(
              "ul",
              { class: "queue-list", id: "queue-list" },
              entries.map((e) =>
                h(
                  "li",
                  { class: "queue-item", "data-conversation": e.conversation },
                  h("span", { class: "pseudo", text: e.pseudonym || e.conversation.slice(0, 6) }),
                  " ",
                  h("span", { class: "waited", "data-since": String(e.since || ""), text: waited(e.since) }),
                  e.state && e.state !== "waiting" ? h("span", { class: "tag", text: t(`staff.state.${e.state}`) }) : null,
                  renderTags(e),
                  h("button", {
                    type: "button",
                    class: "secondary claim",
                    id: `claim-${e.conversation}`,
                    "aria-label": t("staff.queue.claim_label", { name: e.pseudonym || e.conversation.slice(0, 6) }),
                    onclick: () => onClaim(e),
                    text: t("staff.queue.claim"),
                  }),
                ),
              ),
            )
          : h("p", { text: t("staff.queue.empty") }),
    );
  });
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
  const reply = await call(app.socket, event, { ...payload, kx_pk: e2e.b64(keys.pk) });
  app.busy = false;
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    setNotice(app, errorText(reply.error));
    return;
  }
  setNotice(app, "");
  const fromQueue = app.queue.entries.find((e) => e.conversation === reply.conversation);
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || pseudonym || (fromQueue && fromQueue.pseudonym), fromQueue);
  } catch {
    setNotice(app, errorText("internal"));
    return;
  }
  app.queue.entries = app.queue.entries.filter((e) => e.conversation !== reply.conversation);
  renderQueue();
  select(entry.conv.id);
}

function onClaim(queueEntry) {
  return claimWith("claim", { conversation: queueEntry.conversation }, queueEntry.pseudonym);
}

function onTakeNext() {
  return claimWith("take_next", {}, null);
}
