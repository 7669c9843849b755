// The handover of a warm transfer in the console (docs/protocol.md,
// "Handover"): the sending side seals the conversation so far and a note to
// the colleague's console; the receiving side opens it after accepting, shows
// it above the log marked as handed over, and tells the youth end to end that
// the new counsellor can read what was said. Nothing here is stored outside
// this page's memory.
import * as handover from "../lib/handover.js";
import { formatClock, h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { app } from "./state.js";
import { aliasOf } from "./view.js";

const NOTE_MAX = 2000;

/** The `handover` field for a transfer to `colleague`, or null if their console has no key. */
export function sealHandover(entry, colleague, myAlias) {
  if (!colleague.handover_pk || !app.handoverKeys) return null;
  const earlier = entry.handover && entry.handover.items ? entry.handover.items.map((i) => ({ who: i.who, alias: i.alias, text: i.text, sent_at: i.sentAt })) : [];
  const here = entry.items
    .filter((i) => (i.kind === "in" || i.kind === "out") && typeof i.text === "string")
    .map((i) => {
      if (i.kind === "out") return { who: "staff", alias: myAlias, text: i.text, sent_at: i.sentAt };
      const m = entry.conv.memberById(i.from);
      return { who: m && m.role === "youth" ? "youth" : "staff", alias: m && m.role !== "youth" ? aliasOf(entry, i.from) : "", text: i.text, sent_at: i.sentAt };
    });
  return handover.seal(app.handoverKeys, colleague.handover_pk, entry.conv.id, {
    note: entry.handoverNote.trim().slice(0, NOTE_MAX),
    items: [...earlier, ...here],
    fromAlias: myAlias,
  });
}

/**
 * After accepting: open the reply's handover (if any) into the new entry.
 * `offeredBy` is the alias the offer named: the server checked which console
 * sent it, while the box's own `from_alias` is whatever that console wrote,
 * so a colleague could make a handover pose as another colleague's.
 */
export function takeHandover(entry, reply, offeredBy) {
  if (!reply.handover) return;
  entry.handover = handover.open(app.handoverKeys, entry.conv.id, reply.handover) || { failed: true };
  if (entry.handover.failed) return;
  entry.handover.fromAlias = String(offeredBy || "");
  // The youth learns, end to end, that the new counsellor can read what was said.
  entry.outbox.push({ kind: "notice", payload: { type: "handed_over", sent_at: Date.now() }, sentAt: Date.now() });
}

/** Above the log: the history as handed over, with the note. */
export function handoverBlock(entry) {
  const ho = entry.handover;
  if (!ho) return null;
  if (ho.failed) return h("p", { class: "handover failed", id: "handover", role: "status", text: t("staff.handover.failed") });
  return h(
    "section",
    { class: "handover", id: "handover", "aria-labelledby": "handover-h" },
    h("h3", { id: "handover-h", text: t("staff.handover.heading", { alias: ho.fromAlias }) }),
    ho.note ? h("p", { class: "handover-note", text: t("staff.handover.note", { note: ho.note }) }) : null,
    ho.omitted ? h("p", { class: "hint", text: t("staff.handover.omitted", { n: ho.omitted }) }) : null,
    h(
      "ol",
      { class: "log handed-over" },
      ho.items.map((i) =>
        h(
          "li",
          { class: ["msg", i.who === "youth" ? "in" : "out", "handed-over"], "data-handed-over": "true" },
          h("span", { class: "who", text: i.who === "youth" ? t("staff.convs.youth") : i.alias }),
          h("p", { class: "text", text: i.text }),
          h("span", { class: "meta", text: formatClock(i.sentAt) }),
        ),
      ),
    ),
  );
}
