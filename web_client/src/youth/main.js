// The youth page: safety page → optional profile → queue → end-to-end
// encrypted chat → end. Nothing is written to any browser storage; every
// secret lives in this module's memory and is wiped on exit or pagehide.
// Design notes: docs/design/web-client.md.
import * as e2e from "../lib/e2e.js";
import { call, connect } from "../lib/calls.js";
import { Conversation, conversationTestSurface, fitsInOneBox, MAX_TEXT_CHARS, Outbox } from "../lib/conversation.js";
import { formatClock, h, mount, NO_TRACE_INPUT, uid } from "../lib/dom.js";
import { languages, lang, localized, onLangChange, raw, setLang, t } from "../lib/i18n.js";
import { installQuickExit, isWiped } from "./exit.js";

const TYPING_IDLE_MS = 4000;
const TYPING_REPEAT_MS = 3000;
const TYPING_SHOW_MS = 10000; // hide a peer's indicator if no update arrives
const DELIVERED_DEBOUNCE_MS = 150;

const app = {
  screen: "loading",
  socket: null,
  status: null, // the `status` reply
  closedInfo: null, // {hours, alternatives} when nobody is on duty
  conv: null,
  outbox: null,
  queue: { position: null, eta: null },
  items: [], // chat log: {kind: "in"|"out"|"system"|"bad", ...}
  peerTyping: new Map(), // member id -> timer
  endedReason: null,
  paused: false,
  resumeScreen: null, // the screen to return to from the decoy
  draft: "",
  notice: "", // a one-line error or status on the current screen
  starting: false,
  pending: [], // events that arrived before the start ack
  delivered: new Map(), // sender -> highest seq to acknowledge
  deliveredTimer: null,
  typingSent: false,
  typingTimer: null,
  typingLastSent: 0,
  confirmEnd: false,
  online: true,
};

const main = document.getElementById("main");
const bar = document.getElementById("bar");

// --- quick exit: first, before anything can fail -----------------------------

installQuickExit(() => {
  const { socket, conv } = app;
  if (socket) {
    if (conv && !conv.wiped && app.screen !== "ended") {
      // Best effort, never awaited: the counsellor sees "left (exit)".
      try {
        socket.emit("leave", { conversation: conv.id, reason: "panic" });
      } catch {
        // ignore
      }
    }
    try {
      socket.disconnect();
    } catch {
      // ignore
    }
  }
  wipeConversation();
  app.items = [];
  app.draft = "";
  app.status = null;
  app.closedInfo = null;
});

// The crypto known-answer tests drive the exact bundle through these pure
// functions; they hold no key and no state.
Object.defineProperty(globalThis, "cv1", { value: Object.freeze({ ...e2e.testSurface, conversation: conversationTestSurface }) });

function wipeConversation() {
  if (app.outbox) app.outbox.close();
  app.outbox = null;
  if (app.conv) app.conv.wipe();
  app.conv = null;
  clearTimeout(app.deliveredTimer);
  app.delivered.clear();
  for (const timer of app.peerTyping.values()) clearTimeout(timer);
  app.peerTyping.clear();
  clearTimeout(app.typingTimer);
  app.typingSent = false;
}

// --- top bar: exit button, language switch -----------------------------------

function renderBar() {
  const exitLink = document.getElementById("qx");
  const decoy = app.screen === "decoy";
  bar.classList.toggle("decoy-bar", decoy);
  if (decoy) {
    // A red "Quick exit" on the decoy would give it away: the decoy has its own
    // neutral close control (still first in tab order, still a quick exit).
    mount(bar, h("button", { type: "button", class: "decoy-close", "data-quick-exit": "", "aria-label": t("youth.exit.link"), text: "✕" }));
    return;
  }
  const select = h(
    "select",
    { id: "lang", class: "lang", "aria-label": `${t("youth.language")} / Language / اللغة`, ...NO_TRACE_INPUT },
    languages().map((l) => h("option", { value: l.code, lang: l.code, dir: l.dir, text: l.name, selected: l.code === lang() })),
  );
  select.addEventListener("change", () => setLang(select.value));
  const button = exitLink && exitLink.parentElement === bar ? exitLink : h("a", { id: "qx", class: "qx", href: "/exit", "data-quick-exit": "" });
  button.textContent = t("youth.exit.button");
  button.setAttribute("title", t("youth.exit.shift_hint"));
  mount(bar, button, select);
  const srLink = document.getElementById("qx-link");
  if (srLink) srLink.textContent = t("youth.exit.link");
}

