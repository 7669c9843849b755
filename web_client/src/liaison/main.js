// The liaison page (/join#<secret>.<conversation>): an on-call police,
// health-care or social-services liaison joins one conversation with the
// invite link a counsellor sent (docs/design/invites.md). No account, no
// cookie, nothing stored: the secret is taken out of the URL at once
// (fragment.js), keys live in memory and are wiped when the page goes.
import { takeFragment } from "./fragment.js"; // first: strips the secret from the address bar
import * as e2e from "../lib/e2e.js";
import * as invite from "../lib/invite.js";
import { call, connect } from "../lib/calls.js";
import { Conversation, MAX_TEXT_CHARS, Outbox, takeComposerText } from "../lib/conversation.js";
import { formatClock, h, keepFocus, mount, NO_TRACE_INPUT } from "../lib/dom.js";
import { languages, lang, onLangChange, raw, setLang, t } from "../lib/i18n.js";

const TYPING_IDLE_MS = 4000;
const TYPING_REPEAT_MS = 3000;
const TYPING_SHOW_MS = 10000;
const DELIVERED_DEBOUNCE_MS = 150;

const app = {
  screen: "loading", // loading | invalid | joining | waiting | failed | declined | chat | ended
  fragment: takeFragment(),
  link: null, // {macKey, inviteId, conversation}: from the secret, which is wiped at once
  keys: null, // this page's crypto_kx pair, until it becomes the conversation's
  socket: null,
  conv: null,
  outbox: null,
  request: "",
  role: "",
  pendingJoined: null, // a `joined` racing the join ack
  items: [],
  codes: new Map(), // counsellor kx_pk -> comparison code
  peerTyping: new Map(),
  delivered: new Map(),
  deliveredTimer: null,
  typingSent: false,
  typingLast: 0,
  typingTimer: null,
  failText: "",
  endedReason: "",
  draft: "",
  notice: "",
  online: true,
};

const bar = document.getElementById("bar");
const main = document.getElementById("main");

// The invite derivations, for the known-answer tests (pure, no state).
Object.defineProperty(globalThis, "cv1", { value: Object.freeze({ ready: () => e2e.ready().then(() => true), invite: invite.inviteTestSurface }) });

// --- wiping ----------------------------------------------------------------------

function wipeSecrets() {
  if (app.link) {
    e2e.wipe(app.link.macKey);
    e2e.wipe(app.link.inviteId);
  }
  app.link = null;
  if (app.outbox) app.outbox.close();
  app.outbox = null;
  if (app.conv) app.conv.wipe();
  else if (app.keys) {
    e2e.wipe(app.keys.sk);
    e2e.wipe(app.keys.pk);
  }
  app.conv = null;
  app.keys = null;
  app.codes.clear();
  clearTimeout(app.deliveredTimer);
  app.delivered.clear();
  for (const timer of app.peerTyping.values()) clearTimeout(timer);
  app.peerTyping.clear();
  clearTimeout(app.typingTimer);
}

window.addEventListener("pagehide", () => {
  // Best effort: the others see "left" at once instead of after the grace period.
  const conversation = app.conv ? app.conv.id : app.request && app.link ? app.link.conversation : "";
  if (app.socket && conversation && (app.screen === "chat" || app.screen === "waiting")) {
    try {
      app.socket.emit("leave", { conversation });
    } catch {
      // ignore
    }
  }
  if (app.socket) app.socket.disconnect();
  wipeSecrets();
  app.items = [];
  main.replaceChildren();
});

window.addEventListener("beforeunload", (e) => {
  // A reload cannot take the seat back (the invite is used up): ask first.
  if (app.screen === "chat" || app.screen === "waiting") {
    e.preventDefault();
    e.returnValue = "";
  }
});

// --- rendering -------------------------------------------------------------------

