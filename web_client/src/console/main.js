// The counsellor console: sign in (password + TOTP), duty toggle, the live
// queue, claim / take next, several end-to-end encrypted conversations at once
// with unread markers and typing indicators, end. One crypto_kx key pair per
// conversation, memory only, wiped when the conversation ends or the page goes.
// Continuity and escalation (docs/design/returning.md, invites.md): offer a
// return code, warm transfer, liaison invites (the invite secret lives only in
// this page's memory and the link), referral cards, contact-reason tags.
// Only the alias (set on the account by an admin) ever reaches a youth: this
// page never sends a name, only kx_pk and ciphertext.
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import { call, connect } from "../lib/calls.js";
import { Conversation, conversationTestSurface, MAX_TEXT_CHARS, Outbox, takeComposerText } from "../lib/conversation.js";
import { formatClock, formatDuration, h, keepFocus, mount, NO_TRACE_INPUT, uid } from "../lib/dom.js";
import { lang, onLangChange, raw, t } from "../lib/i18n.js";
import { languageSelect, logout, me, renderLogin, session } from "../staff/session.js";

const ROLES = ["counsellor"];
const TYPING_IDLE_MS = 4000;
const TYPING_REPEAT_MS = 3000;
const TYPING_SHOW_MS = 10000;
const DELIVERED_DEBOUNCE_MS = 150;
const PENDING_MAX = 100; // events for a conversation whose claim ack is still on its way
const INVITE_ROLES = ["police", "health", "social_services"]; // protocol.md invite_create
const SLOW_CALL_MS = 30000; // offer_return runs a memory-hard hash on the server

const app = {
  socket: null,
  duty: { on: false, load: 0, capacity: 0 },
  queue: { total: 0, entries: [] },
  convs: new Map(), // id -> entry (see addConversation)
  order: [], // conversation ids, oldest first
  selected: null,
  notice: "",
  // The socket: "connecting" (before its first connect), "unreachable" (the
  // first connect failed; socket.io keeps trying), "online", "lost" (after).
  link: "connecting",
  pending: [],
  busy: false,
  offers: new Map(), // conversation -> transfer_offer waiting for this counsellor's answer
};

const bar = document.getElementById("bar");
const main = document.getElementById("main");

Object.defineProperty(globalThis, "cv1", {
  value: Object.freeze({ ...e2e.testSurface, conversation: conversationTestSurface, invite: invite.inviteTestSurface }),
});

// --- wiping ----------------------------------------------------------------------

function wipeInvites(entry) {
  for (const inv of entry.invites.values()) {
    e2e.wipe(inv.id);
    e2e.wipe(inv.macKey);
  }
  entry.invites.clear();
  entry.lastInvite = null; // the link (with its secret) leaves the DOM on the next render
}

function wipeEntry(entry) {
  if (entry.outbox) entry.outbox.close();
  wipeInvites(entry);
  entry.requests.clear();
  entry.conv.wipe();
  clearTimeout(entry.deliveredTimer);
  clearTimeout(entry.typingTimer);
  for (const timer of entry.peerTyping.values()) clearTimeout(timer);
  entry.peerTyping.clear();
}

function wipeAll() {
  for (const entry of app.convs.values()) {
    wipeEntry(entry);
    entry.items = [];
  }
  app.convs.clear();
  app.order = [];
  app.selected = null;
  app.offers.clear();
}

window.addEventListener("pagehide", () => {
  wipeAll();
  if (app.socket) app.socket.disconnect();
});

// --- rendering ---------------------------------------------------------------------

function stateLabel(entry) {
  const key = entry.state === "ended" ? entry.reason || "ended" : entry.state;
  return t(`staff.state.${key}`);
}

function stateKey(entry) {
  return entry.state === "ended" ? entry.reason || "ended" : entry.state;
}

function codeLabel(list, code) {
  const label = raw(`codes.${list}.${code}`);
  return typeof label === "string" ? label : String(code);
}

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
    languageSelect(),
    h("button", { type: "button", class: "secondary", id: "logout", onclick: onLogout, text: t("staff.logout") }),
  );
}

const LINK_TEXT = { connecting: "staff.connecting", unreachable: "staff.unreachable", lost: "staff.offline" };

function renderConsole() {
  // The whole page is rebuilt (a dropped or restored connection, a language
  // switch): keep the open conversation's unsent text, the focus and the caret.
  saveDraft();
  keepFocus(paintConsole);
}

function paintConsole() {
  renderBar();
  mount(
    main,
    app.link === "online" ? null : h("p", { class: "offline", role: "status", text: t(LINK_TEXT[app.link]) }),
    h("p", { class: ["notice", app.notice ? "" : "empty"], role: "alert", id: "notice", text: app.notice }),
    h("div", { id: "offers", class: "offers" }),
    h(
      "div",
      { class: "console" },
      h("section", { class: "panel", id: "queue-panel", "aria-labelledby": "queue-h" }),
      h("section", { class: "panel", id: "convs-panel", "aria-labelledby": "convs-h" }),
      h("section", { class: "panel pane", id: "pane", "aria-label": t("staff.convs.heading") }),
    ),
  );
  renderOffers();
  renderQueue();
  renderConvList();
  renderPane();
}

