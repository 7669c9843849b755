// The counsellor's conversations: the list (unread badges, typing, state),
// the open one's pane (members, join requests, log, message box, end or
// close, tools), and what happens to a conversation: added (claim, take
// next, an accepted transfer), selected, ended, closed.
import { call } from "../lib/calls.js";
import { clearPeerTyping, composerForm, onComposerInput, stopTyping } from "../lib/composer.js";
import { Conversation, Outbox, takeComposerText } from "../lib/conversation.js";
import { h, keepFocus, mount } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { setNotice } from "../lib/notice.js";
import { updateTitle } from "./alerts.js";
import { cannedBar } from "./canned.js";
import { handoverBlock } from "./handover.js";
import { requestCards } from "./invites.js";
import { appendItem, logItem, refreshItem } from "./log.js";
import { app, handlers, newEntry, wipeEntry } from "./state.js";
import { tools } from "./tools.js";
import { assignLabel, displayName, nicknameForm } from "./labels.js";
import { askEnd, closeEndDialog } from "./wrapup.js";
import { aliasOf, errorText, memberName, renderTags, saveDraft, stateKey, stateLabel } from "./view.js";

export function renderConvList() {
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
              const typing = entry.composer.peerTyping.size > 0 && entry.state !== "ended";
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
                  h("span", { class: "pseudo", text: displayName(entry) }),
                  entry.unread ? h("span", { class: "badge", "aria-label": t("staff.convs.unread", { n: entry.unread }), text: String(entry.unread) }) : null,
                  h("span", { class: "st", "data-state": stateKey(entry), text: typing ? `${stateLabel(entry)} · ${t("staff.convs.typing")}` : stateLabel(entry) }),
                ),
              );
            }),
          )
        : h("p", { text: t("staff.convs.empty") }),
    );
  });
  updateTitle();
}

export function renderPane() {
  const pane = document.getElementById("pane");
  if (!pane) return;
  const entry = app.selected && app.convs.get(app.selected);
  if (!entry) {
    mount(pane, h("p", { text: t("staff.convs.select") }));
    return;
  }
  saveDraft();
  const keep = scrollPlace(pane, entry);
  pane.setAttribute("data-conversation", entry.conv.id);
  const ended = entry.state === "ended";
  const log = h("ol", { class: "log", id: "log" });
  for (const item of entry.items) log.appendChild(logItem(entry, item));
  // Paused: the youth is on the decoy screen; their page holds what arrives
  // and shows it when they come back, so the counsellor may still write.
  const canSend = (entry.state === "active" || entry.state === "paused") && entry.conv.others().length > 0;
  mount(
    pane,
    h(
      "div",
      { class: "pane-head" },
      h("h2", { id: "pane-h", tabindex: "-1", "data-pseudonym": entry.pseudonym, text: displayName(entry) }),
      h("span", { class: "st", id: "pane-state", role: "status", "data-state": stateKey(entry), text: stateLabel(entry) }),
      // At the top, away from Send: ending is never one slip from sending.
      ended
        ? h("button", { type: "button", class: "secondary", id: "close-conv", onclick: () => closeConversation(entry), text: t("staff.convs.close") })
        : h("button", { type: "button", class: "danger-btn", id: "end-conv", onclick: () => askEnd(entry, onEnd), text: t("staff.convs.end") }),
    ),
    nicknameForm(entry, () => {
      renderConvList();
      renderPane();
    }),
    renderTags(entry.queueEntry),
    ended ? null : membersList(entry),
    ended ? null : requestCards(entry),
    handoverBlock(entry),
    h(
      "div",
      { class: ["pane-body", ended ? "no-tools" : ""] },
      h(
        "div",
        { class: "pane-main" },
        h("div", { class: "log-wrap", role: "log", "aria-live": "polite", "aria-label": displayName(entry) }, log),
        h("p", { class: "typing", id: "typing", text: typingNames(entry) }),
        composerNote(entry),
        cannedBar(entry, ended),
        composerForm({
          label: t("staff.convs.input_label", { name: displayName(entry) }),
          sendText: t("staff.convs.send"),
          value: entry.draft,
          disabled: ended,
          canSend,
          onInput: () => onComposerInput(entry.composer),
          onSend: () => onSend(entry),
        }),
      ),
      // Beside the log on a wide screen, in a box that scrolls by itself:
      // opening a tool moves neither the page nor the log.
      ended ? null : h("aside", { class: "pane-tools", "aria-label": t("staff.tools_heading") }, tools(entry)),
    ),
  );
  restoreScroll(log, keep);
}