function renderBar() {
  const select = h(
    "select",
    { id: "lang", class: "lang", "aria-label": `${t("liaison.language")} / Language`, ...NO_TRACE_INPUT },
    languages().map((l) => h("option", { value: l.code, lang: l.code, text: l.name, selected: l.code === lang() })),
  );
  select.addEventListener("change", () => setLang(select.value));
  mount(bar, h("h1", { text: t("liaison.title") }), select);
}

function roleName(role) {
  const v = raw(`liaison.roles.${role}`);
  return typeof v === "string" ? v : String(role || "");
}

function memberName(m) {
  if (!m) return "";
  if (m.role === "counsellor") return m.alias || roleName("counsellor");
  if (m.role === "youth") return roleName("youth");
  return roleName(m.alias || m.role);
}

function render(focus = false) {
  captureDraft();
  if (!focus) {
    keepFocus(paint);
    return;
  }
  paint();
  window.scrollTo(0, 0);
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1, h2");
  if (target) target.focus({ preventScroll: true });
}

function paint() {
  renderBar();
  const screen = SCREENS[app.screen] || SCREENS.loading;
  mount(main, ...[].concat(screen()));
  main.setAttribute("data-screen", app.screen);
}

function go(screen) {
  app.screen = screen;
  app.notice = "";
  render(true);
}

function heading(text) {
  return h("h2", { class: "page-h", tabindex: "-1", text });
}

function notice() {
  return h("p", { class: ["notice", app.notice ? "" : "empty"], role: "alert", id: "notice", text: app.notice });
}

function setNotice(text) {
  app.notice = text;
  const el = document.getElementById("notice");
  if (el) {
    el.textContent = text;
    el.classList.toggle("empty", !text);
  }
}

const SCREENS = {
  loading: () => [heading(t("liaison.loading"))],
  invalid: () => [heading(t("liaison.heading")), h("p", { class: "notice", role: "alert", text: t("liaison.invalid") })],
  joining: () => [heading(t("liaison.heading")), h("p", { role: "status", text: t("liaison.joining") })],
  failed: () => [heading(t("liaison.heading")), h("p", { class: "notice", role: "alert", id: "failed", text: app.failText })],
  waiting: () => [
    heading(t("liaison.waiting_heading")),
    h("p", { class: "lead", role: "status", id: "waiting", text: t("liaison.waiting") }),
    h("p", { text: t("liaison.role", { role: roleName(app.role) }) }),
    offline(),
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "leave", onclick: onLeave, text: t("liaison.leave") })),
  ],
  declined: () => [heading(t("liaison.declined_heading")), h("p", { class: "lead", id: "declined", role: "alert", text: t("liaison.declined") }), h("p", { text: t("liaison.after") })],
  ended: () => {
    const key = `liaison.ended.${app.endedReason || "done"}`;
    return [
      heading(t("liaison.ended_heading")),
      h("p", { class: "lead", id: "ended", "data-reason": app.endedReason || "done", role: "alert", text: t(key) === key ? t("liaison.ended.done") : t(key) }),
      app.items.length ? h("ol", { class: "log" }, app.items.map(renderItem)) : null,
      h("p", { text: t("liaison.after") }),
    ];
  },
  chat: () => {
    const conv = app.conv;
    const log = h("ol", { class: "log", id: "log" });
    for (const item of app.items) log.appendChild(renderItem(item));
    const ta = h("textarea", {
      id: "composer",
      rows: "3",
      maxlength: String(MAX_TEXT_CHARS),
      "data-autofocus": "",
      ...NO_TRACE_INPUT,
      oninput: onComposerInput,
      onkeydown: (e) => {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          onSend();
        }
      },
    });
    ta.value = app.draft;
    const canSend = conv && conv.state !== "ended" && conv.others().length > 0;
    return [
      heading(t("liaison.chat_heading")),
      h("p", { class: "e2e", text: t("liaison.e2e") }),
      h(
        "section",
        { class: "card members", id: "members", "aria-labelledby": "mem-h" },
        h("h3", { id: "mem-h", text: t("liaison.members") }),
        h(
          "ul",
          { class: "member-list" },
          h("li", { "data-role": "liaison", text: t("liaison.you", { role: roleName(app.role) }) }),
          (conv ? conv.others() : []).map((m) =>
            h(
              "li",
              { "data-role": m.role, "data-member": m.member },
              h("span", { class: "member-name", text: m.role === "counsellor" ? `${memberName(m)} (${roleName("counsellor")})` : memberName(m) }),
              m.role === "counsellor" && app.codes.has(m.kx_pk)
                ? h("span", { class: "compare", "data-code": app.codes.get(m.kx_pk), text: t("liaison.code", { alias: memberName(m), code: app.codes.get(m.kx_pk) }) })
                : null,
            ),
          ),
        ),
        h("p", { class: "hint", text: t("liaison.code_hint") }),
      ),
      h("div", { class: "log-wrap", role: "log", "aria-live": "polite", "aria-label": t("liaison.chat_heading") }, log),
      h("p", { class: "typing", id: "typing", text: typingText() }),
      offline(),
      h(
        "form",
        {
          class: "composer",
          onsubmit: (e) => {
            e.preventDefault();
            onSend();
          },
        },
        h("label", { for: "composer", text: t("liaison.input_label") }),
        ta,
        h("button", { type: "submit", class: "primary", id: "send", disabled: !canSend, text: t("liaison.send") }),
      ),
      notice(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "leave", onclick: onLeave, text: t("liaison.leave") })),
    ];
  },
};

