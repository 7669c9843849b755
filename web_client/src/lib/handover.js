// The handover of a warm transfer (docs/protocol.md, "Handover";
// docs/security-design.md, "Handover on transfer"): the sending console seals
// the conversation so far and a note to the receiving console's handover key.
// The associated data has a message's layout with values no message has:
// epoch 2^32−1, BLAKE2b-256("cv1-handover") for the roster hash, seq 0.
// chatserver/crypto/handover.py is the same in Python.
import * as e2e from "./e2e.js";

const EPOCH = 0xffffffff;
const SEQ = 0;
// 3 messages' worth (max_members − 1 boxes of 8 KiB): what one full send carries.
export const MAX_PADDED = 3 * 8192;
const ITEMS_MAX = 500;

// BLAKE2b-256("cv1-handover"), unkeyed (tests/integration/test_presence_handover.py
// checks it against chatserver/crypto/handover.py).
const LABEL_HEX = "f3eb99e7331fb4971379fafada03650394c91d927e83164dd2b08cff95200cda";
function labelHash() {
  return e2e.hexToBytes(LABEL_HEX, 32);
}

/** A fresh key pair for this console's handovers (memory only; wipe on pagehide). */
export function newKeys() {
  return e2e.keypair();
}

function ad(conversation, senderPk, recipientPk) {
  return e2e.associatedData(conversation, EPOCH, labelHash(), senderPk, recipientPk, SEQ);
}

/**
 * Seal {type: "handover", note, items, omitted, from_alias, sent_at} from `own`
 * to `toPkB64`. The oldest items are left out (and counted in `omitted`) until
 * the padded plaintext fits. Returns the `handover` field of a `transfer` call.
 */
export function seal(own, toPkB64, conversation, { note, items, fromAlias }) {
  const toPk = e2e.unb64(toPkB64, 32);
  let kept = items.slice(-ITEMS_MAX);
  let body;
  let padded;
  for (;;) {
    body = { type: "handover", note, items: kept, omitted: items.length - kept.length, from_alias: fromAlias, sent_at: Date.now() };
    padded = e2e.encodePlaintext(body);
    if (padded.length <= MAX_PADDED) break;
    e2e.wipe(padded);
    if (!kept.length) throw new RangeError("too_large"); // the note alone is too long
    kept = kept.slice(Math.max(1, Math.ceil(kept.length / 8)));
  }
  const keys = e2e.sessionKeys(own.pk, own.sk, toPk);
  try {
    const { nonce, ct } = e2e.seal(padded, ad(conversation, own.pk, toPk), keys.tx);
    return { from_pk: e2e.b64(own.pk), to_pk: toPkB64, nonce: e2e.b64(nonce), ct: e2e.b64(ct) };
  } finally {
    e2e.wipe(padded);
    e2e.wipe(keys.tx);
    e2e.wipe(keys.rx);
  }
}

/** Open a transfer_answer reply's `handover` with `own`; null if it cannot be opened here. */
export function open(own, conversation, box) {
  if (!own || !box || box.to_pk !== e2e.b64(own.pk)) return null;
  let keys;
  let plain;
  try {
    const fromPk = e2e.unb64(box.from_pk, 32);
    keys = e2e.sessionKeys(own.pk, own.sk, fromPk);
    plain = e2e.open(e2e.unb64(box.ct), ad(conversation, fromPk, own.pk), e2e.unb64(box.nonce, 24), keys.rx);
    const body = e2e.decodePlaintext(plain);
    if (body.type !== "handover" || !Array.isArray(body.items)) return null;
    const items = body.items
      .filter((i) => i && typeof i.text === "string" && Number.isSafeInteger(i.sent_at))
      .map((i) => ({ who: i.who === "youth" ? "youth" : "staff", alias: typeof i.alias === "string" ? i.alias : "", text: i.text, sentAt: i.sent_at }));
    return {
      note: typeof body.note === "string" ? body.note : "",
      fromAlias: typeof body.from_alias === "string" ? body.from_alias : "",
      omitted: Number.isSafeInteger(body.omitted) ? body.omitted : 0,
      items,
    };
  } catch {
    return null;
  } finally {
    e2e.wipe(plain);
    if (keys) {
      e2e.wipe(keys.tx);
      e2e.wipe(keys.rx);
    }
  }
}