function renderQueue() {
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

function tickWaits() {
  for (const el of document.querySelectorAll(".waited[data-since]")) {
    const since = Number(el.getAttribute("data-since"));
    if (since) el.textContent = waited(since);
  }
}

function renderConvList() {
  const panel = document.getElementById("convs-panel");
  if (!panel) return;
  keepFocus(() => {
    mount(
      panel,
      h("h2", { id: "convs-h", text: t("staff.convs.heading") }),
      app.order.length
        ? h(
            "ul",
            { class: "conv-list", id: "conv-list" },
            app.order.map((id) => {
              const entry = app.convs.get(id);
              const typing = entry.peerTyping.size > 0 && entry.state !== "ended";
              return h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "conv-tab",
                    id: `tab-${id}`,
                    "data-conversation": id,
                    "aria-current": app.selected === id ? "true" : "false",
                    onclick: () => select(id),
                  },
                  h("span", { class: "pseudo", text: entry.pseudonym }),
                  entry.unread ? h("span", { class: "badge", "aria-label": t("staff.convs.unread", { n: entry.unread }), text: String(entry.unread) }) : null,
                  h("span", { class: "st", "data-state": stateKey(entry), text: typing ? `${stateLabel(entry)} · ${t("staff.convs.typing")}` : stateLabel(entry) }),
                ),
              );
            }),
          )
        : h("p", { text: t("staff.convs.empty") }),
    );
  });
  const unread = [...app.convs.values()].reduce((s, e) => s + e.unread, 0);
  document.title = unread ? `(${unread}) ${t("staff.console_title")}` : t("staff.console_title");
}

/** Keep what was typed in the open conversation's box before it is redrawn. */
function saveDraft() {
  const pane = document.getElementById("pane");
  const typed = document.getElementById("composer");
  const entry = app.selected && app.convs.get(app.selected);
  if (pane && typed && entry && pane.getAttribute("data-conversation") === entry.conv.id) entry.draft = typed.value;
}

function renderPane() {
  const pane = document.getElementById("pane");
  if (!pane) return;
  const entry = app.selected && app.convs.get(app.selected);
  if (!entry) {
    mount(pane, h("p", { text: t("staff.convs.select") }));
    return;
  }
  saveDraft();
  pane.setAttribute("data-conversation", entry.conv.id);
  const ended = entry.state === "ended";
  const log = h("ol", { class: "log", id: "log" });
  for (const item of entry.items) log.appendChild(renderItem(entry, item));
  const textarea = h("textarea", {
    id: "composer",
    rows: "3",
    maxlength: String(MAX_TEXT_CHARS),
    ...NO_TRACE_INPUT,
    disabled: ended,
    oninput: () => onComposerInput(entry),
    onkeydown: (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        onSend(entry);
      }
    },
  });
  textarea.value = entry.draft;
  const canSend = entry.state === "active" && entry.conv.others().length > 0;
  mount(
    pane,
    h(
      "div",
      { class: "pane-head" },
      h("h2", { id: "pane-h", tabindex: "-1", text: entry.pseudonym }),
      h("span", { class: "st", id: "pane-state", role: "status", "data-state": stateKey(entry), text: stateLabel(entry) }),
    ),
    renderTags(entry.queueEntry),
    ended ? null : membersList(entry),
    ended ? null : requestCards(entry),
    h("div", { class: "log-wrap", role: "log", "aria-live": "polite", "aria-label": entry.pseudonym }, log),
    h("p", { class: "typing", id: "typing", text: typingNames(entry) }),
    h(
      "form",
      {
        class: "composer",
        onsubmit: (e) => {
          e.preventDefault();
          onSend(entry);
        },
      },
      h("label", { for: "composer", text: t("staff.convs.input_label", { name: entry.pseudonym }) }),
      textarea,
      h("button", { type: "submit", class: "primary", id: "send", disabled: !canSend, text: t("staff.convs.send") }),
    ),
    h(
      "div",
      { class: "actions" },
      ended
        ? h("button", { type: "button", class: "secondary", id: "close-conv", onclick: () => closeConversation(entry), text: t("staff.convs.close") })
        : h("button", { type: "button", class: "danger-btn", id: "end-conv", onclick: () => onEnd(entry), text: t("staff.convs.end") }),
    ),
    ended ? null : tools(entry),
  );
  log.scrollTop = log.scrollHeight;
}

/** Redraw the open pane if it shows this conversation, keeping focus and draft. */
function refreshPane(entry) {
  if (app.selected === entry.conv.id) keepFocus(renderPane);
}

// --- members, join requests, tools ---------------------------------------------------

function membersList(entry) {
  const others = entry.conv.others();
  if (!others.some((m) => m.role !== "youth")) return null;
  return h(
    "ul",
    { class: "member-list", id: "members", "aria-label": t("staff.members.heading") },
    others.map((m) => {
      const name = memberName(m);
      const code = m.role === "liaison" ? entry.codes.get(m.kx_pk) : null;
      return h(
        "li",
        { "data-role": m.role, "data-member": m.member },
        h("span", { class: "member-name", text: name }),
        code ? h("span", { class: "compare", "data-code": code, text: t("staff.members.code", { code }) }) : null,
        m.role === "liaison"
          ? h("button", { type: "button", class: "secondary small", id: `remove-${m.member}`, "aria-label": t("staff.members.remove_label", { name }), onclick: () => onRemoveMember(entry, m), text: t("staff.members.remove") })
          : null,
      );
    }),
  );
}