function offline() {
  return app.online ? null : h("p", { class: "offline", role: "status", text: t("liaison.reconnecting") });
}

function typingText() {
  const names = [...app.peerTyping.keys()].map((id) => memberName(app.conv && app.conv.memberById(id)));
  return names.length ? t("liaison.typing", { alias: names.join(", ") }) : "";
}

function renderItem(item) {
  let li;
  if (item.kind === "system") li = h("li", { class: "sys", text: t(item.key, item.vars) });
  else if (item.kind === "bad") li = h("li", { class: "msg bad", "data-kind": "bad" }, h("p", { text: t("liaison.bad") }));
  else {
    const out = item.kind === "out";
    const stateKey = item.state === "failed" ? "failed_msg" : item.state;
    li = h(
      "li",
      { class: ["msg", out ? "out" : "in"], "data-kind": item.kind },
      h("span", { class: "who", text: out ? t("liaison.you", { role: roleName(app.role) }) : item.alias }),
      h("p", { class: "text", dir: "auto", text: item.text }),
      h(
        "span",
        { class: "meta" },
        formatClock(item.sentAt),
        out ? h("span", { class: ["state", item.state], "data-state": item.state, text: ` · ${t(`liaison.${stateKey}`)}` }) : null,
        out && item.state === "failed" ? h("button", { type: "button", class: "link", onclick: () => app.outbox && app.outbox.retry(item), text: t("liaison.retry") }) : null,
      ),
    );
  }
  item.el = li;
  return li;
}

function appendItem(item) {
  app.items.push(item);
  const log = app.screen === "chat" && document.getElementById("log");
  if (log) {
    const li = renderItem(item);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }
}

function refreshItem(item) {
  if (app.screen === "chat" && item.el && item.el.isConnected) item.el.replaceWith(renderItem(item));
}

function captureDraft() {
  const ta = document.getElementById("composer");
  if (ta) app.draft = ta.value;
}

// --- joining -----------------------------------------------------------------------

function joinError(code) {
  if (code === "bad_invite") return t("liaison.bad_invite");
  if (code === "wrong_state") return t("liaison.full");
  if (code === "rate_limited") return t("liaison.rate_limited");
  return t("liaison.failed", { code });
}

function fail(text) {
  app.failText = text;
  wipeSecrets();
  if (app.socket) app.socket.disconnect();
  go("failed");
}

