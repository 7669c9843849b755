// The liaison page's screens: enter (paste the code), joining, waiting,
// failed, declined, chat (members with the comparison code, the log, the
// message box) and ended; and what their buttons do.
import { call } from "../lib/calls.js";
import { composerForm, onComposerInput, stopTyping } from "../lib/composer.js";
import { takeComposerText } from "../lib/conversation.js";
import { h, NO_TRACE_INPUT } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { start } from "./join.js";
import { app } from "./state.js";
import { appendItem, endWith, heading, logItem, memberName, notice, offline, roleName, typingText } from "./view.js";

export const SCREENS = {
  loading: () => [heading(t("liaison.loading"))],
  enter: () => [
    heading(t("liaison.heading")),
    h("p", { class: "lead", text: t("liaison.enter") }),
    h(
      "form",
      { class: "enter", onsubmit: onEnter },
      h(
        "div",
        { class: "field" },
        h("label", { for: "invite-code", text: t("liaison.code_label") }),
        // type=text, never password (the browser would offer to save it);
        // autocomplete=off also keeps it out of the session-restore state.
        h("input", { id: "invite-code", name: "invite-code", type: "text", dir: "ltr", "aria-describedby": "invite-code-hint", "data-autofocus": "", ...NO_TRACE_INPUT }),
      ),
      h("p", { class: "hint", id: "invite-code-hint", text: t("liaison.code_where") }),
      h("button", { type: "submit", class: "primary", id: "join", text: t("liaison.join") }),
    ),
    notice(),
  ],
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
      app.items.length ? h("ol", { class: "log" }, app.items.map(logItem)) : null,
      h("p", { text: t("liaison.after") }),
    ];
  },
  chat: () => {
    const conv = app.conv;
    const log = h("ol", { class: "log", id: "log" });
    for (const item of app.items) log.appendChild(logItem(item));
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
      composerForm({
        label: t("liaison.input_label"),
        sendText: t("liaison.send"),
        value: app.draft,
        autofocus: true,
        canSend,
        onInput: () => onComposerInput(app.composer),
        onSend,
      }),
      notice(),
      h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "leave", onclick: onLeave, text: t("liaison.leave") })),
    ];
  },
};

function onEnter(e) {
  e.preventDefault();
  const input = document.getElementById("invite-code");
  if (!input) return;
  const text = input.value;
  input.value = ""; // out of the DOM before anything else happens
  start(text);
}

async function onLeave() {
  const conversation = app.conv ? app.conv.id : app.link ? app.link.conversation : "";
  if (conversation) await call(app.socket, "leave", { conversation });
  endWith("left");
  if (app.socket) app.socket.disconnect();
}

function onSend() {
  const ta = document.getElementById("composer");
  const conv = app.conv;
  if (!ta || !conv || !app.outbox || !conv.others().length) return;
  const item = takeComposerText(ta, () => setNotice(app, t("liaison.too_long")));
  if (!item) return;
  app.draft = "";
  stopTyping(app.composer);
  appendItem(item);
  app.outbox.push(item);
  ta.focus();
}
