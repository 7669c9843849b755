// The youth page: safety page → optional profile → queue → end-to-end
// encrypted chat → end. Nothing is written to any browser storage; every
// secret lives in this module's memory and is wiped on exit or pagehide.
// Design notes: docs/design/web-client.md.
import * as e2e from "../lib/e2e.js";
import { call, connect } from "../lib/calls.js";
import { Conversation, conversationTestSurface, MAX_TEXT_CHARS, Outbox, takeComposerText } from "../lib/conversation.js";
import { formatClock, h, keepFocus, mount, NO_TRACE_INPUT } from "../lib/dom.js";
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
  // Continuity and escalation (docs/design/returning.md, invites.md).
  returnInput: "", // the return code as typed on the start screen, until start
  profileValues: {}, // the start screen's choices, kept across re-renders until start
  professional: false, // "I contact you at work": the consultation lane
  startError: "", // "bad_passphrase" | "rate_limited_code": shown on the start screen
  choosing: false, // returning: "choose" → wait for them / anyone now
  returnCode: null, // {passphrase, expiresAt}: shown once, dropped when its screen is left
  codeReturnTo: null, // the screen to go back to from the return-code screen
  lastConvId: "", // a return_code racing the end of its conversation is still shown
  intros: new Map(), // request -> {role, kxPk, from}: E2E introductions by the counsellor
  consents: new Map(), // request -> {request, role, kxPk}: consent_request waiting for an answer
  introducedRoles: new Map(), // liaison kx_pk -> role, as the counsellor introduced it
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
  // The return code (shown or typed) goes with everything else.
  app.returnCode = null;
  app.returnInput = "";
  app.profileValues = {};
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
  app.intros.clear();
  app.consents.clear();
  app.introducedRoles.clear();
  app.choosing = false;
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
  render();
});

// --- rendering -----------------------------------------------------------------

function render(focus = false) {
  if (isWiped()) return;
  // The message box is rebuilt from app.draft: take what is in it now (text
  // typed while offline, or since the last render) before it goes.
  captureDraft();
  if (focus) {
    paint();
    focusScreen();
  } else keepFocus(paint);
}

function paint() {
  renderBar();
  const screen = SCREENS[app.screen] || SCREENS.loading;
  mount(main, ...[].concat(screen()));
  main.setAttribute("data-screen", app.screen);
}

function focusScreen() {
  // A new screen starts at the top, under the sticky exit bar.
  window.scrollTo(0, 0);
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) target.focus({ preventScroll: true });
}