onLangChange(() => {
  document.title = t("youth.title");
  captureDraft();
  render();
});

// --- rendering -----------------------------------------------------------------

function render(focus = false) {
  if (isWiped()) return;
  renderBar();
  const screen = SCREENS[app.screen] || SCREENS.loading;
  mount(main, ...[].concat(screen()));
  main.setAttribute("data-screen", app.screen);
  if (focus) focusScreen();
}

function focusScreen() {
  // A new screen starts at the top, under the sticky exit bar.
  window.scrollTo(0, 0);
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) target.focus({ preventScroll: true });
}

function go(screen) {
  captureDraft();
  app.screen = screen;
  app.notice = "";
  app.confirmEnd = false;
  render(true);
}

function heading(text) {
  return h("h1", { tabindex: "-1", text });
}

function notice() {
  return h("p", { class: ["notice", app.notice ? "" : "empty"], role: "alert", text: app.notice || "" });
}

function hoursText() {
  const src = (app.closedInfo && app.closedInfo.hours) || (app.status && app.status.hours);
  return localized(src);
}

function emergency() {
  const number = String((app.status && app.status.emergency) || "112").replace(/[^0-9+ -]/g, "");
  return number || "112";
}

function telHref(number) {
  return `tel:${String(number).replace(/[^0-9+]/g, "")}`;
}