async function doJoin() {
  const link = app.link;
  const keys = app.keys;
  const mac = invite.mac(link.macKey, link.conversation, keys.pk);
  const reply = await call(app.socket, "join", { invite: e2e.b64(link.inviteId), kx_pk: e2e.b64(keys.pk), mac: e2e.b64(mac) });
  e2e.wipe(mac);
  if (!reply.ok) return fail(joinError(reply.error));
  if (reply.conversation !== link.conversation) return fail(t("liaison.bad_invite"));
  app.request = String(reply.request || "");
  app.role = String(reply.role || "");
  go("waiting");
  if (app.pendingJoined) {
    const data = app.pendingJoined;
    app.pendingJoined = null;
    HANDLERS.joined(data);
  }
}

function computeCodes() {
  const conv = app.conv;
  if (!conv || !app.link) return;
  for (const m of conv.others()) {
    if (m.role !== "counsellor" || app.codes.has(m.kx_pk)) continue;
    try {
      app.codes.set(m.kx_pk, invite.comparisonCode(app.link.macKey, app.link.inviteId, conv.id, conv.keys.pk, e2e.unb64(m.kx_pk, 32)));
    } catch {
      // a malformed key: no code, and the box paths refuse it anyway
    }
  }
}

function endWith(reason) {
  captureDraft();
  app.endedReason = reason;
  wipeSecrets();
  app.draft = "";
  go("ended");
}

async function onLeave() {
  const conversation = app.conv ? app.conv.id : app.link ? app.link.conversation : "";
  if (conversation) await call(app.socket, "leave", { conversation });
  endWith("left");
  if (app.socket) app.socket.disconnect();
}

// --- chat ---------------------------------------------------------------------------

function onComposerInput() {
  const conv = app.conv;
  if (!conv) return;
  const now = Date.now();
  if (!app.typingSent || now - app.typingLast > TYPING_REPEAT_MS) {
    app.typingSent = true;
    app.typingLast = now;
    app.socket.emit("typing", { conversation: conv.id, active: true });
  }
  clearTimeout(app.typingTimer);
  app.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(app.typingTimer);
  if (app.typingSent && app.conv && app.socket.connected) app.socket.emit("typing", { conversation: app.conv.id, active: false });
  app.typingSent = false;
}

function onSend() {
  const ta = document.getElementById("composer");
  const conv = app.conv;
  if (!ta || !conv || !app.outbox || !conv.others().length) return;
  const item = takeComposerText(ta, () => setNotice(t("liaison.too_long")));
  if (!item) return;
  app.draft = "";
  stopTyping();
  appendItem(item);
  app.outbox.push(item);
  ta.focus();
}

function scheduleDelivered(from, seq) {
  if (!Number.isSafeInteger(seq)) return;
  if ((app.delivered.get(from) || 0) < seq) app.delivered.set(from, seq);
  if (app.deliveredTimer) return;
  app.deliveredTimer = setTimeout(() => {
    app.deliveredTimer = null;
    const conv = app.conv;
    if (!conv) return;
    for (const [sender, upTo] of app.delivered) app.socket.emit("delivered", { conversation: conv.id, from: sender, seq: upTo });
    app.delivered.clear();
  }, DELIVERED_DEBOUNCE_MS);
}

function clearPeerTyping(from) {
  clearTimeout(app.peerTyping.get(from));
  if (app.peerTyping.delete(from)) {
    const el = document.getElementById("typing");
    if (el) el.textContent = typingText();
  }
}

const forUs = (data) => data && app.conv && data.conversation === app.conv.id;