function go(screen) {
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
    const field = (name, listKey, codesKey, labelKey = `youth.profile.${name}`) => {
      // Fixed ids (not uid()): a re-render gives the focus back by id.
      const id = `f-${name}`;
      const codes = Array.isArray(lists[listKey]) ? lists[listKey] : [];
      if (!codes.length) return null;
      return h(
        "div",
        { class: "field" },
        h("label", { for: id, text: t(labelKey) }),
        h(
          "select",
          { id, name, ...NO_TRACE_INPUT, onchange: (e) => (app.profileValues[name] = e.target.value) },
          h("option", { value: "", text: t("youth.profile.unset") }),
          codes.map((code) => h("option", { value: code, selected: app.profileValues[name] === code, text: codeLabel(codesKey, code) })),
        ),
      );
    };
    const urgentId = "f-urgent";
    const proId = "f-pro";
    const codeId = "f-code";
    const codeHint = "f-code-hint";
    // Type text, never password: a password field would make the browser offer
    // to save the code. Nothing about it is stored; it goes out with `start`.
    const codeInput = h("input", {
      id: codeId,
      name: "passphrase",
      type: "text",
      maxlength: "200",
      lang: "en",
      dir: "ltr",
      "aria-describedby": codeHint,
      ...NO_TRACE_INPUT,
      oninput: (e) => {
        app.returnInput = e.target.value;
      },
    });
    codeInput.value = app.returnInput;
    const youthOnly = h("div", { class: "youth-only", hidden: app.professional }, field("age_band", "age_bands", "age_bands"), field("gender", "genders", "genders"), field("municipality", "municipalities", "municipalities"));
    const proOnly = h("div", { class: "pro-only", hidden: !app.professional }, field("workplace_municipality", "municipalities", "municipalities", "youth.profile.workplace"));
    const form = h(
      "form",
      { class: "profile", novalidate: true, onsubmit: (e) => e.preventDefault() },
      h(
        "section",
        { class: "card return-code", "aria-labelledby": "rc-h" },
        h("h2", { id: "rc-h", text: t("youth.return.heading") }),
        h("div", { class: "field" }, h("label", { for: codeId, text: t("youth.return.label") }), codeInput, h("p", { id: codeHint, class: "hint", text: t("youth.return.hint") })),
        startErrorCard(getForm),
      ),
      h(
        "div",
        { class: "field check" },
        h("input", {
          type: "checkbox",
          id: proId,
          name: "professional",
          checked: app.professional,
          ...NO_TRACE_INPUT,
          onchange: (e) => {
            app.professional = e.target.checked;
            youthOnly.hidden = app.professional;
            proOnly.hidden = !app.professional;
          },
        }),
        h("label", { for: proId, text: t("youth.profile.professional") }),
      ),
      proOnly,
      field("language", "languages", "languages"),
      youthOnly,
      field("topic", "topics", "topics"),
      h(
        "div",
        { class: "field check" },
        h("input", { type: "checkbox", id: urgentId, name: "urgent", checked: app.profileValues.urgent === true, ...NO_TRACE_INPUT, onchange: (e) => (app.profileValues.urgent = e.target.checked) }),
        h("label", { for: urgentId, text: t("youth.profile.urgent") }),
      ),
      notice(),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", id: "start", onclick: () => onStart(readProfile(form)), disabled: app.starting, text: t("youth.profile.submit") }),
        h("button", { type: "button", class: "secondary", id: "skip", onclick: () => onStart(app.professional ? { professional: true } : null), disabled: app.starting, text: t("youth.profile.skip") }),
      ),
    );
    function getForm() {
      return form;
    }
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
      // A returning youth whose counsellor cannot take them now chooses; the
      // page says nothing else about that counsellor.
      app.choosing
        ? h(
            "section",
            { class: "card choose", id: "choose", "aria-labelledby": "ch-h" },
            h("h2", { id: "ch-h", tabindex: "-1", "data-autofocus": "", text: t("youth.choose.question") }),
            h(
              "div",
              { class: "actions" },
              h("button", { type: "button", class: "primary", id: "choose-wait", onclick: () => onChoose(true), text: t("youth.choose.wait") }),
              h("button", { type: "button", class: "secondary", id: "choose-anyone", onclick: () => onChoose(false), text: t("youth.choose.anyone") }),
            ),
          )
        : null,
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
      h("p", { class: "e2e", text: t(app.conv && app.conv.others().some((m) => m.role === "liaison") ? "youth.chat.e2e_group" : "youth.chat.e2e") }),
      membersCard(),
      consentCards(),
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

  returncode() {
    const rc = app.returnCode;
    if (!rc) return [heading(t("youth.code.heading"))];
    const advice = raw("youth.code.advice");
    return [
      heading(t("youth.code.heading")),
      h("p", { class: "lead", text: t("youth.code.intro") }),
      // The words: large, left to right in every UI language, not selectable
      // (a copy would land in the clipboard, which keyboards often keep).
      h("p", { class: "passphrase", id: "passphrase", lang: "en", dir: "ltr", translate: "no", text: rc.passphrase }),
      h("p", { class: "valid", text: t("youth.code.valid", { date: formatDate(rc.expiresAt) }) }),
      h(
        "section",
        { class: "card", "aria-labelledby": "adv-h" },
        h("h2", { id: "adv-h", text: t("youth.code.advice_heading") }),
        h("ul", { class: "advice" }, (Array.isArray(advice) ? advice : []).map((text) => h("li", { text }))),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: "primary", id: "code-done", onclick: onCodeDone, text: t("youth.code.done") }),
        h("button", { type: "button", class: "secondary", id: "pause", onclick: onPause, text: t("youth.chat.pause") }),
      ),
      h("p", { class: "hint", text: t("youth.code.once") }),
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