const SCREENS = {
  loading() {
    return [heading(t("youth.loading")), notice()];
  },

  error() {
    return [heading(t("youth.error.generic")), h("p", { role: "alert", text: app.notice || t("youth.error.generic") })];
  },

  safety() {
    const hours = hoursText();
    return [
      heading(t("youth.safety.heading")),
      h("p", { class: "lead", text: t("youth.safety.intro") }),
      h(
        "section",
        { class: "card danger", "aria-labelledby": "s-danger" },
        h("h2", { id: "s-danger", text: t("youth.safety.danger_heading") }),
        h("p", {}, h("a", { href: telHref(emergency()), class: "tel", text: t("youth.safety.danger_body", { emergency: emergency() }) })),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "s-what" },
        h("h2", { id: "s-what", text: t("youth.safety.what_heading") }),
        h("p", { text: t("youth.safety.what_is") }),
        h("p", { text: t("youth.safety.what_isnt") }),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "s-report" },
        h("h2", { id: "s-report", text: t("youth.safety.report_heading") }),
        h("p", { text: t("youth.safety.report_body") }),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "s-history" },
        h("h2", { id: "s-history", text: t("youth.safety.history_heading") }),
        h("p", { text: t("youth.safety.history_body") }),
        h(
          "ul",
          { class: "browsers" },
          ["chrome", "safari", "firefox", "samsung"].map((b) => h("li", { text: t(`youth.safety.private_${b}`) })),
        ),
        h("p", { text: t("youth.safety.private_after") }),
      ),
      h(
        "section",
        { class: "card exit-info", "aria-labelledby": "s-exit" },
        h("h2", { id: "s-exit", text: t("youth.safety.exit_heading") }),
        h("p", { text: t("youth.safety.exit_body") }),
        h("p", { text: t("youth.exit.shift_hint") }),
        h("p", { class: "try", text: t("youth.safety.exit_try") }),
      ),
      hours
        ? h(
            "section",
            { class: "card", "aria-labelledby": "s-hours" },
            h("h2", { id: "s-hours", text: t("youth.safety.hours_heading") }),
            h("p", { text: hours }),
          )
        : null,
      notice(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "go-on", onclick: onSafetyContinue, text: t("youth.safety.continue") })),
    ];
  },

  profile() {
    const lists = (app.status && app.status.profile) || {};
    const field = (name, listKey, codesKey) => {
      const id = uid("f");
      const codes = Array.isArray(lists[listKey]) ? lists[listKey] : [];
      if (!codes.length) return null;
      return h(
        "div",
        { class: "field" },
        h("label", { for: id, text: t(`youth.profile.${name}`) }),
        h(
          "select",
          { id, name, ...NO_TRACE_INPUT },
          h("option", { value: "", text: t("youth.profile.unset") }),
          codes.map((code) => h("option", { value: code, text: codeLabel(codesKey, code) })),
        ),
      );
    };
    const urgentId = uid("f");
    const form = h(
      "form",
      { class: "profile", novalidate: true, onsubmit: (e) => e.preventDefault() },
      field("language", "languages", "languages"),
      field("age_band", "age_bands", "age_bands"),
      field("gender", "genders", "genders"),
      field("municipality", "municipalities", "municipalities"),
      field("topic", "topics", "topics"),
      h("div", { class: "field check" }, h("input", { type: "checkbox", id: urgentId, name: "urgent", ...NO_TRACE_INPUT }), h("label", { for: urgentId, text: t("youth.profile.urgent") })),
      notice(),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", id: "start", onclick: () => onStart(readProfile(form)), disabled: app.starting, text: t("youth.profile.submit") }),
        h("button", { type: "button", class: "secondary", id: "skip", onclick: () => onStart(null), disabled: app.starting, text: t("youth.profile.skip") }),
      ),
    );
    return [heading(t("youth.profile.heading")), h("p", { text: t("youth.profile.intro") }), form];
  },

  closed() {
    const info = app.closedInfo || app.status || {};
    const alternatives = Array.isArray(info.alternatives) ? info.alternatives : [];
    const hours = hoursText();
    return [
      heading(t("youth.closed.heading")),
      h("p", { text: t("youth.closed.body") }),
      h("p", { class: "card danger" }, h("a", { href: telHref(emergency()), class: "tel", text: t("youth.closed.danger", { emergency: emergency() }) })),
      hours ? h("section", { class: "card", "aria-labelledby": "c-hours" }, h("h2", { id: "c-hours", text: t("youth.closed.hours_heading") }), h("p", { text: hours })) : null,
      alternatives.length
        ? h(
            "section",
            { class: "card", "aria-labelledby": "c-alt" },
            h("h2", { id: "c-alt", text: t("youth.closed.alternatives_heading") }),
            h(
              "ul",
              { class: "alternatives" },
              alternatives.map((a) =>
                h(
                  "li",
                  {},
                  h("strong", { text: String(a.name || "") }),
                  " ",
                  a.phone ? h("a", { href: telHref(a.phone), class: "tel", text: t("youth.closed.call", { phone: String(a.phone) }) }) : null,
                  a.hours ? h("span", { class: "alt-hours", text: localized(a.hours) }) : null,
                ),
              ),
            ),
          )
        : null,
      notice(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "retry", onclick: onRetryOpen, text: t("youth.closed.retry") })),
    ];
  },

  waiting() {
    const { position, eta } = app.queue;
    const etaText = eta === null ? "" : eta <= 60 ? t("youth.waiting.eta_soon") : t("youth.waiting.eta", { min: Math.ceil(eta / 60) });
    return [
      heading(t("youth.waiting.heading")),
      h(
        "div",
        { class: "card queue", id: "queue-live", role: "status", "aria-live": "polite", "aria-atomic": "true" },
        position ? h("p", { class: "position", text: t("youth.waiting.position", { n: position }) }) : null,
        etaText ? h("p", { class: "eta", text: etaText }) : null,
      ),
      h("p", { text: t("youth.waiting.note") }),
      connectionLine(),
      notice(),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", id: "pause", onclick: onPause, text: t("youth.chat.pause") }),
        h("button", { type: "button", class: "secondary", id: "leave", onclick: onLeaveQueue, text: t("youth.waiting.leave") }),
      ),
      h("p", { class: "hint", text: t("youth.chat.pause_hint") }),
    ];
  },

  chat() {
    const counsellor = counsellorAlias();
    // role=log on a wrapper: on the list itself it would orphan the items.
    const log = h("ol", { class: "log", id: "log" });
    for (const item of app.items) log.appendChild(renderItem(item));
    const inputId = "composer";
    const textarea = h("textarea", {
      id: inputId,
      name: "message",
      rows: "3",
      maxlength: String(MAX_TEXT_CHARS),
      "data-autofocus": "",
      ...NO_TRACE_INPUT,
      oninput: onComposerInput,
      onkeydown: onComposerKey,
    });
    textarea.value = app.draft;
    const canSend = app.conv && app.conv.state === "active" && app.conv.others().length > 0;
    return [
      heading(t("youth.chat.heading")),
      h("p", { class: "with", id: "with", text: counsellor ? t("youth.chat.with", { alias: counsellor }) : t("youth.chat.waiting_for_counsellor") }),
      h("p", { class: "e2e", text: t("youth.chat.e2e") }),
      h("div", { class: "log-wrap", role: "log", "aria-live": "polite", "aria-label": t("youth.chat.log_label") }, log),
      h("p", { class: "typing", id: "typing", text: typingText() }),
      connectionLine(),
      h(
        "form",
        { class: "composer", onsubmit: onSend },
        h("label", { for: inputId, text: t("youth.chat.input_label") }),
        textarea,
        h("button", { type: "submit", class: "primary", id: "send", disabled: !canSend, text: t("youth.chat.send") }),
      ),
      notice(),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "secondary", id: "pause", onclick: onPause, text: t("youth.chat.pause") }),
        app.confirmEnd
          ? h(
              "div",
              { class: "confirm", role: "group", "aria-labelledby": "end-q" },
              h("p", { id: "end-q", text: t("youth.chat.end_confirm") }),
              h("button", { type: "button", class: "danger-btn", id: "end-yes", onclick: onEndConfirmed, text: t("youth.chat.end_yes") }),
              h("button", { type: "button", class: "secondary", id: "end-no", onclick: () => setConfirmEnd(false), text: t("youth.chat.end_no") }),
            )
          : h("button", { type: "button", class: "secondary", id: "end", onclick: () => setConfirmEnd(true), text: t("youth.chat.end") }),
      ),
      h("p", { class: "hint", text: t("youth.chat.pause_hint") }),
    ];
  },

  decoy() {
    const items = raw("youth.decoy.items");
    return [
      heading(t("youth.decoy.heading")),
      h("ul", { class: "notes" }, (Array.isArray(items) ? items : []).map((text) => h("li", { text }))),
      h("div", { class: "actions" }, h("button", { type: "button", class: "plain", id: "decoy-done", onclick: onUnpause, text: t("youth.decoy.done") })),
    ];
  },

  ended() {
    const reason = app.endedReason || "done";
    const key = `youth.ended.${reason}`;
    return [
      heading(t("youth.ended.heading")),
      h("p", { class: "lead", text: t(key) === key ? t("youth.ended.done") : t(key) }),
      app.items.length ? h("ol", { class: "log", "aria-label": t("youth.chat.log_label") }, app.items.map(renderItem)) : null,
      h("p", { text: t("youth.ended.after") }),
      notice(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "primary", id: "again", onclick: onStartAgain, text: t("youth.ended.again") })),
    ];
  },
};

