// One member's end-to-end view of one conversation: its own kx key pair, the
// rosters it has seen (one roster hash per epoch), pairwise session keys,
// last_seq per sender (replay and gap detection) and its own send sequence.
// Everything lives in memory only; wipe() zeroes every key buffer.
import * as e2e from "./e2e.js";

// Rosters kept for late boxes sealed under an older epoch.
const KEEP_EPOCHS = 4;
export const MAX_TEXT_CHARS = 2000; // Settings.max_text_chars (a UI limit)
// Settings.max_padded_plaintext_bytes: the real bound is the padded JSON in bytes.
export const MAX_PADDED_BYTES = 8192;
const HELD_MAX = 200; // boxes waiting for the roster of their epoch

/** True when text, as the JSON we encrypt, fits in one box after padding. */
export function fitsInOneBox(text) {
  const json = JSON.stringify({ type: "msg", text, sent_at: Date.now() });
  // sodium_pad always adds at least one byte.
  return new TextEncoder().encode(json).length + 1 <= MAX_PADDED_BYTES;
}

/**
 * The composer's text, taken for sending: trimmed, checked against the size
 * rules, and the field emptied. Null when there is nothing to send or it is too
 * long (then onTooLong() runs and the text stays where the person can shorten it).
 * Returns the outgoing chat item every page shows and puts in its Outbox.
 */
export function takeComposerText(ta, onTooLong) {
  const text = ta.value.trim();
  if (!text) return null;
  if (text.length > MAX_TEXT_CHARS || !fitsInOneBox(text)) {
    onTooLong();
    return null;
  }
  ta.value = "";
  return { kind: "out", text, sentAt: Date.now(), state: "sending" };
}

export class Conversation {
  /**
   * @param {{id: string, member: string, resume: string, keys: {pk: Uint8Array, sk: Uint8Array}}} o
   */
  constructor({ id, member, resume, keys }) {
    this.id = id;
    this.member = member;
    this.resume = resume;
    this.keys = keys;
    this.state = "waiting";
    this.epoch = 0;
    this.members = [];
    this.rosters = new Map(); // epoch -> {hash, members}
    this.session = new Map(); // peer kx_pk (b64) -> {tx, rx}
    this.lastSeq = new Map(); // member id -> last accepted seq
    this.mySeq = 0;
    this.held = []; // boxes for an epoch whose roster has not arrived yet
    this.wiped = false;
  }

  /** Boxes held for a roster that has now arrived, in arrival order. */
  releaseHeld() {
    const ready = this.held.filter((b) => this.rosters.has(b.epoch));
    this.held = this.held.filter((b) => !this.rosters.has(b.epoch));
    return ready;
  }

  /** Members other than me in the current roster. */
  others() {
    return this.members.filter((m) => m.member !== this.member);
  }

  memberById(id) {
    return this.members.find((m) => m.member === id);
  }

  /**
   * Take a roster ({state?, epoch, members}) as this member's own view.
   * Returns {joined, left} (member objects) relative to the previous roster.
   */
  applyRoster({ state, epoch, members }) {
    if (this.wiped) return { joined: [], left: [] };
    if (!Array.isArray(members) || !Number.isInteger(epoch)) throw new TypeError("bad roster");
    if (epoch < this.epoch && this.rosters.size) return { joined: [], left: [] }; // stale push
    const me = members.find((m) => m.member === this.member);
    if (!me || me.kx_pk !== e2e.b64(this.keys.pk)) {
      // A roster that leaves me out or swaps my key is not my conversation.
      throw new Error("roster does not contain my key");
    }
    const before = new Set(this.members.map((m) => m.member));
    const after = new Set(members.map((m) => m.member));
    const joined = members.filter((m) => !before.has(m.member) && m.member !== this.member);
    const left = this.members.filter((m) => !after.has(m.member) && m.member !== this.member);
    const hash = e2e.rosterHash(members, this.id, epoch);
    this.rosters.set(epoch, { hash, members: members.map((m) => ({ ...m })) });
    for (const old of [...this.rosters.keys()].sort((a, b) => a - b)) {
      if (this.rosters.size <= KEEP_EPOCHS) break;
      const r = this.rosters.get(old);
      e2e.wipe(r.hash);
      this.rosters.delete(old);
    }
    this.epoch = epoch;
    this.members = members.map((m) => ({ ...m }));
    if (state) this.state = state;
    for (const m of members) {
      if (m.member === this.member) {
        // The server's count of my accepted sends; never go backwards.
        if (Number.isInteger(m.seq) && m.seq > this.mySeq) this.mySeq = m.seq;
      } else if (!this.lastSeq.has(m.member)) {
        // A newcomer starts from what the member had already sent before us;
        // known senders keep their counter (boxes may still be in flight).
        this.lastSeq.set(m.member, Number.isInteger(m.seq) ? m.seq : 0);
      }
    }
    return { joined, left };
  }

