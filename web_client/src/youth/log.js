// The youth page's chat log and how it names people: a counsellor by alias
// (the only name a youth ever sees), a liaison by role.
import { formatClock, h } from "../lib/dom.js";
import { localized, raw, t } from "../lib/i18n.js";
import { renderItem } from "../lib/messages.js";
import { setNotice } from "../lib/notice.js";
import { holdIfAway } from "../lib/reattach.js";
import { trouble } from "../lib/trouble.js";
import { app } from "./state.js";
import { telHref } from "./view.js";

const LOOK = {
  you: () => t("youth.chat.you"),
  someone: () => "",
  bad: () => t("youth.chat.bad"),
  state: (state) => t(`youth.chat.${state}`),
  retryText: () => t("youth.chat.retry"),
  retryClass: "link retry",
  retry: (item) => app.outbox && app.outbox.retry(item),
  kinds: { card: renderCard },
};

export function logItem(item) {
  return renderItem(item, LOOK);
}

/** A partner's contact card sent by the counsellor (protocol.md, type "card"). */
function renderCard(item) {
  const c = item.card || {};
  const field = (value) => (typeof value === "string" && value ? value : null);
  const hours = typeof c.hours === "string" ? c.hours : localized(c.hours);
  return h(
    "li",
    { class: "msg in card-msg", "data-kind": "card" },
    h("span", { class: "who", text: item.alias }),
    field(c.name) ? h("p", { class: "card-name", text: c.name }) : null,
    field(c.phone) ? h("p", {}, h("a", { href: telHref(c.phone), class: "tel", text: t("youth.closed.call", { phone: c.phone }) })) : null,
    // A web address is shown as text, not a link: following it from here would
    // put another site in the history next to this one.
    field(c.url) ? h("p", { class: "card-url", dir: "ltr", text: c.url }) : null,
    hours ? h("p", { class: "alt-hours", text: hours }) : null,
    h("span", { class: "meta", text: formatClock(item.sentAt) }),
  );
}

export function appendItem(item) {
  app.items.push(item);
  if (app.screen !== "chat") return;
  const log = document.getElementById("log");
  if (log) {
    const li = logItem(item);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }
}

export function refreshItem(item) {
  const old = item.el;
  if (app.screen !== "chat" || !old || !old.isConnected) return;
  old.replaceWith(logItem(item));
}

/** The Outbox's callback: a message's delivery state changed. */
export function onOutboxChange(entry) {
  holdIfAway(entry, app.counsellorAway.size > 0); // "not yet delivered", not "sent"
  refreshItem(entry);
  // While the chat has trouble its card says it (screens/help.js, troubleCard).
  if (entry.state === "failed" && !trouble.on) setNotice(app, t("youth.chat.failed"));
}

// --- names -------------------------------------------------------------------------

export function counsellorAlias() {
  const conv = app.conv;
  if (!conv) return app.lastAlias || "";
  const c = conv.others().find((m) => m.role === "counsellor");
  if (c) app.lastAlias = c.alias || t("youth.chat.counsellor");
  return c ? c.alias || t("youth.chat.counsellor") : "";
}

export function aliasOf(memberId) {
  const m = app.conv && app.conv.memberById(memberId);
  if (!m) return t("youth.chat.counsellor");
  return memberLabel(m);
}

/** How a member is named to the youth: a counsellor by alias, a liaison by role. */
export function memberLabel(m) {
  if (m.role === "liaison") {
    // The role the counsellor introduced end to end wins over the server's alias.
    return roleName(app.introducedRoles.get(m.kx_pk) || m.alias);
  }
  return m.alias || t("youth.chat.counsellor");
}

function roleName(role) {
  const name = raw(`youth.roles.${role}`);
  return typeof name === "string" ? name : t("youth.chat.role_liaison");
}

export function typingText() {
  const names = [...app.composer.peerTyping.keys()].map(aliasOf);
  return names.length ? t("youth.chat.typing", { alias: names.join(", ") }) : "";
}

export function refreshTyping() {
  const el = document.getElementById("typing");
  if (el) el.textContent = typingText();
}