function codeLabel(listKey, code) {
  const label = raw(`youth.codes.${listKey}.${code}`);
  return typeof label === "string" ? label : code; // municipality names are proper names
}

function connectionLine() {
  return app.online ? null : h("p", { class: "offline", role: "status", text: t("youth.chat.reconnecting") });
}

function counsellorAlias() {
  const conv = app.conv;
  if (!conv) return app.lastAlias || "";
  const c = conv.others().find((m) => m.role === "counsellor");
  if (c) app.lastAlias = c.alias || t("youth.chat.counsellor");
  return c ? c.alias || t("youth.chat.counsellor") : "";
}

function aliasOf(memberId) {
  const m = app.conv && app.conv.memberById(memberId);
  if (!m) return t("youth.chat.counsellor");
  return m.alias || t(m.role === "liaison" ? "youth.chat.role_liaison" : "youth.chat.counsellor");
}

function typingText() {
  const names = [...app.peerTyping.keys()].map(aliasOf);
  return names.length ? t("youth.chat.typing", { alias: names.join(", ") }) : "";
}

function renderItem(item) {
  let li;
  if (item.kind === "system") {
    li = h("li", { class: "sys", text: item.key ? t(item.key, item.vars) : item.text });
  } else if (item.kind === "card") {
    li = renderCard(item);
  } else if (item.kind === "bad") {
    // Never the text: a box that fails to verify is shown only as such.
    li = h("li", { class: "msg bad", "data-kind": "bad" }, h("p", { text: t("youth.chat.bad") }));
  } else {
    li = renderMessage(item);
  }
  item.el = li;
  return li;
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

function renderMessage(item) {
  const out = item.kind === "out";
  return h(
    "li",
    { class: ["msg", out ? "out" : "in"], "data-kind": item.kind },
    h("span", { class: "who", text: out ? t("youth.chat.you") : item.alias }),
    h("p", { class: "text", dir: "auto", text: item.text }),
    h(
      "span",
      { class: "meta" },
      formatClock(item.sentAt),
      out ? h("span", { class: ["state", item.state], "data-state": item.state, text: ` · ${t(`youth.chat.${item.state}`)}` }) : null,
      out && item.state === "failed" ? h("button", { type: "button", class: "link retry", onclick: () => app.outbox && app.outbox.retry(item), text: t("youth.chat.retry") }) : null,
    ),
  );
}

function appendItem(item) {
  app.items.push(item);
  if (app.screen !== "chat") return;
  const log = document.getElementById("log");
  if (log) {
    const li = renderItem(item);
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }
}

function refreshItem(item) {
  const old = item.el;
  if (app.screen !== "chat" || !old || !old.isConnected) return;
  old.replaceWith(renderItem(item));
}

function refreshTyping() {
  const el = document.getElementById("typing");
  if (el) el.textContent = typingText();
}

function refreshQueue() {
  if (app.screen === "waiting") {
    const live = document.getElementById("queue-live");
    const { position, eta } = app.queue;
    if (live) {
      const etaText = eta === null ? "" : eta <= 60 ? t("youth.waiting.eta_soon") : t("youth.waiting.eta", { min: Math.ceil(eta / 60) });
      mount(live, position ? h("p", { class: "position", text: t("youth.waiting.position", { n: position }) }) : null, etaText ? h("p", { class: "eta", text: etaText }) : null);
    }
  }
}

function setNotice(text) {
  app.notice = text;
  const el = main.querySelector(".notice");
  if (el) {
    el.textContent = text;
    el.classList.toggle("empty", !text);
  }
}

function captureDraft() {
  const ta = document.getElementById("composer");
  if (ta) app.draft = ta.value;
}

function setConfirmEnd(on) {
  captureDraft();
  app.confirmEnd = on;
  render();
  const next = document.getElementById(on ? "end-yes" : "end");
  if (next) next.focus();
}

// --- actions -------------------------------------------------------------------

function errorText(code) {
  if (code === "queue_full") return t("youth.error.queue_full");
  if (code === "rate_limited") return t("youth.error.rate_limited");
  if (code === "offline" || code === "timeout") return t("youth.error.offline");
  return t("youth.error.generic");
}

/** Resolve when the socket is connected (or after timeoutMs, whichever first). */
function whenConnected(timeoutMs = 10000) {
  const socket = app.socket;
  if (!socket || socket.connected) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      socket.off("connect", done);
      resolve();
    }
    socket.on("connect", done);
  });
}