function requestCards(entry) {
  return [...entry.requests.values()].map((r) => {
    const hid = `rq-${r.request}`;
    let status = "";
    if (r.state === "introducing") status = t("staff.tools.request_introducing");
    else if (r.state === "consent") status = t("staff.tools.request_consent");
    else if (r.state === "declined") status = t("staff.tools.request_declined");
    else if (r.state === "failed") status = t("staff.tools.request_failed", { code: r.error || "?" });
    return h(
      "section",
      { class: ["card", "join-request", r.verified ? "" : "danger"], id: `request-${r.request}`, "data-verified": String(r.verified), "data-state": r.state, "aria-labelledby": hid },
      h("h3", { id: hid, tabindex: "-1", text: t("staff.tools.request_heading", { role: roleLabel(r.role) }) }),
      h("p", { role: r.verified ? null : "alert", text: t(r.verified ? "staff.tools.request_verified" : "staff.tools.request_unverified") }),
      r.verified && r.code ? h("p", { class: "compare", "data-code": r.code, text: t("staff.tools.request_code", { code: r.code }) }) : null,
      r.state === "pending"
        ? h(
            "div",
            { class: "actions" },
            r.verified ? h("button", { type: "button", class: "primary admit", onclick: () => onAdmit(entry, r), text: t("staff.tools.admit") }) : null,
            h("button", { type: "button", class: "secondary refuse", onclick: () => onRefuse(entry, r), text: t("staff.tools.refuse") }),
          )
        : h("p", { class: "req-state", role: "status", text: status }),
    );
  });
}

function tool(entry, name, title, ...children) {
  return h(
    "details",
    {
      class: "tool",
      id: `tool-${name}`,
      open: entry.openTools.has(name),
      ontoggle: (e) => {
        if (e.target.open) entry.openTools.add(name);
        else entry.openTools.delete(name);
      },
    },
    h("summary", { text: title }),
    ...children,
  );
}