  keysFor(peerPkB64) {
    let k = this.session.get(peerPkB64);
    if (!k) {
      k = e2e.sessionKeys(this.keys.pk, this.keys.sk, e2e.unb64(peerPkB64, 32));
      this.session.set(peerPkB64, k);
    }
    return k;
  }

  /**
   * Build the `send` payload for text with the given seq under the current
   * roster. The caller decides the seq (same seq on a stale_epoch retry).
   */
  sealMessage(text, sentAt, seq) {
    return this.sealObject({ type: "msg", text, sent_at: sentAt }, seq);
  }

  /**
   * The same for any plaintext object of protocol.md ("msg", "card", "intro"):
   * one box per other member of the current roster.
   */
  sealObject(obj, seq) {
    if (this.wiped) throw new Error("wiped");
    const others = this.others();
    if (!others.length) throw new Error("nobody to send to");
    const roster = this.rosters.get(this.epoch);
    const padded = e2e.encodePlaintext(obj);
    if (padded.length > MAX_PADDED_BYTES) {
      e2e.wipe(padded);
      throw new RangeError("too_large"); // the server would refuse the box anyway
    }
    try {
      const boxes = others.map((m) => {
        const peerPk = e2e.unb64(m.kx_pk, 32);
        const ad = e2e.associatedData(this.id, this.epoch, roster.hash, this.keys.pk, peerPk, seq);
        const { nonce, ct } = e2e.seal(padded, ad, this.keysFor(m.kx_pk).tx);
        return { to: m.member, nonce: e2e.b64(nonce), ct: e2e.b64(ct) };
      });
      return { conversation: this.id, epoch: this.epoch, seq, boxes };
    } finally {
      e2e.wipe(padded);
    }
  }

  /**
   * Open a `box` event. Returns one of
   *   {kind: "msg", from, seq, text, sentAt, gap}
   *   {kind: "replay"}                — seq ≤ last from that sender: drop silently
   *   {kind: "bad", from, seq}        — failed to verify: show as such, never as text
   *   {kind: "other", from, seq}      — a reserved plaintext type this page ignores
   *   {kind: "ignored"}               — not for this conversation / member
   */
  openBox(box) {
    if (this.wiped || !box || box.conversation !== this.id || box.to !== this.member) {
      return { kind: "ignored" };
    }
    const { from, seq, epoch } = box;
    if (!Number.isSafeInteger(seq) || seq < 1) return { kind: "bad", from, seq };
    const last = this.lastSeq.get(from) ?? 0;
    if (seq <= last) return { kind: "replay" };
    if (!this.rosters.has(epoch) && Number.isInteger(epoch) && epoch > this.epoch) {
      // Sealed under a roster we have not been told yet (e.g. boxes re-sent
      // before the resume ack): keep it until that roster arrives.
      if (this.held.length < HELD_MAX) this.held.push(box);
      return { kind: "held" };
    }
    const roster = this.rosters.get(epoch);
    const sender = roster && roster.members.find((m) => m.member === from);
    if (!sender || from === this.member) return { kind: "bad", from, seq };
    let obj;
    let plain;
    try {
      const peerPk = e2e.unb64(sender.kx_pk, 32);
      const ad = e2e.associatedData(this.id, epoch, roster.hash, peerPk, this.keys.pk, seq);
      plain = e2e.open(e2e.unb64(box.ct), ad, e2e.unb64(box.nonce, 24), this.keysFor(sender.kx_pk).rx);
      obj = e2e.decodePlaintext(plain);
    } catch {
      // Tampered, wrong roster view, wrong key: the seq is not authenticated,
      // so it must not move the counter.
      return { kind: "bad", from, seq };
    } finally {
      e2e.wipe(plain);
    }
    const gap = seq > last + 1;
    this.lastSeq.set(from, seq);
    if (obj.type === "card" && obj.card && typeof obj.card === "object") {
      return { kind: "card", from, seq, gap, card: obj.card, sentAt: obj.sent_at };
    }
    if (obj.type === "intro" && sender.role === "counsellor" && validIntro(obj)) {
      // A counsellor introduces a liaison end to end; the youth's page checks a
      // consent_request against it (the server cannot swap the key).
      return { kind: "intro", from, seq, gap, request: obj.request, role: obj.role, kxPk: obj.kx_pk };
    }
    if (obj.type === "handed_over" && sender.role === "counsellor") {
      // A counsellor who took over with the history: the youth is told they can read it.
      return { kind: "handed_over", from, seq, gap };
    }
    if (obj.type !== "msg") return { kind: "other", from, seq, gap };
    if (typeof obj.text !== "string" || !Number.isSafeInteger(obj.sent_at)) {
      return { kind: "bad", from, seq };
    }
    return { kind: "msg", from, seq, gap, text: obj.text, sentAt: obj.sent_at };
  }

