// A conversation's log in the console: messages, system lines, boxes that
// failed to verify, and the contact cards this counsellor sent.
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { itemMeta, renderItem } from "../lib/messages.js";
import { app } from "./state.js";

function look(entry) {
  const self = {
    you: () => t("staff.convs.you"),
    someone: () => t("staff.convs.youth"),
    bad: () => t("staff.convs.bad"),
    state: (state) => t(`staff.convs.${state}`),
    retryText: () => t("staff.convs.retry"),
    retryClass: "link",
    retry: (item) => entry.outbox && entry.outbox.retry(item),
    kinds: {
      // A partner's card, sent end to end (tools.js, "Refer").
      "card-out": (item) =>
        h(
          "li",
          { class: "msg out card-msg", "data-kind": "card" },
          h("span", { class: "who", text: t("staff.convs.you") }),
          h("p", { class: "card-name", text: t("staff.tools.card_sent", { name: item.payload.card.name || item.payload.card.code }) }),
          itemMeta(item, true, self),
        ),
    },
  };
  return self;
}

export function logItem(entry, item) {
  return renderItem(item, look(entry));
}

export function appendItem(entry, item) {
  entry.items.push(item);
  if (app.selected === entry.conv.id) {
    const log = document.getElementById("log");
    if (log) {
      log.appendChild(logItem(entry, item));
      log.scrollTop = log.scrollHeight;
    }
  }
}

export function refreshItem(entry, item) {
  const old = item.el;
  if (app.selected !== entry.conv.id || !old || !old.isConnected) return;
  old.replaceWith(logItem(entry, item));
}