async function refreshStatus() {
  // A slow phone may press "continue" before the socket is up: wait for it.
  await whenConnected();
  const reply = await call(app.socket, "status", {});
  if (reply.ok) {
    app.status = reply;
    return reply;
  }
  return null;
}

async function onSafetyContinue() {
  const status = await refreshStatus();
  if (!status) {
    setNotice(t("youth.error.offline"));
    return;
  }
  if (!status.open) {
    app.closedInfo = { hours: status.hours, alternatives: status.alternatives };
    go("closed");
  } else {
    go("profile");
  }
}

async function onRetryOpen() {
  const status = await refreshStatus();
  if (!status) return setNotice(t("youth.error.offline"));
  if (status.open) go("profile");
  else {
    app.closedInfo = { hours: status.hours, alternatives: status.alternatives };
    go("closed");
    setNotice(t("youth.closed.body"));
  }
}

function readProfile(form) {
  const profile = {};
  for (const name of ["language", "age_band", "gender", "municipality", "topic"]) {
    const el = form.elements.namedItem(name);
    if (el && el.value) profile[name] = el.value;
  }
  const urgent = form.elements.namedItem("urgent");
  if (urgent && urgent.checked) profile.urgent = true;
  return Object.keys(profile).length ? profile : null;
}

async function onStart(profile) {
  if (app.starting) return;
  app.starting = true;
  setNotice("");
  const keys = e2e.keypair();
  const payload = { kx_pk: e2e.b64(keys.pk) };
  if (profile) payload.profile = profile;
  app.pending = [];
  const reply = await call(app.socket, "start", payload);
  app.starting = false;
  if (isWiped()) return;
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    if (reply.error === "nobody_on_duty") {
      app.closedInfo = reply.info || null;
      go("closed");
    } else {
      render();
      setNotice(errorText(reply.error));
    }
    return;
  }
  const conv = new Conversation({ id: reply.conversation, member: reply.member, resume: reply.resume, keys });
  conv.applyRoster({
    state: "waiting",
    epoch: 0,
    members: [{ member: reply.member, role: "youth", alias: "", kx_pk: payload.kx_pk, seq: 0 }],
  });
  app.conv = conv;
  app.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), onOutboxChange);
  app.items = [];
  app.queue = { position: reply.position ?? null, eta: reply.eta_secs ?? null };
  app.endedReason = null;
  go("waiting");
  const pending = app.pending;
  app.pending = [];
  for (const [event, data] of pending) HANDLERS[event](data);
}