  /** Zero every key and forget every secret this conversation holds. */
  wipe() {
    if (this.wiped) return;
    this.wiped = true;
    e2e.wipe(this.keys.sk);
    e2e.wipe(this.keys.pk);
    for (const k of this.session.values()) {
      e2e.wipe(k.tx);
      e2e.wipe(k.rx);
    }
    for (const r of this.rosters.values()) e2e.wipe(r.hash);
    this.session.clear();
    this.rosters.clear();
    this.lastSeq.clear();
    this.held = [];
    this.members = [];
    this.resume = "";
  }
}

function validIntro(obj) {
  return typeof obj.request === "string" && /^[0-9a-f]{32}$/.test(obj.request) &&
    typeof obj.role === "string" && /^[a-z_]{1,32}$/.test(obj.role) &&
    typeof obj.kx_pk === "string" && /^[A-Za-z0-9_-]{43}$/.test(obj.kx_pk);
}

/**
 * A serial outbox: one `send` in flight at a time so seqs stay in order.
 * Entries live in memory only. handlers.onChange(entry) is called whenever an
 * entry's state changes ("sending" | "sent" | "failed"). A "failed" entry
 * may still be queued (the live state was unavailable): it goes out by itself.
 */
export class Outbox {
  constructor(conv, emitSend, onChange) {
    this.conv = conv;
    this.emitSend = emitSend; // async (payload) => reply
    this.onChange = onChange;
    this.queue = [];
    this.busy = false;
    this.closed = false;
    this.retryTimer = null;
  }

  push(entry) {
    entry.state = "sending";
    this.queue.push(entry);
    this.onChange(entry);
    this.pump();
  }

  /** push() and resolve with the entry's final state: "sent" or "failed". */
  pushAndWait(entry) {
    return new Promise((resolve) => {
      entry.settle = resolve;
      this.push(entry);
    });
  }

  retry(entry) {
    if (entry.state !== "failed" || this.closed) return;
    // Still queued (the live state was unavailable): try it now, in its place.
    if (this.queue.includes(entry)) {
      this.pump();
      return;
    }
    entry.state = "sending";
    this.queue.push(entry);
    this.onChange(entry);
    this.pump();
  }

  /** Called when a new roster arrives (a stale_epoch send may now go through). */
  kick() {
    this.pump();
  }

