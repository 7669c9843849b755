// The chat: the counsellor's alias, the log, the typing mark, the message
// box, end (with a confirmation). Escalation lives here too: the member list
// once a liaison is in (the youth may remove them), and the consent card,
// which offers "yes" only for a request the counsellor introduced end to end.
import { call } from "../../lib/calls.js";
import { composerForm, onComposerInput, stopTyping } from "../../lib/composer.js";
import { takeComposerText } from "../../lib/conversation.js";
import { h } from "../../lib/dom.js";
import { raw, t } from "../../lib/i18n.js";
import { setNotice } from "../../lib/notice.js";
import { aliasOf, appendItem, counsellorAlias, logItem, memberLabel, typingText } from "../log.js";
import { app, handlers } from "../state.js";
import { connectionLine, errorText, heading, notice, render } from "../view.js";
import { troubleCard } from "./help.js";
import { onPause } from "./decoy.js";
import { endConversation } from "./ended.js";

export function chat() {
  const counsellor = counsellorAlias();
  // role=log on a wrapper: on the list itself it would orphan the items.
  const log = h("ol", { class: "log", id: "log" });
  for (const item of app.items) log.appendChild(logItem(item));
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
    troubleCard(),
    counsellorAwayLine(),
    composerForm({
      label: t("youth.chat.input_label"),
      sendText: t("youth.chat.send"),
      name: "message",
      value: app.draft,
      autofocus: true,
      canSend,
      onInput: () => onComposerInput(app.composer),
      onSend,
    }),
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
}

/** The counsellor's page has been gone a while: the youth waits for them (what they send is held). */
function counsellorAwayLine() {
  const conv = app.conv;
  const away = conv && conv.others().find((m) => m.role === "counsellor" && app.counsellorAway.has(m.member));
  if (!away) return null;
  return h("p", { class: "offline", id: "counsellor-away", role: "status", text: t("youth.chat.counsellor_away", { alias: memberLabel(away) }) });
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

// --- actions -------------------------------------------------------------------

function onSend() {
  const ta = document.getElementById("composer");
  const conv = app.conv;
  if (!ta || !conv || !app.outbox || conv.state !== "active") return;
  const entry = takeComposerText(ta, () => setNotice(app, t("youth.chat.too_long")));
  if (!entry) return;
  app.draft = "";
  stopTyping(app.composer);
  appendItem(entry);
  app.outbox.push(entry);
  ta.focus();
}

function setConfirmEnd(on) {
  app.confirmEnd = on;
  render();
  const next = document.getElementById(on ? "end-yes" : "end");
  if (next) next.focus();
}

function onEndConfirmed() {
  const conv = app.conv;
  if (!conv) return;
  call(app.socket, "leave", { conversation: conv.id, reason: "done" });
  endConversation("youth_left");
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
      handlers.roster({ conversation: conv.id, state: conv.state, epoch: reply.epoch, members: reply.members });
    }
  }
  app.intros.delete(c.request);
  if (app.screen === "chat") {
    render();
    if (!reply.ok) setNotice(app, t("youth.consent.gone"));
    else if (!accept) setNotice(app, t("youth.consent.declined"));
    const ta = document.getElementById("composer");
    if (ta) ta.focus();
  }
}

async function onRemoveMember(m) {
  const conv = app.conv;
  if (!conv) return;
  const reply = await call(app.socket, "remove_member", { conversation: conv.id, member: m.member });
  if (!reply.ok && app.screen === "chat") setNotice(app, errorText(reply.error));
}
