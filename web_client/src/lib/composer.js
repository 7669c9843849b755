// The message box and the signals that go with it, for every chat page (the
// youth page, each conversation in the console, the liaison page): "typing"
// on and off as the member types, the peers' typing marks, and batched
// "delivered" receipts. No content: typing and delivered are metadata the
// server relays (docs/protocol.md, `typing` and `delivered`).
import { MAX_TEXT_CHARS } from "./conversation.js";
import { h, NO_TRACE_INPUT } from "./dom.js";

// Where the values come from: they are the pages' own choice, not server
// settings (the server relays `typing` and acknowledges `delivered` without
// timing them; docs/protocol.md leaves the timing to the client). The one
// bound is the server's per-connection budget for every call but `send`:
// Settings.rate_other_per_min = 120 a minute, burst rate_other_burst = 30
// (chatserver/settings.py), which typing and delivered share with the rest.
// The values below keep both well inside it.
//
// Quiet this long in the box counts as "stopped": "typing: false" is sent.
export const TYPING_IDLE_MS = 4000;
// While the member keeps typing, "typing: true" goes out again this often:
// at most 20 a minute, and well inside TYPING_SHOW_MS, so the peer's mark does
// not blink off mid-sentence.
export const TYPING_REPEAT_MS = 3000;
// A peer's mark goes away this long after their last "typing: true": their
// "typing: false" may never come (a dropped connection, a quick exit).
export const TYPING_SHOW_MS = 10000;
// Receipts for boxes that arrive together (a burst, or every buffered box the
// server re-sends on resume) go out as one cumulative `delivered` per sender.
export const DELIVERED_DEBOUNCE_MS = 150;

/**
 * The typing and receipt state of one conversation as one member sees it:
 * the youth and liaison pages keep one, the console one per conversation.
 *   target()   where the signals go now: {socket, conversation}, or null
 *              once there is no live conversation (nothing is sent then)
 *   canType()  whether "typing" may start now (e.g. the conversation is active)
 */
export function composerState({ target, canType = () => true }) {
  return {
    target,
    canType,
    typingSent: false, // "typing: true" went out and no "false" since
    typingLast: 0, // when it last went out (ms)
    typingTimer: null,
    peerTyping: new Map(), // member id -> the timer that hides its mark
    delivered: new Map(), // sender -> highest seq to acknowledge
    deliveredTimer: null,
  };
}

/** Stop every timer and forget the marks and receipts: the conversation is gone. */
export function clearComposerState(cs) {
  clearTimeout(cs.typingTimer);
  cs.typingTimer = null;
  cs.typingSent = false;
  clearTimeout(cs.deliveredTimer);
  cs.deliveredTimer = null;
  cs.delivered.clear();
  for (const timer of cs.peerTyping.values()) clearTimeout(timer);
  cs.peerTyping.clear();
}

/** A key in the message box: "typing" on (repeated while it goes on), off after a quiet spell. */
export function onComposerInput(cs) {
  const to = cs.target();
  if (!to || !cs.canType()) return;
  const now = Date.now();
  if (!cs.typingSent || now - cs.typingLast > TYPING_REPEAT_MS) {
    cs.typingSent = true;
    cs.typingLast = now;
    to.socket.emit("typing", { conversation: to.conversation, active: true });
  }
  clearTimeout(cs.typingTimer);
  cs.typingTimer = setTimeout(() => stopTyping(cs), TYPING_IDLE_MS);
}

/** "typing: false", if "true" went out (on send, or after TYPING_IDLE_MS of quiet). */
export function stopTyping(cs) {
  clearTimeout(cs.typingTimer);
  const to = cs.target();
  if (cs.typingSent && to && to.socket.connected) {
    to.socket.emit("typing", { conversation: to.conversation, active: false });
  }
  cs.typingSent = false;
}

/**
 * A peer's `typing` event: show their mark until "false", or for
 * TYPING_SHOW_MS. show() redraws the marks (cs.peerTyping holds who types).
 */
export function onPeerTyping(cs, from, active, show) {
  clearTimeout(cs.peerTyping.get(from));
  if (active) cs.peerTyping.set(from, setTimeout(() => clearPeerTyping(cs, from, show), TYPING_SHOW_MS));
  else cs.peerTyping.delete(from);
  show();
}

/** The peer's message arrived, or their mark ran out: they are no longer typing. */
export function clearPeerTyping(cs, from, show) {
  clearTimeout(cs.peerTyping.get(from));
  if (cs.peerTyping.delete(from)) show();
}

/** Acknowledge the box `seq` from `from`, batched: one `delivered` per sender. */
export function scheduleDelivered(cs, from, seq) {
  if (!Number.isSafeInteger(seq)) return;
  if ((cs.delivered.get(from) || 0) < seq) cs.delivered.set(from, seq);
  if (cs.deliveredTimer) return;
  cs.deliveredTimer = setTimeout(() => {
    cs.deliveredTimer = null;
    const to = cs.target();
    if (!to) return;
    for (const [sender, upTo] of cs.delivered) {
      to.socket.emit("delivered", { conversation: to.conversation, from: sender, seq: upTo });
    }
    cs.delivered.clear();
  }, DELIVERED_DEBOUNCE_MS);
}

/**
 * The message box (id "composer") with its label and send button.
 * Enter sends, Shift+Enter is a new line (as in most chats); nothing typed
 * goes to the browser's autofill or dictionary (NO_TRACE_INPUT).
 */
export function composerForm({ label, sendText, value, canSend, onInput, onSend, name, autofocus = false, disabled = false }) {
  const send = (e) => {
    e.preventDefault();
    onSend();
  };
  const textarea = h("textarea", {
    id: "composer",
    name,
    rows: "3",
    maxlength: String(MAX_TEXT_CHARS),
    "data-autofocus": autofocus,
    ...NO_TRACE_INPUT,
    disabled,
    oninput: onInput,
    onkeydown: (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) send(e);
    },
  });
  textarea.value = value;
  return h(
    "form",
    { class: "composer", onsubmit: send },
    h("label", { for: "composer", text: label }),
    textarea,
    h("button", { type: "submit", class: "primary", id: "send", disabled: !canSend, text: sendText }),
  );
}