function formatDateTime(ms) {
  try {
    return new Date(ms).toLocaleString(lang(), { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  } catch {
    return new Date(ms).toISOString();
  }
}

function tools(entry) {
  const roleId = uid("r");
  const linkId = uid("l");
  const queryId = uid("q");
  const topics = Object.keys(raw("codes.topics") || {});
  const transferText = entry.transfer
    ? entry.transfer.state === "offered"
      ? t("staff.tools.transfer_offered", { alias: entry.transfer.alias })
      : t(entry.transfer.state === "timed_out" ? "staff.tools.transfer_timed_out" : "staff.tools.transfer_declined")
    : "";
  return h(
    "div",
    { class: "tools" },
    tool(
      entry,
      "return",
      t("staff.tools.return_heading"),
      h("p", { class: "hint", text: t("staff.tools.return_hint") }),
      h("button", { type: "button", class: "secondary", id: "offer-return", disabled: entry.returnBusy, onclick: () => onOfferReturn(entry), text: t("staff.tools.return_offer") }),
      entry.returnIssued ? h("p", { id: "return-issued", role: "status", text: t("staff.tools.return_issued", { date: formatDateTime(entry.returnIssued) }) }) : null,
    ),
    tool(
      entry,
      "transfer",
      t("staff.tools.transfer_heading"),
      h("button", { type: "button", class: "secondary", id: "transfer-list", onclick: () => onListColleagues(entry), text: t("staff.tools.transfer_list") }),
      entry.colleagues
        ? entry.colleagues.length
          ? h(
              "ul",
              { class: "pick-list", id: "colleagues" },
              entry.colleagues.map((c) =>
                h("li", {}, h("button", { type: "button", class: "secondary", "data-staff": String(c.staff), disabled: Boolean(entry.transfer && entry.transfer.state === "offered"), onclick: () => onTransfer(entry, c), text: t("staff.tools.transfer_to", { alias: c.alias, load: c.load, capacity: c.capacity }) })),
              ),
            )
          : h("p", { text: t("staff.tools.transfer_none") })
        : null,
      transferText ? h("p", { id: "transfer-state", role: "status", "data-state": entry.transfer.state, text: transferText }) : null,
    ),
    tool(
      entry,
      "invite",
      t("staff.tools.invite_heading"),
      h(
        "div",
        { class: "field" },
        h("label", { for: roleId, text: t("staff.tools.invite_role") }),
        h(
          "select",
          { id: roleId, name: "invite-role", ...NO_TRACE_INPUT, onchange: (e) => (entry.inviteRole = e.target.value) },
          INVITE_ROLES.map((r) => h("option", { value: r, selected: r === entry.inviteRole, text: roleLabel(r) })),
        ),
      ),
      h("button", { type: "button", class: "secondary", id: "invite-create", onclick: () => onInviteCreate(entry), text: t("staff.tools.invite_create") }),
      entry.lastInvite
        ? h(
            "div",
            { class: "invite-link field" },
            h("label", { for: linkId, text: t("staff.tools.invite_link") }),
            h("input", { id: linkId, name: "invite-link", class: "link-text", type: "text", readonly: true, dir: "ltr", value: entry.lastInvite.link, ...NO_TRACE_INPUT }),
            h(
              "div",
              { class: "actions" },
              h("button", { type: "button", class: "secondary", id: "invite-copy", onclick: (e) => copyLink(e.currentTarget, linkId), text: t("staff.tools.invite_copy") }),
              h("span", { id: "invite-expires", text: `${roleLabel(entry.lastInvite.role)} · ${t("staff.tools.invite_expires", { time: formatDateTime(entry.lastInvite.expiresAt) })}` }),
            ),
            h("p", { class: "hint", text: t("staff.tools.invite_hint") }),
          )
        : null,
    ),
    tool(
      entry,
      "refer",
      t("staff.tools.refer_heading"),
      h(
        "form",
        {
          class: "refer-search",
          role: "search",
          onsubmit: (e) => {
            e.preventDefault();
            onPartnerSearch(entry);
          },
        },
        h("label", { for: queryId, text: t("staff.tools.refer_search") }),
        h("input", { id: queryId, name: "partner-query", type: "search", maxlength: "64", value: entry.partnerQuery, ...NO_TRACE_INPUT, oninput: (e) => (entry.partnerQuery = e.target.value) }),
        h("button", { type: "submit", class: "secondary", id: "partner-search", text: t("staff.tools.refer_button") }),
      ),
      entry.partners
        ? entry.partners.length
          ? h(
              "ul",
              { class: "pick-list", id: "partner-list" },
              entry.partners.map((p) =>
                h(
                  "li",
                  { "data-partner": p.code },
                  h("span", { class: "p-name", text: p.name }),
                  h("span", { class: "p-meta", text: [p.kind, p.municipality, p.phone].filter(Boolean).join(" · ") }),
                  h("button", { type: "button", class: "secondary", onclick: () => onRefer(entry, p), text: t("staff.tools.refer_send") }),
                ),
              ),
            )
          : h("p", { text: t("staff.tools.refer_none") })
        : null,
      entry.referNote ? h("p", { id: "refer-note", role: "status", text: entry.referNote }) : null,
    ),
    tool(
      entry,
      "reasons",
      t("staff.tools.reasons_heading"),
      h(
        "fieldset",
        { class: "reasons" },
        h("legend", { class: "visually-hidden", text: t("staff.tools.reasons_heading") }),
        topics.map((code) => {
          const id = uid("t");
          return h(
            "div",
            { class: "field check" },
            h("input", {
              type: "checkbox",
              id,
              name: "reason",
              value: code,
              checked: entry.reasons.has(code),
              onchange: (e) => {
                if (e.target.checked) entry.reasons.add(code);
                else entry.reasons.delete(code);
                entry.reasonsSaved = false;
              },
            }),
            h("label", { for: id, text: codeLabel("topics", code) }),
          );
        }),
      ),
      h("button", { type: "button", class: "secondary", id: "reasons-save", onclick: () => onTag(entry), text: t("staff.tools.reasons_save") }),
      entry.reasonsSaved ? h("p", { id: "reasons-saved", role: "status", text: t("staff.tools.reasons_saved") }) : null,
    ),
  );
}

async function copyLink(button, inputId) {
  const input = document.getElementById(inputId);
  if (!input) return;
  let ok = false;
  try {
    await navigator.clipboard.writeText(input.value);
    ok = true;
  } catch {
    input.select();
    try {
      ok = document.execCommand("copy");
    } catch {
      ok = false;
    }
  }
  if (ok) button.textContent = t("staff.tools.invite_copied");
}

function renderItem(entry, item) {
  let li;
  if (item.kind === "system") li = h("li", { class: "sys", text: t(item.key, item.vars) });
  else if (item.kind === "bad") li = h("li", { class: "msg bad", "data-kind": "bad" }, h("p", { text: t("staff.convs.bad") }));
  else if (item.kind === "card-out") {
    li = h(
      "li",
      { class: "msg out card-msg", "data-kind": "card" },
      h("span", { class: "who", text: t("staff.convs.you") }),
      h("p", { class: "card-name", text: t("staff.tools.card_sent", { name: item.payload.card.name || item.payload.card.code }) }),
      h(
        "span",
        { class: "meta" },
        formatClock(item.sentAt),
        h("span", { class: ["state", item.state], "data-state": item.state, text: ` · ${t(`staff.convs.${item.state}`)}` }),
        item.state === "failed" ? h("button", { type: "button", class: "link", onclick: () => entry.outbox && entry.outbox.retry(item), text: t("staff.convs.retry") }) : null,
      ),
    );
  } else {
    const out = item.kind === "out";
    li = h(
      "li",
      { class: ["msg", out ? "out" : "in"], "data-kind": item.kind },
      h("span", { class: "who", text: out ? t("staff.convs.you") : item.alias || t("staff.convs.youth") }),
      h("p", { class: "text", dir: "auto", text: item.text }),
      h(
        "span",
        { class: "meta" },
        formatClock(item.sentAt),
        out ? h("span", { class: ["state", item.state], "data-state": item.state, text: ` · ${t(`staff.convs.${item.state}`)}` }) : null,
        out && item.state === "failed" ? h("button", { type: "button", class: "link", onclick: () => entry.outbox && entry.outbox.retry(item), text: t("staff.convs.retry") }) : null,
      ),
    );
  }
  item.el = li;
  return li;
}

function appendItem(entry, item) {
  entry.items.push(item);
  if (app.selected === entry.conv.id) {
    const log = document.getElementById("log");
    if (log) {
      log.appendChild(renderItem(entry, item));
      log.scrollTop = log.scrollHeight;
    }
  }
}

function setNotice(text) {
  app.notice = text;
  const el = document.getElementById("notice");
  if (el) {
    el.textContent = text;
    el.classList.toggle("empty", !text);
  }
}

function errorText(code) {
  const key = `staff.errors.${code}`;
  const text = t(key);
  return text === key ? t("staff.errors.generic", { code }) : text;
}

// --- conversations -------------------------------------------------------------------

function tagList(e) {
  if (!e) return [];
  return [
    e.urgent ? { text: t("staff.queue.urgent"), urgent: true } : null,
    e.returning ? { text: t("staff.queue.returning"), returning: true } : null,
    e.lane === "professional" ? { text: t("staff.queue.professional"), professional: true } : null,
    e.language ? { text: codeLabel("languages", e.language), lang: e.language } : null,
    e.age_band ? { text: codeLabel("age_bands", e.age_band) } : null,
    e.topic ? { text: codeLabel("topics", e.topic) } : null,
  ].filter(Boolean);
}

function renderTags(e) {
  const tags = tagList(e);
  if (!tags.length) return null;
  return h(
    "ul",
    { class: "tags", "aria-label": "tags" },
    tags.map((tag) => h("li", { class: ["tag", tag.urgent ? "urgent" : "", tag.returning ? "returning" : "", tag.professional ? "professional" : ""], lang: tag.lang, text: tag.text })),
  );
}

function addConversation(reply, keys, pseudonym, queueEntry) {
  const conv = new Conversation({ id: reply.conversation, member: reply.member, resume: reply.resume, keys });
  conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
  const entry = {
    conv,
    pseudonym: pseudonym || reply.conversation.slice(0, 6),
    state: reply.state || "active",
    reason: null,
    items: [],
    unread: 0,
    draft: "",
    peerTyping: new Map(),
    delivered: new Map(),
    deliveredTimer: null,
    typingSent: false,
    typingLast: 0,
    typingTimer: null,
    outbox: null,
    queueEntry: queueEntry || null, // language, age band, topic, urgent: as the youth chose
    // Continuity and escalation, all in memory only:
    openTools: new Set(), // which <details> tools are open
    returnIssued: null, // expires_at of the return code offered (never the words)
    returnBusy: false,
    colleagues: null, // [{staff, alias, load, capacity}] after "show colleagues"
    transfer: null, // {state: "offered"|"declined"|"timed_out", alias}
    inviteRole: INVITE_ROLES[0],
    invites: new Map(), // invite id (b64) -> {id, macKey, role, expiresAt}: secrets never leave memory
    lastInvite: null, // {link, role, expiresAt, idB64}: shown for copying until used or expired
    requests: new Map(), // request -> {request, role, kxPk, verified, code, state, error}
    codes: new Map(), // liaison kx_pk -> comparison code
    partnerQuery: "",
    partners: null,
    referNote: "",
    reasons: new Set(),
    reasonsSaved: false,
  };
  entry.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), (item) => refreshItem(entry, item));
  app.convs.set(conv.id, entry);
  app.order.push(conv.id);
  // Events that raced ahead of the claim ack.
  const pending = app.pending.filter(([, data]) => data && data.conversation === conv.id);
  app.pending = app.pending.filter(([, data]) => !data || data.conversation !== conv.id);
  for (const [event, data] of pending) HANDLERS[event](data);
  return entry;
}