async function onLeaveQueue() {
  const conv = app.conv;
  if (!conv) return;
  await call(app.socket, "leave", { conversation: conv.id, reason: "done" });
  endConversation("left_queue");
}

function onPause() {
  const conv = app.conv;
  if (!conv || app.screen === "decoy") return;
  // The decoy comes first and synchronously; the server is told afterwards.
  captureDraft();
  app.resumeScreen = app.screen;
  app.paused = true;
  app.screen = "decoy";
  render(true);
  call(app.socket, "pause", { conversation: conv.id, paused: true });
}

async function onUnpause() {
  const conv = app.conv;
  app.paused = false;
  if (!conv || conv.state === "ended" || app.endedReason) {
    go("ended");
    return;
  }
  const back = app.resumeScreen || "chat";
  go(back);
  const reply = await call(app.socket, "pause", { conversation: conv.id, paused: false });
  if (reply.ok && reply.state && app.conv === conv) {
    conv.state = reply.state;
    if (reply.state === "active" && app.screen === "waiting") go("chat");
    else if (app.screen === "chat") render();
  }
}

function onComposerInput() {
  const conv = app.conv;
  if (!conv || conv.state !== "active") return;
  const now = Date.now();
  if (!app.typingSent || now - app.typingLastSent > TYPING_REPEAT_MS) {
    app.typingSent = true;
    app.typingLastSent = now;
    app.socket.emit("typing", { conversation: conv.id, active: true });
  }
  clearTimeout(app.typingTimer);
  app.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
  clearTimeout(app.typingTimer);
  const conv = app.conv;
  if (app.typingSent && conv && !conv.wiped && app.socket.connected) {
    app.socket.emit("typing", { conversation: conv.id, active: false });
  }
  app.typingSent = false;
}

