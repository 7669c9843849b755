// One item of a conversation's log, as every chat page shows it: a message
// (in or out, with its delivery state and a retry), a system line, or a box
// that failed to verify. Text always goes in as text (dom.js), never as HTML.
import { formatClock, h } from "./dom.js";
import { t } from "./i18n.js";

/**
 * The <li> for item (also kept as item.el, so a delivery-state change can
 * replace it). `look` holds what differs between pages, each from its own
 * catalog section:
 *   you()         the name on the page's own messages
 *   someone()     the name on an incoming message that carries no alias
 *   bad()         the text shown instead of a box that failed to verify
 *   state(s)      a delivery state in words ("sending" | "sent" | "failed")
 *   retryText()   the retry button's text; retryClass its class
 *   retry(item)   send a failed item again
 *   kinds         {kind: (item) => <li>} for kinds only this page has
 */
export function renderItem(item, look) {
  let li;
  if (item.kind === "system") {
    li = h("li", { class: "sys", text: item.key ? t(item.key, item.vars) : item.text });
  } else if (item.kind === "bad") {
    // Never the text: a box that fails to verify is shown only as such.
    li = h("li", { class: "msg bad", "data-kind": "bad" }, h("p", { text: look.bad() }));
  } else if (look.kinds && look.kinds[item.kind]) {
    li = look.kinds[item.kind](item);
  } else {
    const out = item.kind === "out";
    li = h(
      "li",
      { class: ["msg", out ? "out" : "in"], "data-kind": item.kind },
      h("span", { class: "who", text: out ? look.you() : item.alias || look.someone() }),
      h("p", { class: "text", dir: "auto", text: item.text }),
      itemMeta(item, out, look),
    );
  }
  item.el = li;
  return li;
}

/** The time an item was written and, for the page's own, its delivery state. */
export function itemMeta(item, out, look) {
  return h(
    "span",
    { class: "meta" },
    formatClock(item.sentAt),
    out ? h("span", { class: ["state", item.state], "data-state": item.state, text: ` · ${look.state(item.state)}` }) : null,
    out && item.state === "failed" ? h("button", { type: "button", class: look.retryClass, onclick: () => look.retry(item), text: look.retryText() }) : null,
  );
}
