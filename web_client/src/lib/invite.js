// Liaison invites (docs/protocol.md, "Liaison namespace /liaison";
// docs/design/invites.md). Every hash is keyed BLAKE2b-256 (noble's blake2b
// with dkLen 32 and a key, which is libsodium's crypto_generichash(32,
// message, key)), byte-compatible with
// chatserver/crypto/e2e.py and checked against tests/data/e2e_vectors.json.
// Pure functions over explicit bytes: nothing is stored here.
import "./compat.js";
import { blake2b } from "@noble/hashes/blake2.js";
import { b64, equalBytes, hexToBytes, randomBytes, unb64 } from "./e2e.js";

export const SECRET_BYTES = 32;
const ascii = (s) => new TextEncoder().encode(s);
const ID_LABEL = "cv1-invite-id";
const MAC_LABEL = "cv1-invite-mac";
const COMPARE_LABEL = "cv1-invite-compare";

function keyed(key, message) {
  return blake2b(message, { dkLen: 32, key });
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function newSecret() {
  return randomBytes(SECRET_BYTES);
}

/** BLAKE2b-256(key = secret, "cv1-invite-id"): the only thing the server learns. */
export function inviteId(secret) {
  return keyed(secret, ascii(ID_LABEL));
}

/** BLAKE2b-256(key = secret, "cv1-invite-mac"). */
export function macKey(secret) {
  return keyed(secret, ascii(MAC_LABEL));
}

/** BLAKE2b-256(key = mac_key, conversation_id(16) ‖ kx_pk(32)). */
export function mac(key, conversationHex, kxPk) {
  if (kxPk.length !== 32) throw new RangeError("kx_pk must be 32 bytes");
  return keyed(key, concat([hexToBytes(conversationHex, 16), kxPk]));
}

/** Constant-time check of a join_request's MAC; false for anything malformed. */
export function verifyMac(key, conversationHex, kxPkB64, macB64) {
  try {
    const expected = mac(key, conversationHex, unb64(kxPkB64, 32));
    const got = unb64(macB64, 32);
    return equalBytes(expected, got);
  } catch {
    return false;
  }
}

/**
 * Six digits for counsellor and liaison to read to each other by phone
 * (chatserver/crypto/e2e.py comparison_code): h = BLAKE2b-256(key = mac_key,
 * "cv1-invite-compare" ‖ invite_id(32) ‖ conversation_id(16) ‖ liaison_pk(32)
 * ‖ counsellor_pk(32)); the first four bytes as a big-endian u32, mod 10^6.
 */
export function comparisonCode(key, inviteIdBytes, conversationHex, liaisonPk, counsellorPk) {
  if (inviteIdBytes.length !== 32 || liaisonPk.length !== 32 || counsellorPk.length !== 32) {
    throw new RangeError("wrong length");
  }
  const h = keyed(key, concat([ascii(COMPARE_LABEL), inviteIdBytes, hexToBytes(conversationHex, 16), liaisonPk, counsellorPk]));
  const value = new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(0, false) % 1000000;
  return String(value).padStart(6, "0");
}

/**
 * The invite code: base64url(secret) "." conversation-id-hex. The MAC
 * covers the conversation id, so the liaison must know it before `join`
 * (the same format as chatserver/client/reference.py invite_fragment).
 */
export function fragment(secret, conversationHex) {
  return `${b64(secret)}.${conversationHex}`;
}

/** {secret, conversation} from a fragment (with or without "#"); throws if malformed. */
export function parseFragment(text) {
  const raw = String(text || "").replace(/^#/, "");
  const dot = raw.indexOf(".");
  if (dot < 0) throw new TypeError("no conversation in the link");
  const conversation = raw.slice(dot + 1);
  if (!/^[0-9a-f]{32}$/.test(conversation)) throw new TypeError("bad conversation id");
  return { secret: unb64(raw.slice(0, dot), SECRET_BYTES), conversation };
}

/** For the known-answer tests (tests/browser): pure, base64url in and out. */
export const inviteTestSurface = Object.freeze({
  inviteId: (secret) => b64(inviteId(unb64(secret, 32))),
  macKey: (secret) => b64(macKey(unb64(secret, 32))),
  mac: (key, conversation, kxPk) => b64(mac(unb64(key, 32), conversation, unb64(kxPk, 32))),
  verifyMac: (key, conversation, kxPk, m) => verifyMac(unb64(key, 32), conversation, kxPk, m),
  comparisonCode: (key, id, conversation, liaisonPk, counsellorPk) =>
    comparisonCode(unb64(key, 32), unb64(id, 32), conversation, unb64(liaisonPk, 32), unb64(counsellorPk, 32)),
  parseFragment: (text) => {
    const f = parseFragment(text);
    return { secret: b64(f.secret), conversation: f.conversation };
  },
});