/** After a refused return code: say plainly what may have happened; offer a new chat. */
function startErrorCard(getForm) {
  if (!app.startError) return null;
  const bad = app.startError === "bad_passphrase";
  return h(
    "div",
    { class: "card danger start-error", id: "code-error", role: "alert" },
    h("p", { class: "lead", text: t(bad ? "youth.return.bad" : "youth.return.rate_limited") }),
    bad ? h("p", { text: t("youth.return.bad_advice") }) : null,
    h(
      "div",
      { class: "actions" },
      h("button", {
        type: "button",
        class: "primary",
        id: "start-without-code",
        onclick: () => {
          app.returnInput = "";
          app.startError = "";
          onStart(readProfile(getForm()));
        },
        text: t("youth.return.new_chat"),
      }),
    ),
  );
}

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
  return memberLabel(m);
}

/** How a member is named to the youth: a counsellor by alias, a liaison by role. */
function memberLabel(m) {
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

function formatDate(ms) {
  try {
    return new Date(ms).toLocaleDateString(lang(), { year: "numeric", month: "long", day: "numeric" });
  } catch {
    return new Date(ms).toISOString().slice(0, 10);
  }
}

/** Who else is in the chat, once a liaison is there; the youth can remove a liaison. */
function membersCard() {
  const conv = app.conv;
  if (!conv || !conv.others().some((m) => m.role === "liaison")) return null;
  return h(
    "section",
    { class: "card members", id: "members", "aria-labelledby": "mem-h" },
    h("h2", { id: "mem-h", text: t("youth.members.heading") }),
    h(
      "ul",
      { class: "member-list" },
      conv.others().map((m) => {
        const name = memberLabel(m);
        return h(
          "li",
          { "data-role": m.role, "data-member": m.member },
          h("span", { class: "member-name", text: m.role === "liaison" ? t("youth.members.liaison", { role: name }) : t("youth.members.counsellor", { alias: name }) }),
          m.role === "liaison"
            ? h("button", { type: "button", class: "secondary remove", id: `remove-${m.member}`, "aria-label": t("youth.members.remove_label", { name }), onclick: () => onRemoveMember(m), text: t("youth.members.remove") })
            : null,
        );
      }),
    ),
    h("p", { class: "hint", text: t("youth.members.note") }),
  );
}

/** A liaison asks to join: accept only what the counsellor introduced end to end. */
function consentCards() {
  return [...app.consents.values()].map((c) => {
    const intro = app.intros.get(c.request);
    const verified = Boolean(intro && intro.kxPk === c.kxPk && intro.role === c.role);
    const hid = `consent-h-${c.request}`;
    return h(
      "section",
      { class: ["card", "consent", verified ? "" : "danger"], id: `consent-${c.request}`, "data-verified": verified ? "true" : "false", "aria-labelledby": hid },
      h("h2", { id: hid, tabindex: "-1", text: t("youth.consent.heading") }),
      verified
        ? [
            h("p", { class: "lead", text: t("youth.consent.body", { alias: aliasOf(intro.from), role: rolePhrase(c.role) }) }),
            h("ul", { class: "advice" }, h("li", { text: t("youth.consent.sees") }), h("li", { text: t("youth.consent.remove") }), h("li", { text: t("youth.consent.choice") })),
          ]
        : h("p", { class: "lead", role: "alert", text: t("youth.consent.unverified") }),
      h(
        "div",
        { class: "actions" },
        verified ? h("button", { type: "button", class: "primary consent-yes", onclick: () => onConsent(c, true), text: t("youth.consent.accept") }) : null,
        h("button", { type: "button", class: [verified ? "secondary" : "primary", "consent-no"], onclick: () => onConsent(c, false), text: t("youth.consent.decline") }),
      ),
    );
  });
}

function rolePhrase(role) {
  const phrase = raw(`youth.consent.role_${role}`);
  return typeof phrase === "string" ? phrase : t("youth.chat.role_liaison");
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
  // A professional's consultation: workplace municipality instead of the
  // youth's own age, gender and home municipality.
  const names = app.professional ? ["language", "workplace_municipality", "topic"] : ["language", "age_band", "gender", "municipality", "topic"];
  if (app.professional) profile.professional = true;
  for (const name of names) {
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
  const code = app.returnInput.trim();
  if (code) payload.passphrase = code;
  app.startError = "";
  app.pending = [];
  render(); // the start buttons show as busy while the server checks
  // A return code takes the server a moment (a memory-hard hash): allow for it.
  const reply = await call(app.socket, "start", payload, code ? 30000 : undefined);
  payload.passphrase = "";
  app.starting = false;
  if (isWiped()) return;
  if (!reply.ok) {
    e2e.wipe(keys.sk);
    e2e.wipe(keys.pk);
    if (reply.error === "nobody_on_duty") {
      // The code was not spent: it stays in the field for later.
      app.closedInfo = reply.info || null;
      go("closed");
    } else if (code && (reply.error === "bad_passphrase" || reply.error === "rate_limited")) {
      app.startError = reply.error === "bad_passphrase" ? "bad_passphrase" : "rate_limited_code";
      render();
      const card = document.getElementById("code-error");
      if (card) card.scrollIntoView({ block: "nearest" });
      const next = document.getElementById("start-without-code");
      if (next) next.focus({ preventScroll: true });
    } else {
      render();
      setNotice(errorText(reply.error));
    }
    return;
  }
  app.returnInput = "";
  app.profileValues = {};
  app.choosing = reply.returning === "choose";
  const conv = new Conversation({ id: reply.conversation, member: reply.member, resume: reply.resume, keys });
  conv.applyRoster({
    state: "waiting",
    epoch: 0,
    members: [{ member: reply.member, role: "youth", alias: "", kx_pk: payload.kx_pk, seq: 0 }],
  });
  app.conv = conv;
  app.lastConvId = conv.id;
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
  if (app.screen === "decoy" || (!conv && app.screen !== "returncode")) return;
  // The decoy comes first and synchronously; the server is told afterwards.
  app.resumeScreen = app.screen;
  app.paused = true;
  app.screen = "decoy";
  render(true);
  if (conv && !app.endedReason) call(app.socket, "pause", { conversation: conv.id, paused: true });
}

async function onUnpause() {
  const conv = app.conv;
  app.paused = false;
  const live = conv && conv.state !== "ended" && !app.endedReason;
  if (app.returnCode) {
    // A return code that arrived (or was on screen) behind the decoy: show it now.
    if (app.resumeScreen !== "returncode") app.codeReturnTo = app.resumeScreen;
    go("returncode");
  } else if (!live) {
    go("ended");
    return;
  } else go(app.resumeScreen || "chat");
  if (!live) return;
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
  const entry = takeComposerText(ta, () => setNotice(t("youth.chat.too_long")));
  if (!entry) return;
  app.draft = "";
  stopTyping();
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
  // Unsent text goes with the conversation: empty the box too, or the next
  // render would take it back into app.draft.
  const ta = document.getElementById("composer");
  if (ta) ta.value = "";
  app.draft = "";
  app.endedReason = reason;
  wipeConversation();
  // Stay neutral on the decoy ("Done" shows the end); never pull the youth
  // away from a return code they are learning ("continue" shows the end).
  if (app.screen === "decoy" || app.screen === "returncode") return;
  go("ended");
}

async function onChoose(wait) {
  const conv = app.conv;
  if (!conv) return;
  const reply = await call(app.socket, "choose", { conversation: conv.id, wait });
  if (app.conv !== conv) return;
  if (reply.ok) {
    app.choosing = false;
    app.queue = { position: reply.position ?? app.queue.position, eta: reply.eta_secs ?? app.queue.eta };
    if (app.screen === "waiting") go("waiting");
  } else if (reply.error === "wrong_state") {
    app.choosing = false; // already on its way (claimed, or moved)
    if (app.screen === "waiting") render();
  } else setNotice(errorText(reply.error));
}

/** Leaving the return-code screen drops the code: it is shown only once. */
function onCodeDone() {
  app.returnCode = null;
  const back = app.codeReturnTo;
  app.codeReturnTo = null;
  if (app.endedReason || !app.conv) go("ended");
  else go(back && back !== "returncode" ? back : "chat");
}

async function onConsent(c, accept) {
  const conv = app.conv;
  if (!conv) return;
  app.consents.delete(c.request);
  if (app.screen === "chat") {
    render(); // the card goes at once: one answer per request
  }
  const reply = await call(app.socket, "consent", { conversation: conv.id, request: c.request, accept });
  if (app.conv !== conv) return;
  if (reply.ok && accept) {
    app.introducedRoles.set(c.kxPk, c.role);
    if (Number.isInteger(reply.epoch) && Array.isArray(reply.members)) {
      HANDLERS.roster({ conversation: conv.id, state: conv.state, epoch: reply.epoch, members: reply.members });
    }
  }
  app.intros.delete(c.request);
  if (app.screen === "chat") {
    render();
    if (!reply.ok) setNotice(t("youth.consent.gone"));
    else if (!accept) setNotice(t("youth.consent.declined"));
    const ta = document.getElementById("composer");
    if (ta) ta.focus();
  }
}

async function onRemoveMember(m) {
  const conv = app.conv;
  if (!conv) return;
  const reply = await call(app.socket, "remove_member", { conversation: conv.id, member: m.member });
  if (!reply.ok && app.screen === "chat") setNotice(errorText(reply.error));
}

function onStartAgain() {
  // A new connection for a new conversation: nothing of the old one survives.
  wipeConversation();
  app.items = [];
  app.endedReason = null;
  app.returnCode = null;
  app.codeReturnTo = null;
  app.startError = "";
  app.profileValues = {};
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
    for (const m of change.joined) appendItem({ kind: "system", key: "youth.chat.joined", vars: { alias: memberLabel(m) } });
    for (const m of change.left) appendItem({ kind: "system", key: "youth.chat.left", vars: { alias: memberLabel(m) } });
    if (app.outbox) app.outbox.kick();
    for (const box of conv.releaseHeld()) HANDLERS.box(box);
    if (data.state === "ended") return;
    if (app.screen === "waiting" && conv.others().length) go("chat");
    else if (app.screen === "chat") {
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
    } else if (r.kind === "intro") {
      // Kept in memory only, to check the consent_request that follows.
      if (app.intros.size >= 20) app.intros.delete(app.intros.keys().next().value);
      app.intros.set(r.request, { role: r.role, kxPk: r.kxPk, from: r.from });
      if (app.consents.has(r.request) && app.screen === "chat") {
        render();
      }
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
      render();
    }
  },

  return_code(data) {
    // Shown once; also when it races the end of its own conversation.
    if (!data || typeof data.passphrase !== "string" || !data.passphrase) return;
    if (!forUs(data) && !(app.lastConvId && data.conversation === app.lastConvId)) return;
    app.returnCode = { passphrase: data.passphrase, expiresAt: Number(data.expires_at) || 0 };
    if (app.screen === "decoy") {
      if (app.resumeScreen !== "returncode") app.codeReturnTo = app.resumeScreen;
      app.resumeScreen = "returncode";
      return;
    }
    if (app.screen !== "returncode") app.codeReturnTo = app.screen;
    go("returncode");
  },

  choose(data) {
    if (!forUs(data)) return;
    app.choosing = true;
    if (app.screen === "waiting") go("waiting");
  },

  consent_request(data) {
    if (!forUs(data) || typeof data.request !== "string" || typeof data.kx_pk !== "string") return;
    app.consents.set(data.request, { request: data.request, role: String(data.role || ""), kxPk: data.kx_pk });
    if (app.screen !== "chat") return; // shown when the youth is back in the chat
    render();
    const hd = document.getElementById(`consent-h-${data.request}`);
    if (hd) {
      hd.scrollIntoView({ block: "nearest" });
      hd.focus({ preventScroll: true });
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