const HANDLERS = {
  joined(data) {
    const link = app.link;
    if (!data || !link || data.conversation !== link.conversation || app.conv) return;
    if (!app.request) {
      app.pendingJoined = data; // the join ack is still on its way
      return;
    }
    const conv = new Conversation({ id: data.conversation, member: data.member, resume: data.resume, keys: app.keys });
    try {
      conv.applyRoster({ state: data.state, epoch: data.epoch, members: data.members });
    } catch {
      conv.wipe();
      app.keys = null;
      return fail(t("liaison.failed", { code: "roster" }));
    }
    app.keys = null; // now owned (and wiped) by the conversation
    app.conv = conv;
    app.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), refreshItem);
    computeCodes();
    go("chat");
  },

  join_declined(data) {
    if (!data || !app.link || data.conversation !== app.link.conversation || app.conv) return;
    wipeSecrets();
    if (app.socket) app.socket.disconnect();
    go("declined");
  },

  roster(data) {
    if (!forUs(data)) return;
    let change;
    try {
      change = app.conv.applyRoster(data);
    } catch {
      appendItem({ kind: "bad" });
      return;
    }
    for (const m of change.joined) appendItem({ kind: "system", key: "liaison.joined", vars: { alias: memberName(m) } });
    for (const m of change.left) appendItem({ kind: "system", key: "liaison.left", vars: { alias: memberName(m) } });
    computeCodes();
    app.outbox.kick();
    for (const box of app.conv.releaseHeld()) HANDLERS.box(box);
    if (app.screen === "chat") render();
  },

  box(data) {
    if (!forUs(data)) return;
    const r = app.conv.openBox(data);
    if (r.kind === "ignored" || r.kind === "held") return;
    if (r.kind !== "replay") scheduleDelivered(data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem({ kind: "system", key: "liaison.gap" });
    if (r.kind === "bad") appendItem({ kind: "bad" });
    else if (r.kind === "msg") {
      clearPeerTyping(r.from);
      appendItem({ kind: "in", from: r.from, alias: memberName(app.conv.memberById(r.from)), text: r.text, sentAt: r.sentAt });
    }
    // "card" and "intro" are for the youth; a liaison's page ignores them.
  },

  typing(data) {
    if (!forUs(data) || data.from === app.conv.member) return;
    clearTimeout(app.peerTyping.get(data.from));
    if (data.active) app.peerTyping.set(data.from, setTimeout(() => clearPeerTyping(data.from), TYPING_SHOW_MS));
    else app.peerTyping.delete(data.from);
    const el = document.getElementById("typing");
    if (el) el.textContent = typingText();
  },

  state(data) {
    if (!forUs(data)) return;
    if (data.state === "ended") {
      endWith(data.reason || "done");
      if (app.socket) app.socket.disconnect();
      return;
    }
    app.conv.state = data.state;
    if (app.screen === "chat") render();
  },
};

async function onConnect() {
  app.online = true;
  const conv = app.conv;
  if (conv) {
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    if (app.conv !== conv) return;
    if (!reply.ok) return endWith("lost");
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
    } catch {
      return endWith("lost");
    }
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    computeCodes();
    app.outbox.kick();
    render();
  } else if (app.screen === "joining") {
    await doJoin();
  } else if (app.screen === "waiting") {
    // The server drops a waiting request with its connection: the link is used up.
    fail(t("liaison.lost_waiting"));
  }
}

function onDisconnect() {
  if (app.screen !== "chat" && app.screen !== "waiting") return;
  app.online = false;
  render();
}

// --- start-up ----------------------------------------------------------------------

async function boot() {
  document.title = t("liaison.title");
  render();
  try {
    await e2e.ready();
  } catch {
    app.failText = t("liaison.crypto");
    app.fragment = "";
    go("failed");
    return;
  }
  let parsed;
  try {
    parsed = invite.parseFragment(app.fragment);
  } catch {
    app.fragment = "";
    go("invalid");
    return;
  }
  app.fragment = "";
  app.link = { macKey: invite.macKey(parsed.secret), inviteId: invite.inviteId(parsed.secret), conversation: parsed.conversation };
  e2e.wipe(parsed.secret);
  app.keys = e2e.keypair();
  go("joining");
  const socket = connect("/liaison");
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  for (const event of Object.keys(HANDLERS)) {
    socket.on(event, (data) => {
      if (data && typeof data === "object") HANDLERS[event](data);
    });
  }
}

onLangChange(() => {
  document.title = t("liaison.title");
  render();
});

boot();