/**
 * Where the log and the page stand before the pane is redrawn (a tool's
 * answer, a roster change): a counsellor reading back up the log stays
 * where they read, and the page does not jump; at the bottom (or on another
 * conversation) the log follows the newest message.
 */
function scrollPlace(pane, entry) {
  const old = document.getElementById("log");
  const same = pane.getAttribute("data-conversation") === entry.conv.id && old;
  return {
    page: window.scrollY,
    log: same && old.scrollHeight - old.scrollTop - old.clientHeight > 4 ? old.scrollTop : null,
  };
}

function restoreScroll(log, keep) {
  log.scrollTop = keep.log === null ? log.scrollHeight : keep.log;
  if (window.scrollY !== keep.page) window.scrollTo(window.scrollX, keep.page);
}

/** Everyone but the youth, once someone else is in: liaisons with their comparison code and Remove. */
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

/** Why what is written now will wait: the youth hid the chat, or their page is gone a while. */
function composerNote(entry) {
  if (entry.state === "ended") return null;
  if (entry.youthAway) return h("p", { class: "hint composer-note", id: "composer-note", "data-why": "offline", role: "status", text: t("staff.convs.offline_note") });
  if (entry.state === "paused") return h("p", { class: "hint composer-note", id: "composer-note", "data-why": "paused", role: "status", text: t("staff.convs.paused_note") });
  return null;
}

function typingNames(entry) {
  const typing = entry.composer.peerTyping;
  if (!typing.size || entry.state === "ended") return "";
  return `${[...typing.keys()].map((id) => aliasOf(entry, id)).join(", ")} ${t("staff.convs.typing")}`;
}

/** The peers' typing marks changed: the list shows "typing", and so does the open pane. */
export function refreshTyping(entry) {
  renderConvList();
  if (app.selected === entry.conv.id) {
    const el = document.getElementById("typing");
    if (el) el.textContent = typingNames(entry);
  }
}

// --- a conversation's life ---------------------------------------------------------

/** Seat this counsellor in a conversation (a claim or transfer reply). Throws on a bad roster. */
export function addConversation(reply, keys, pseudonym, queueEntry) {
  const conv = new Conversation({ id: reply.conversation, member: reply.member, resume: reply.resume, keys });
  conv.applyRoster({ state: reply.state, epoch: reply.epoch, members: reply.members });
  const entry = newEntry(conv, pseudonym || reply.conversation.slice(0, 6), reply.state || "active", queueEntry);
  entry.label = assignLabel(conv.id); // before it joins app.convs: unique among the others
  entry.outbox = new Outbox(conv, (p) => call(app.socket, "send", p), (item) => refreshItem(entry, item));
  app.convs.set(conv.id, entry);
  app.order.push(conv.id);
  // Events that raced ahead of the claim ack.
  const pending = app.pending.filter(([, data]) => data && data.conversation === conv.id);
  app.pending = app.pending.filter(([, data]) => !data || data.conversation !== conv.id);
  for (const [event, data] of pending) handlers[event](data);
  return entry;
}

export function select(id) {
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

export function markEnded(entry, reason) {
  if (entry.state === "ended") return;
  entry.state = "ended";
  entry.reason = reason || "done";
  closeEndDialog(entry); // ended meanwhile: nothing left to confirm
  // Keys go at once; the text stays on screen until the counsellor closes it.
  wipeEntry(entry);
  renderConvList();
  if (app.selected === entry.conv.id) {
    const ta = document.getElementById("composer");
    if (ta) entry.draft = ta.value;
    renderPane();
  }
}

/** A message from a peer arrived: they have stopped typing. */
export function peerWrote(entry, from) {
  clearPeerTyping(entry.composer, from, () => refreshTyping(entry));
}

function onSend(entry) {
  const ta = document.getElementById("composer");
  if (!ta || (entry.state !== "active" && entry.state !== "paused") || !entry.conv.others().length) return;
  const item = takeComposerText(ta, () => setNotice(app, t("staff.errors.too_long")));
  if (!item) return;
  entry.draft = "";
  stopTyping(entry.composer);
  appendItem(entry, item);
  entry.outbox.push(item);
  ta.focus();
}

async function onEnd(entry) {
  const reply = await call(app.socket, "end", { conversation: entry.conv.id });
  if (reply.ok || reply.error === "unknown_conversation") markEnded(entry, "done");
  else setNotice(app, errorText(reply.error));
  const btn = document.getElementById("close-conv");
  if (btn) btn.focus();
}

async function onRemoveMember(entry, m) {
  const reply = await call(app.socket, "remove_member", { conversation: entry.conv.id, member: m.member });
  if (!reply.ok) setNotice(app, errorText(reply.error));
}
