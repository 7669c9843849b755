// The counsellor console: sign in (password + TOTP), duty toggle, the live
// queue, claim / take next, several end-to-end encrypted conversations at once
// with unread markers and typing indicators, end. One crypto_kx key pair per
// conversation, memory only, wiped when the conversation ends or the page goes.
// Only the alias (set on the account by an admin) ever reaches a youth: this
// page never sends a name, only kx_pk and ciphertext.
import * as e2e from "../lib/e2e.js";
import { call, connect } from "../lib/calls.js";
import { Conversation, conversationTestSurface, fitsInOneBox, MAX_TEXT_CHARS, Outbox } from "../lib/conversation.js";
import { formatClock, formatDuration, h, mount, NO_TRACE_INPUT } from "../lib/dom.js";
import { onLangChange, raw, t } from "../lib/i18n.js";
import { languageSelect, logout, me, renderLogin, session } from "../staff/session.js";

const ROLES = ["counsellor"];
const TYPING_IDLE_MS = 4000;
const TYPING_REPEAT_MS = 3000;
const TYPING_SHOW_MS = 10000;
const DELIVERED_DEBOUNCE_MS = 150;
const PENDING_MAX = 100; // events for a conversation whose claim ack is still on its way

const app = {
  socket: null,
  duty: { on: false, load: 0, capacity: 0 },
  queue: { total: 0, entries: [] },
  convs: new Map(), // id -> entry (see addConversation)
  order: [], // conversation ids, oldest first
  selected: null,
  notice: "",
  online: true,
  pending: [],
  busy: false,
};

const bar = document.getElementById("bar");
const main = document.getElementById("main");

Object.defineProperty(globalThis, "cv1", { value: Object.freeze({ ...e2e.testSurface, conversation: conversationTestSurface }) });

// --- wiping ----------------------------------------------------------------------

function wipeEntry(entry) {
  if (entry.outbox) entry.outbox.close();
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

function renderConsole() {
  renderBar();
  mount(
    main,
    app.online ? null : h("p", { class: "offline", role: "status", text: t("staff.offline") }),
    h("p", { class: ["notice", app.notice ? "" : "empty"], role: "alert", id: "notice", text: app.notice }),
    h(
      "div",
      { class: "console" },
      h("section", { class: "panel", id: "queue-panel", "aria-labelledby": "queue-h" }),
      h("section", { class: "panel", id: "convs-panel", "aria-labelledby": "convs-h" }),
      h("section", { class: "panel pane", id: "pane", "aria-label": t("staff.convs.heading") }),
    ),
  );
  renderQueue();
  renderConvList();
  renderPane();
}

/** Re-render a region and give focus back to the element that had it (by id). */
function keepFocus(fn) {
  const active = document.activeElement;
  const id = active && active.id;
  fn();
  if (id && document.activeElement !== active) {
    const again = document.getElementById(id);
    if (again) again.focus();
  }
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

function renderPane() {
  const pane = document.getElementById("pane");
  if (!pane) return;
  const entry = app.selected && app.convs.get(app.selected);
  if (!entry) {
    mount(pane, h("p", { text: t("staff.convs.select") }));
    return;
  }
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
    h("div", { class: "log-wrap", role: "log", "aria-live": "polite", "aria-label": entry.pseudonym }, log),
    h("p", { class: "typing", id: "typing", text: entry.peerTyping.size && !ended ? `${t("staff.convs.youth")} ${t("staff.convs.typing")}` : "" }),
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
  );
  log.scrollTop = log.scrollHeight;
}

function renderItem(entry, item) {
  let li;
  if (item.kind === "system") li = h("li", { class: "sys", text: t(item.key, item.vars) });
  else if (item.kind === "bad") li = h("li", { class: "msg bad", "data-kind": "bad" }, h("p", { text: t("staff.convs.bad") }));
  else {
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
    e.returning ? { text: t("staff.queue.returning") } : null,
    e.language ? { text: codeLabel("languages", e.language), lang: e.language } : null,
    e.age_band ? { text: codeLabel("age_bands", e.age_band) } : null,
    e.topic ? { text: codeLabel("topics", e.topic) } : null,
  ].filter(Boolean);
}

function renderTags(e) {
  const tags = tagList(e);
  if (!tags.length) return null;
  return h("ul", { class: "tags", "aria-label": "tags" }, tags.map((tag) => h("li", { class: ["tag", tag.urgent ? "urgent" : ""], lang: tag.lang, text: tag.text })));
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
  const text = ta.value.trim();
  if (!text) return;
  if (text.length > MAX_TEXT_CHARS || !fitsInOneBox(text)) {
    setNotice(t("staff.errors.too_long"));
    return;
  }
  ta.value = "";
  entry.draft = "";
  stopTyping(entry);
  const item = { kind: "out", text, sentAt: Date.now(), state: "sending" };
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
  const m = entry.conv.memberById(memberId);
  if (!m || m.role === "youth") return t("staff.convs.youth");
  return m.alias || m.role;
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
    for (const m of change.joined) appendItem(entry, { kind: "system", key: "staff.convs.joined", vars: { alias: m.alias || aliasOf(entry, m.member) } });
    for (const m of change.left) appendItem(entry, { kind: "system", key: "staff.convs.left", vars: { alias: m.role === "youth" ? t("staff.convs.youth") : m.alias || m.role } });
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
    if (app.selected === entry.conv.id) {
      const ta = document.getElementById("composer");
      if (ta) entry.draft = ta.value;
      const hadFocus = document.activeElement && document.activeElement.id;
      renderPane();
      if (hadFocus) {
        const el = document.getElementById(hadFocus);
        if (el) el.focus();
      }
    }
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
    if (el) el.textContent = entry.peerTyping.size && entry.state !== "ended" ? `${t("staff.convs.youth")} ${t("staff.convs.typing")}` : "";
  }
}

async function onConnect() {
  app.online = true;
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
  const socket = connect("/staff");
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", () => {
    app.online = false;
    renderConsole();
  });
  socket.on("connect_error", (err) => {
    if (err && err.message === "session_required") {
      socket.disconnect();
      wipeAll();
      start(t("staff.session_expired"));
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

setInterval(tickWaits, 1000);
start();