  async pump() {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      while (this.queue.length && !this.closed) {
        const entry = this.queue[0];
        const result = await this.sendOne(entry);
        if (this.closed) return;
        if (result === "sent") {
          this.queue.shift();
          entry.state = "sent";
          this.onChange(entry);
          settle(entry);
        } else if (result === "unavailable") {
          // The shared live state is out of reach and nothing was done
          // (docs/protocol.md, `unavailable`): everything queued shows "not
          // sent" but stays queued, in order and with its seq, and goes out
          // by itself once a retry gets through (an attempt that did arrive
          // answers "replayed", which counts as sent).
          for (const e of this.queue) {
            if (e.state === "failed") continue;
            e.state = "failed";
            this.onChange(e);
          }
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.pump();
          }, UNAVAILABLE_RETRY_MS);
          return;
        } else if (result === "failed") {
          // Everything behind it fails too: order matters more than speed here.
          for (const e of this.queue.splice(0)) {
            e.state = "failed";
            e.seq = undefined;
            this.onChange(e);
            settle(e);
          }
        } else {
          return; // "wait": resumed by kick() or a retry timer
        }
      }
    } finally {
      this.busy = false;
    }
  }

  async sendOne(entry) {
    const conv = this.conv;
    for (let attempt = 0; attempt < 5 && !this.closed; attempt++) {
      if (conv.wiped) return "failed";
      if (entry.seq === undefined) entry.seq = conv.mySeq + 1;
      let payload;
      try {
        // entry.payload: a "card" or "intro" object; otherwise a text message.
        payload = entry.payload
          ? conv.sealObject(entry.payload, entry.seq)
          : conv.sealMessage(entry.text, entry.sentAt, entry.seq);
      } catch {
        return "failed";
      }
      const reply = await this.emitSend(payload);
      if (reply.error === "unavailable") return "unavailable";
      if (reply.ok || reply.error === "replayed") {
        // "replayed": an earlier attempt with this seq already got through.
        if (entry.seq > conv.mySeq) conv.mySeq = entry.seq;
        return "sent";
      }
      if (reply.error === "stale_epoch") {
        // Wait briefly for the new roster, then re-encrypt with the same seq.
        await delay(300 * (attempt + 1));
        continue;
      }
      if (RETRYABLE.has(reply.error)) {
        // Same seq again: if the first attempt did arrive the server answers "replayed".
        await delay(1000 * (attempt + 1));
        continue;
      }
      return "failed";
    }
    return "failed";
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const e of this.queue) settle(e, "failed");
    this.queue = [];
  }
}

function settle(entry, state = entry.state) {
  const fn = entry.settle;
  entry.settle = null;
  if (fn) fn(state);
}

const RETRYABLE = new Set(["timeout", "offline", "rate_limited", "backlog_full"]);
// How often a queue held back by `unavailable` tries again. The server itself
// waits out a short outage (about 2 s) before it answers `unavailable`.
export const UNAVAILABLE_RETRY_MS = 4000;

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The page's real send and receive paths, for the crypto tests that must run
 * the exact built bundle against PyNaCl. Each call builds a throwaway
 * Conversation from the keys it is given and wipes it before returning.
 * view: {conversation, member, pk, sk (base64url), state?, epoch, members}
 */
export const conversationTestSurface = Object.freeze({
  open(view, boxes) {
    const conv = fromView(view);
    const result = (r) => ({ kind: r.kind, gap: Boolean(r.gap), text: r.text, sentAt: r.sentAt, seq: r.seq });
    try {
      const out = boxes.map((box) => result(conv.openBox(box)));
      // A later roster in view.after releases held boxes (resume before its ack).
      if (view.after) {
        conv.applyRoster(view.after);
        for (const box of conv.releaseHeld()) out.push(result(conv.openBox(box)));
      }
      return out;
    } finally {
      conv.wipe();
    }
  },
  seal(view, text, sentAt, seq) {
    const conv = fromView(view);
    try {
      return conv.sealMessage(text, sentAt, seq);
    } finally {
      conv.wipe();
    }
  },
});

function fromView(view) {
  const keys = { pk: e2e.unb64(view.pk, 32), sk: e2e.unb64(view.sk, 32) };
  const conv = new Conversation({ id: view.conversation, member: view.member, resume: "", keys });
  for (const roster of view.rosters || [view]) {
    conv.applyRoster({ state: roster.state || "active", epoch: roster.epoch, members: roster.members });
  }
  return conv;
}