function refreshItem(entry, item) {
  const old = item.el;
  if (app.selected !== entry.conv.id || !old || !old.isConnected) return;
  old.replaceWith(renderItem(entry, item));
}

function select(id) {
  const current = app.selected && app.convs.get(app.selected);
  const ta = document.getElementById("composer");
  if (current && ta) current.draft = ta.value;
  app.selected = id;
  const entry = app.convs.get(id);
  if (entry) entry.unread = 0;
  renderConvList();
  renderPane();
  const focusTarget = document.getElementById(entry && entry.state !== "ended" ? "composer" : "pane-h");
  if (focusTarget) focusTarget.focus();
}

function closeConversation(entry) {
  wipeEntry(entry);
  entry.items = [];
  app.convs.delete(entry.conv.id);
  app.order = app.order.filter((id) => id !== entry.conv.id);
  app.selected = app.order.find((id) => app.convs.get(id).state !== "ended") || app.order[0] || null;
  renderConvList();
  renderPane();
  const next = document.getElementById(app.selected ? `tab-${app.selected}` : "take-next");
  if (next) next.focus();
}

function markEnded(entry, reason) {
  if (entry.state === "ended") return;
  entry.state = "ended";
  entry.reason = reason || "done";
  // Keys go at once; the text stays on screen until the counsellor closes it.
  wipeEntry(entry);
  renderConvList();
  if (app.selected === entry.conv.id) {
    const ta = document.getElementById("composer");
    if (ta) entry.draft = ta.value;
    renderPane();
  }
}

