// Names a person can hold: each conversation is called by a colour word and
// a number ("Blue 14", "Blå 14"), not by its pseudonym ("c-73227b2c"). The
// name comes from the conversation id, so a queue entry and the tab it
// becomes carry the same one; among this counsellor's open conversations
// and the youths waiting it is unique (a clash moves on to the next free
// number, and a name once shown stays while the youth waits). The counsellor may
// also give a conversation a nickname: it lives in this page's memory only
// (never sent, gone with the tab) and is never put in a desktop notification,
// which the operating system may show on a locked screen.
import { h, NO_TRACE_INPUT } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { app } from "./state.js";

export const COLOURS = ["blue", "green", "red", "yellow", "purple", "orange", "pink", "brown"];
const NUMBERS = 99; // 1 … 99: short to say aloud, 792 names in all
export const NICKNAME_MAX = 40;

function hash(id) {
  // FNV-1a: a stable spread of ids over the names, nothing secret about it.
  let x = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    x ^= id.charCodeAt(i);
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x;
}

/** The name an id starts from: {colour, n}. */
export function slotOf(id) {
  const x = hash(String(id));
  return { colour: x % COLOURS.length, n: 1 + (Math.floor(x / COLOURS.length) % NUMBERS) };
}

const key = (slot) => `${slot.colour}:${slot.n}`;

// The names the queue shows, kept while each youth waits: the name a
// counsellor reads in the queue ("claim Red 7") is the name of the tab.
const waitingNames = new Map(); // conversation id -> slot

function openNames(except) {
  return new Set([...app.convs.values()].filter((e) => e.conv.id !== except && e.label).map((e) => key(e.label)));
}

/** From the id's own name on, the first one not taken. */
function probe(id, taken) {
  let { colour, n } = slotOf(id);
  for (let i = 0; i < COLOURS.length * NUMBERS && taken.has(`${colour}:${n}`); i++) {
    n = (n % NUMBERS) + 1;
    if (n === 1) colour = (colour + 1) % COLOURS.length;
  }
  return { colour, n };
}

/** A new queue snapshot: name the newcomers apart from the open conversations and each other. */
export function nameQueue(entries) {
  const ids = new Set(entries.map((e) => e.conversation));
  for (const id of [...waitingNames.keys()]) if (!ids.has(id)) waitingNames.delete(id);
  const taken = openNames(null);
  for (const [id, slot] of waitingNames) {
    if (taken.has(key(slot))) waitingNames.delete(id); // a conversation opened since took it
    else taken.add(key(slot));
  }
  for (const e of entries) {
    if (waitingNames.has(e.conversation)) continue;
    const slot = probe(e.conversation, taken);
    waitingNames.set(e.conversation, slot);
    taken.add(key(slot));
  }
}

/** A name for a conversation being added: the one it had in the queue, else its own or the next free one. */
export function assignLabel(id) {
  const taken = openNames(id);
  const shown = waitingNames.get(id);
  waitingNames.delete(id);
  return shown && !taken.has(key(shown)) ? shown : probe(id, taken);
}

export function labelText(slot) {
  return t("staff.labels.format", { colour: t(`staff.labels.colours.${COLOURS[slot.colour]}`), n: slot.n });
}

/** What a queue entry (or a transfer offer) is called: the name its tab will have. */
export function idLabel(id) {
  const entry = app.convs.get(id);
  if (entry && entry.label) return labelText(entry.label);
  return labelText(waitingNames.get(id) || slotOf(id));
}

/** The conversation's name for notifications: never the nickname. */
export function convLabel(entry) {
  return entry.label ? labelText(entry.label) : labelText(slotOf(entry.conv.id));
}

/** The name shown in the tab, the pane and the composer's label. */
export function displayName(entry) {
  return entry.nickname || convLabel(entry);
}

export function setNickname(entry, text) {
  entry.nickname = String(text || "").trim().slice(0, NICKNAME_MAX);
}

/** The pane's nickname field: set on Enter or with the button, shown at once. */
export function nicknameForm(entry, onSet) {
  const id = `nick-${entry.conv.id}`;
  return h(
    "form",
    {
      class: "nickname",
      onsubmit: (e) => {
        e.preventDefault();
        setNickname(entry, document.getElementById(id).value);
        onSet(entry);
      },
    },
    h("label", { for: id, text: t("staff.labels.nickname") }),
    h("input", { id, name: "nickname", type: "text", maxlength: String(NICKNAME_MAX), value: entry.nickname || "", ...NO_TRACE_INPUT }),
    h("button", { type: "submit", class: "secondary small", id: "nickname-set", text: t("staff.labels.nickname_save") }),
  );
}