function onComposerKey(e) {
  // Enter sends, Shift+Enter is a new line (as in most chats).
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    onSend(e);
  }
}

function onSend(e) {
  if (e) e.preventDefault();
  const ta = document.getElementById("composer");
  const conv = app.conv;
  if (!ta || !conv || !app.outbox || conv.state !== "active") return;
  const text = ta.value.trim();
  if (!text) return;
  if (text.length > MAX_TEXT_CHARS || !fitsInOneBox(text)) {
    setNotice(t("youth.chat.too_long"));
    return;
  }
  ta.value = "";
  app.draft = "";
  stopTyping();
  const entry = { kind: "out", text, sentAt: Date.now(), state: "sending" };
  appendItem(entry);
  app.outbox.push(entry);
  ta.focus();
}

function onOutboxChange(entry) {
  refreshItem(entry);
  if (entry.state === "failed") setNotice(t("youth.chat.failed"));
}

function onEndConfirmed() {
  const conv = app.conv;
  if (!conv) return;
  call(app.socket, "leave", { conversation: conv.id, reason: "done" });
  endConversation("youth_left");
}

function endConversation(reason) {
  captureDraft();
  app.draft = "";
  app.endedReason = reason;
  wipeConversation();
  if (app.screen === "decoy") return; // stay neutral; "Done" shows the end
  go("ended");
}

function onStartAgain() {
  // A new connection for a new conversation: nothing of the old one survives.
  wipeConversation();
  app.items = [];
  app.endedReason = null;
  app.queue = { position: null, eta: null };
  app.socket.disconnect();
  app.socket.connect();
  go("safety");
}

// --- server events ---------------------------------------------------------------

function forUs(data) {
  return data && app.conv && data.conversation === app.conv.id;
}