// --- actions ---------------------------------------------------------------------------

async function toggleDuty() {
  const reply = await call(app.socket, "duty", { on: !app.duty.on });
  if (reply.ok) {
    app.duty.on = Boolean(reply.on);
    setNotice("");
  } else setNotice(errorText(reply.error));
  renderBar();
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
    setNotice(errorText(reply.error));
    return;
  }
  setNotice("");
  const fromQueue = app.queue.entries.find((e) => e.conversation === reply.conversation);
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || pseudonym || (fromQueue && fromQueue.pseudonym), fromQueue);
  } catch {
    setNotice(errorText("internal"));
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

function onComposerInput(entry) {
  if (entry.state !== "active") return;
  const now = Date.now();
  if (!entry.typingSent || now - entry.typingLast > TYPING_REPEAT_MS) {
    entry.typingSent = true;
    entry.typingLast = now;
    app.socket.emit("typing", { conversation: entry.conv.id, active: true });
  }
  clearTimeout(entry.typingTimer);
  entry.typingTimer = setTimeout(() => stopTyping(entry), TYPING_IDLE_MS);
}

function stopTyping(entry) {
  clearTimeout(entry.typingTimer);
  if (entry.typingSent && entry.state !== "ended" && app.socket.connected) {
    app.socket.emit("typing", { conversation: entry.conv.id, active: false });
  }
  entry.typingSent = false;
}

function onSend(entry) {
  const ta = document.getElementById("composer");
  if (!ta || entry.state !== "active" || !entry.conv.others().length) return;
  const item = takeComposerText(ta, () => setNotice(t("staff.errors.too_long")));
  if (!item) return;
  entry.draft = "";
  stopTyping(entry);
  appendItem(entry, item);
  entry.outbox.push(item);
  ta.focus();
}

async function onEnd(entry) {
  const reply = await call(app.socket, "end", { conversation: entry.conv.id });
  if (reply.ok || reply.error === "unknown_conversation") markEnded(entry, "done");
  else setNotice(errorText(reply.error));
  const btn = document.getElementById("close-conv");
  if (btn) btn.focus();
}

// --- continuity and escalation ----------------------------------------------------------

async function onOfferReturn(entry) {
  entry.returnBusy = true;
  refreshPane(entry);
  const reply = await call(app.socket, "offer_return", { conversation: entry.conv.id }, SLOW_CALL_MS);
  entry.returnBusy = false;
  // The reply says only when it expires: the words go to the youth's page alone.
  if (reply.ok) entry.returnIssued = Number(reply.expires_at) || null;
  else setNotice(errorText(reply.error));
  refreshPane(entry);
}

async function onListColleagues(entry) {
  const reply = await call(app.socket, "colleagues", {});
  if (!reply.ok) return setNotice(errorText(reply.error));
  entry.colleagues = Array.isArray(reply.colleagues) ? reply.colleagues : [];
  refreshPane(entry);
}

async function onTransfer(entry, colleague) {
  const reply = await call(app.socket, "transfer", { conversation: entry.conv.id, to: colleague.staff });
  if (!reply.ok) return setNotice(errorText(reply.error));
  setNotice("");
  entry.transfer = { state: "offered", alias: colleague.alias };
  refreshPane(entry);
}

async function onInviteCreate(entry) {
  const role = entry.inviteRole;
  // The secret is made here and never sent: the server gets only its hash.
  const secret = invite.newSecret();
  const id = invite.inviteId(secret);
  const idB64 = e2e.b64(id);
  const reply = await call(app.socket, "invite_create", { conversation: entry.conv.id, invite: idB64, role });
  if (!reply.ok || entry.state === "ended") {
    e2e.wipe(secret);
    e2e.wipe(id);
    if (!reply.ok) setNotice(errorText(reply.error));
    return;
  }
  const expiresAt = Number(reply.expires_at) || Date.now() + 15 * 60 * 1000;
  entry.invites.set(idB64, { id, macKey: invite.macKey(secret), role, expiresAt });
  entry.lastInvite = { link: `${location.origin}/join#${invite.fragment(secret, entry.conv.id)}`, role, expiresAt, idB64 };
  e2e.wipe(secret); // the MAC key and id are all this page needs from now on
  setNotice("");
  refreshPane(entry);
}

/** Invites past their expiry are forgotten (the server drops them too). */
function expireInvites() {
  const now = Date.now();
  for (const entry of app.convs.values()) {
    let changed = false;
    for (const [idB64, inv] of entry.invites) {
      if (inv.expiresAt <= now) {
        e2e.wipe(inv.id);
        e2e.wipe(inv.macKey);
        entry.invites.delete(idB64);
        changed = true;
      }
    }
    if (entry.lastInvite && !entry.invites.has(entry.lastInvite.idB64)) {
      entry.lastInvite = null;
      changed = true;
    }
    if (changed) refreshPane(entry);
  }
}

async function onAdmit(entry, r) {
  if (!r.verified || r.state !== "pending") return;
  r.state = "introducing";
  refreshPane(entry);
  // First the introduction, end to end, so the youth's page can check the
  // consent_request the server will send; only then the admission.
  const now = Date.now();
  const item = { kind: "intro", payload: { type: "intro", request: r.request, role: r.role, kx_pk: r.kxPk, sent_at: now }, sentAt: now };
  const sent = await entry.outbox.pushAndWait(item);
  if (entry.state === "ended") return;
  if (sent !== "sent") {
    r.state = "failed";
    r.error = "send";
    refreshPane(entry);
    return;
  }
  appendItem(entry, { kind: "system", key: "staff.tools.intro_sent", vars: { role: roleLabel(r.role) } });
  const reply = await call(app.socket, "admit", { conversation: entry.conv.id, request: r.request, accept: true });
  if (reply.ok) r.state = r.state === "introducing" ? "consent" : r.state;
  else {
    r.state = "failed";
    r.error = reply.error;
  }
  refreshPane(entry);
}

async function onRefuse(entry, r) {
  entry.requests.delete(r.request);
  refreshPane(entry);
  await call(app.socket, "admit", { conversation: entry.conv.id, request: r.request, accept: false });
}

async function onRemoveMember(entry, m) {
  const reply = await call(app.socket, "remove_member", { conversation: entry.conv.id, member: m.member });
  if (!reply.ok) setNotice(errorText(reply.error));
}

async function onPartnerSearch(entry) {
  const reply = await call(app.socket, "partners", { query: entry.partnerQuery.trim().slice(0, 64) });
  if (!reply.ok) return setNotice(errorText(reply.error));
  entry.partners = Array.isArray(reply.partners) ? reply.partners : [];
  entry.referNote = "";
  refreshPane(entry);
}

async function onRefer(entry, partner) {
  const reply = await call(app.socket, "refer", { conversation: entry.conv.id, partner: partner.code });
  if (!reply.ok || !reply.partner) return setNotice(errorText(reply.error || "internal"));
  // The referral is recorded; the card goes to the youth end to end.
  const card = reply.partner;
  const now = Date.now();
  const item = { kind: "card-out", payload: { type: "card", card, sent_at: now }, sentAt: now, state: "sending" };
  appendItem(entry, item);
  entry.outbox.push(item);
  entry.referNote = t("staff.tools.refer_sent", { name: card.name || card.code });
  refreshPane(entry);
}

async function onTag(entry) {
  const reply = await call(app.socket, "tag", { conversation: entry.conv.id, reasons: [...entry.reasons] });
  if (!reply.ok) return setNotice(errorText(reply.error));
  entry.reasons = new Set(Array.isArray(reply.reasons) ? reply.reasons : entry.reasons);
  entry.reasonsSaved = true;
  refreshPane(entry);
}

// Incoming warm transfers: shown above everything until answered.
function renderOffers() {
  const box = document.getElementById("offers");
  if (!box) return;
  keepFocus(() =>
    mount(
      box,
      [...app.offers.values()].map((o) => {
        const hid = `offer-h-${o.conversation}`;
        return h(
          "section",
          { class: "card offer", id: `offer-${o.conversation}`, "data-conversation": o.conversation, "aria-labelledby": hid },
          h("h2", { id: hid, text: t("staff.offer.heading") }),
          h("p", { text: t("staff.offer.body", { from: String(o.from_alias || ""), name: String(o.pseudonym || "") }) }),
          renderTags(o),
          h(
            "div",
            { class: "actions" },
            h("button", { type: "button", class: "primary offer-accept", onclick: () => onOfferAnswer(o, true), text: t("staff.offer.accept") }),
            h("button", { type: "button", class: "secondary offer-decline", onclick: () => onOfferAnswer(o, false), text: t("staff.offer.decline") }),
          ),
        );
      }),
    ),
  );
}

async function onOfferAnswer(offer, accept) {
  app.offers.delete(offer.conversation);
  renderOffers();
  if (!accept) {
    await call(app.socket, "transfer_answer", { conversation: offer.conversation, accept: false });
    return;
  }
  // A fresh key pair, as for a claim: the new counsellor is a new member.
  const keys = e2e.keypair();
  const reply = await call(app.socket, "transfer_answer", { conversation: offer.conversation, accept: true, kx_pk: e2e.b64(keys.pk) });
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    setNotice(errorText(reply.error));
    return;
  }
  let entry;
  try {
    entry = addConversation(reply, keys, reply.pseudonym || offer.pseudonym, { language: offer.language, age_band: offer.age_band, topic: offer.topic });
  } catch {
    setNotice(errorText("internal"));
    return;
  }
  select(entry.conv.id);
}