const HANDLERS = {
  queue(data) {
    if (!forUs(data)) return;
    app.queue = { position: data.position ?? app.queue.position, eta: data.eta_secs ?? app.queue.eta };
    refreshQueue();
  },

  roster(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    let change;
    try {
      change = conv.applyRoster(data);
    } catch {
      appendItem({ kind: "bad" });
      return;
    }
    for (const m of change.joined) appendItem({ kind: "system", key: "youth.chat.joined", vars: { alias: m.alias || aliasOf(m.member) } });
    for (const m of change.left) appendItem({ kind: "system", key: "youth.chat.left", vars: { alias: m.alias || t("youth.chat.counsellor") } });
    if (app.outbox) app.outbox.kick();
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    if (data.state === "ended") return;
    if (app.screen === "waiting" && conv.others().length) go("chat");
    else if (app.screen === "chat") {
      captureDraft();
      render();
    } else if (app.screen === "decoy") app.resumeScreen = conv.others().length ? "chat" : app.resumeScreen;
  },

  box(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    const r = conv.openBox(data);
    if (r.kind === "ignored" || r.kind === "held") return;
    if (r.kind !== "replay") scheduleDelivered(data.from, data.seq);
    if (r.kind === "replay") return;
    if (r.gap) appendItem({ kind: "system", key: "youth.chat.gap" });
    if (r.kind === "bad") appendItem({ kind: "bad" });
    else if (r.kind === "msg") {
      clearPeerTyping(r.from);
      appendItem({ kind: "in", from: r.from, alias: aliasOf(r.from), text: r.text, sentAt: r.sentAt });
    } else if (r.kind === "card") {
      appendItem({ kind: "card", from: r.from, alias: aliasOf(r.from), card: r.card, sentAt: r.sentAt });
    }
  },

  typing(data) {
    if (!forUs(data) || data.from === app.conv.member) return;
    if (data.active) {
      clearTimeout(app.peerTyping.get(data.from));
      app.peerTyping.set(data.from, setTimeout(() => clearPeerTyping(data.from), TYPING_SHOW_MS));
    } else clearPeerTyping(data.from);
    refreshTyping();
  },

  state(data) {
    if (!forUs(data)) return;
    const conv = app.conv;
    if (data.state === "ended") {
      endConversation(data.reason || "done");
      return;
    }
    conv.state = data.state;
    if (data.state === "paused") return;
    if (data.state === "active" && app.screen === "waiting" && conv.others().length) go("chat");
    else if (app.screen === "chat") {
      captureDraft();
      render();
    }
  },
};

function clearPeerTyping(from) {
  clearTimeout(app.peerTyping.get(from));
  if (app.peerTyping.delete(from)) refreshTyping();
}

function scheduleDelivered(from, seq) {
  if (!Number.isSafeInteger(seq)) return;
  if ((app.delivered.get(from) || 0) < seq) app.delivered.set(from, seq);
  if (app.deliveredTimer) return;
  app.deliveredTimer = setTimeout(() => {
    app.deliveredTimer = null;
    const conv = app.conv;
    if (!conv) return;
    for (const [sender, upTo] of app.delivered) {
      app.socket.emit("delivered", { conversation: conv.id, from: sender, seq: upTo });
    }
    app.delivered.clear();
  }, DELIVERED_DEBOUNCE_MS);
}

async function onConnect() {
  app.online = true;
  const conv = app.conv;
  if (conv && !conv.wiped) {
    const reply = await call(app.socket, "resume", { conversation: conv.id, member: conv.member, resume: conv.resume });
    if (app.conv !== conv) return;
    if (!reply.ok) {
      endConversation("lost");
      return;
    }
    try {
      conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
    } catch {
      endConversation("lost");
      return;
    }
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    if (reply.position !== undefined) app.queue = { position: reply.position, eta: reply.eta_secs ?? null };
    if (app.outbox) app.outbox.kick();
    if (app.screen !== "decoy") render();
  } else {
    await refreshStatus();
    if (app.screen === "loading") go("safety");
    else if (app.screen === "safety" || app.screen === "closed") render();
  }
}

function onDisconnect() {
  if (isWiped()) return;
  app.online = false;
  if (app.screen === "waiting" || app.screen === "chat") {
    captureDraft();
    render();
  }
}

// --- start-up --------------------------------------------------------------------

async function boot() {
  document.title = t("youth.title");
  renderBar();
  render();
  try {
    await e2e.ready();
  } catch {
    app.notice = t("youth.error.crypto");
    app.screen = "error";
    render(true);
    return;
  }
  if (isWiped()) return;
  // Show the safety page at once; status (hours, open) fills in when it arrives.
  app.screen = "safety";
  render();
  const socket = connect("/youth");
  app.socket = socket;
  socket.on("connect", onConnect);
  socket.on("disconnect", onDisconnect);
  for (const event of Object.keys(HANDLERS)) {
    socket.on(event, (data) => {
      if (isWiped()) return;
      if (!app.conv && app.starting) {
        app.pending.push([event, data]);
        return;
      }
      HANDLERS[event](data);
    });
  }
}

boot();