async function onLogout() {
  wipeAll();
  if (app.socket) app.socket.disconnect();
  app.socket = null;
  app.duty = { on: false, load: 0, capacity: 0 };
  app.queue = { total: 0, entries: [] };
  await logout();
  start(t("staff.logout"));
}

// --- server events -------------------------------------------------------------------------

function scheduleDelivered(entry, from, seq) {
  if ((entry.delivered.get(from) || 0) < seq) entry.delivered.set(from, seq);
  if (entry.deliveredTimer) return;
  entry.deliveredTimer = setTimeout(() => {
    entry.deliveredTimer = null;
    for (const [sender, upTo] of entry.delivered) {
      app.socket.emit("delivered", { conversation: entry.conv.id, from: sender, seq: upTo });
    }
    entry.delivered.clear();
  }, DELIVERED_DEBOUNCE_MS);
}

function aliasOf(entry, memberId) {
  return memberName(entry.conv.memberById(memberId));
}

/** A youth is "Youth"; a counsellor its alias; a liaison its role (the server
 *  seats a liaison with its invite's role as alias). */
function memberName(m) {
  if (!m || m.role === "youth") return t("staff.convs.youth");
  if (m.role === "liaison") return roleLabel(m.alias);
  return m.alias || t("staff.roles.counsellor");
}

function roleLabel(role) {
  const v = raw(`staff.roles.${role}`);
  return typeof v === "string" ? v : String(role || "");
}

function typingNames(entry) {
  if (!entry.peerTyping.size || entry.state === "ended") return "";
  return `${[...entry.peerTyping.keys()].map((id) => aliasOf(entry, id)).join(", ")} ${t("staff.convs.typing")}`;
}

const HANDLERS = {
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
    if (r.kind !== "replay") scheduleDelivered(entry, data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem(entry, { kind: "system", key: "staff.convs.gap" });
    if (r.kind === "bad") appendItem(entry, { kind: "bad" });
    else if (r.kind === "msg") {
      clearPeerTyping(entry, r.from);
      appendItem(entry, { kind: "in", from: r.from, alias: aliasOf(entry, r.from), text: r.text, sentAt: r.sentAt });
    } else return;
    if (app.selected !== entry.conv.id || document.hidden) {
      entry.unread += 1;
      renderConvList();
    }
  },

  typing(data) {
    const entry = app.convs.get(data.conversation);
    if (!entry || data.from === entry.conv.member) return;
    if (data.active) {
      clearTimeout(entry.peerTyping.get(data.from));
      entry.peerTyping.set(data.from, setTimeout(() => clearPeerTyping(entry, data.from), TYPING_SHOW_MS));
    } else {
      clearTimeout(entry.peerTyping.get(data.from));
      entry.peerTyping.delete(data.from);
    }
    refreshTyping(entry);
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
    // Check the MAC against every outstanding invite of this conversation and role.
    let matched = null;
    for (const [idB64, inv] of entry.invites) {
      if (inv.role === data.role && invite.verifyMac(inv.macKey, entry.conv.id, data.kx_pk, data.mac)) {
        matched = { idB64, inv };
        break;
      }
    }
    let code = null;
    if (matched) {
      try {
        code = invite.comparisonCode(matched.inv.macKey, matched.inv.id, entry.conv.id, e2e.unb64(data.kx_pk, 32), entry.conv.keys.pk);
      } catch {
        code = null;
      }
      // Single use on this side too: the link is done, its secret goes.
      e2e.wipe(matched.inv.id);
      e2e.wipe(matched.inv.macKey);
      entry.invites.delete(matched.idB64);
      if (entry.lastInvite && entry.lastInvite.idB64 === matched.idB64) entry.lastInvite = null;
    }
    entry.requests.set(data.request, {
      request: data.request,
      role: String(data.role || ""),
      kxPk: String(data.kx_pk || ""),
      verified: Boolean(matched && code),
      code,
      state: "pending",
      error: "",
    });
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

  queue(data) {
    if (!data || !Array.isArray(data.entries)) return;
    const mine = new Set(app.convs.keys());
    app.queue = { total: Number(data.total) || 0, entries: data.entries.filter((e) => e && !mine.has(e.conversation)) };
    renderQueue();
  },

  duty(data) {
    if (!data) return;
    app.duty = { on: Boolean(data.on), load: Number(data.load) || 0, capacity: Number(data.capacity) || 0 };
    renderBar();
    renderQueue();
  },
};

function clearPeerTyping(entry, from) {
  clearTimeout(entry.peerTyping.get(from));
  if (entry.peerTyping.delete(from)) refreshTyping(entry);
}

function refreshTyping(entry) {
  renderConvList();
  if (app.selected === entry.conv.id) {
    const el = document.getElementById("typing");
    if (el) el.textContent = typingNames(entry);
  }
}

async function onConnect() {
  app.link = "online";
  // After a dropped connection, take every live conversation back.
  for (const entry of app.convs.values()) {
    if (entry.state === "ended") continue;
    const conv = entry.conv;
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    if (!reply.ok) {
      markEnded(entry, "timed_out");
      continue;
    }
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
      entry.state = reply.state || entry.state;
    } catch {
      markEnded(entry, "timed_out");
      continue;
    }
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    entry.outbox.kick();
  }
  renderConsole();
}

// --- start-up ----------------------------------------------------------------------------

async function start(message = "") {
  document.title = t("staff.console_title");
  const loginBar = () => mount(bar, h("h1", { text: t("staff.console_title") }), languageSelect());
  loginBar();
  const who = await me();
  if (!who || !ROLES.includes(who.role)) {
    await renderLogin(main, ROLES, message, () => {
      document.title = t("staff.console_title");
      loginBar();
    });
  }
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
      const needsConv = ["roster", "box", "typing", "state"].includes(event);
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

setInterval(() => {
  tickWaits();
  expireInvites();
}, 1000);
start();
