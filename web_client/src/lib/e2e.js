// End-to-end encryption exactly as docs/protocol.md ("End-to-end encryption")
// specifies it. Pure functions over explicit keys: no key is stored here.
// The same byte layouts are implemented with PyNaCl in chatserver/client/ and
// checked against tests/data/e2e_vectors.json by tests/browser/.
import "./compat.js";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { blake2b } from "@noble/hashes/blake2.js";
import { x25519 } from "./x25519.js";

export const PAD_BLOCK = 256; // protocol.md: plaintext padded to 256-byte blocks
const AD_PREFIX = [0x63, 0x76, 0x31]; // "cv1"
export const AD_BYTES = 127;
const ID_BYTES = 16;
const KX_BYTES = 32;
const NONCE_BYTES = 24;

/**
 * Kept for the pages' start-up order: the pure-JavaScript primitives need no
 * compilation step (libsodium's WebAssembly did), so this resolves at once.
 */
export function ready() {
  return Promise.resolve();
}

const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64_VALUE = new Map([...B64_ALPHABET].map((c, i) => [c, i]));

/** base64url without padding (libsodium's URLSAFE_NO_PADDING variant). */
export function b64(bytes) {
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = ((acc << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += B64_ALPHABET[(acc >> bits) & 63];
    }
  }
  if (bits) out += B64_ALPHABET[(acc << (6 - bits)) & 63];
  return out;
}

/**
 * Strict inverse of b64, as strict as libsodium's sodium_base642bin: no
 * padding, no other alphabet, no whitespace, and the unused low bits of the
 * last character must be zero (so every byte string has one spelling).
 */
export function unb64(text, expectedLength) {
  if (typeof text !== "string") throw new TypeError("base64 text expected");
  if (text.length % 4 === 1) throw new TypeError("bad base64 length");
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const c of text) {
    const v = B64_VALUE.get(c);
    if (v === undefined) throw new TypeError("bad base64 character");
    acc = ((acc << 6) | v) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  if (acc & ((1 << bits) - 1)) throw new TypeError("non-canonical base64");
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new RangeError("wrong length");
  }
  return out;
}

export function hexToBytes(hex, expectedLength) {
  if (typeof hex !== "string" || !/^[0-9a-f]*$/.test(hex) || hex.length % 2) {
    throw new TypeError("lowercase hex expected");
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new RangeError("wrong length");
  }
  return bytes;
}

/**
 * A fresh key pair as libsodium's crypto_kx_keypair makes it: 32 random
 * bytes (crypto.getRandomValues) as the X25519 secret, its public key by
 * scalar multiplication with the base point. The caller must wipe() it.
 */
export function keypair() {
  const sk = randomBytes(KX_BYTES);
  return { pk: x25519.getPublicKey(sk), sk };
}

export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * Session keys for the pair (me, them): the lexicographically smaller public
 * key acts as kx client. Returns {tx, rx}: tx encrypts to them, rx opens
 * what they sent.
 *
 * libsodium's crypto_kx, byte for byte: q = X25519(my_sk, their_pk);
 * h = BLAKE2b-512(q ‖ client_pk ‖ server_pk); the client receives with
 * h[0..32] and transmits with h[32..64], the server the other way round.
 * A low-order peer key (a server-side lie that would make q predictable) is
 * refused as libsodium refuses it: noble's X25519 rejects the same list of
 * points (and their non-canonical encodings, reduced modulo p) and an
 * all-zero result; chatserver/crypto/e2e.py usable_peer_key refuses them at
 * the server's edge.
 */
export function sessionKeys(myPk, mySk, theirPk) {
  if (myPk.length !== KX_BYTES || mySk.length !== KX_BYTES || theirPk.length !== KX_BYTES) {
    throw new RangeError("kx keys must be 32 bytes");
  }
  if (compareBytes(myPk, theirPk) === 0) throw new RangeError("same key on both sides");
  const client = compareBytes(myPk, theirPk) < 0;
  const q = x25519.getSharedSecret(mySk, theirPk);
  if (q.every((b) => b === 0)) throw new RangeError("degenerate peer key");
  const input = client ? concat([q, myPk, theirPk]) : concat([q, theirPk, myPk]);
  const h = blake2b(input, { dkLen: 64 });
  wipe(q);
  wipe(input);
  const first = h.slice(0, 32);
  const second = h.slice(32, 64);
  wipe(h);
  return client ? { rx: first, tx: second } : { tx: first, rx: second };
}

function u32be(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, false);
  return out;
}

function u64be(n) {
  // seq is a safe integer; split into two u32 so no BigInt is needed on old phones.
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError("seq out of range");
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / 0x100000000), false);
  view.setUint32(4, n >>> 0, false);
  return out;
}

function concat(parts) {
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * BLAKE2b-256 over every member sorted by raw member id:
 * member_id(16) ‖ len(role)(u8) ‖ role ‖ kx_pk(32), then conversation(16) ‖ epoch(u32 BE).
 * members: [{member: hex, role: string, kx_pk: base64url}]
 */
export function rosterHash(members, conversationHex, epoch) {
  const rows = members.map((m) => {
    const id = hexToBytes(m.member, ID_BYTES);
    const role = new TextEncoder().encode(m.role);
    if (role.length > 255 || !/^[\x20-\x7e]*$/.test(m.role)) throw new RangeError("bad role");
    return { id, role, pk: unb64(m.kx_pk, KX_BYTES) };
  });
  rows.sort((a, b) => compareBytes(a.id, b.id));
  const parts = [];
  for (const r of rows) parts.push(r.id, Uint8Array.of(r.role.length), r.role, r.pk);
  parts.push(hexToBytes(conversationHex, ID_BYTES), u32be(epoch));
  return blake2b(concat(parts), { dkLen: 32 });
}

/** "cv1" ‖ conversation(16) ‖ epoch(u32 BE) ‖ roster_hash(32) ‖ sender_pk ‖ recipient_pk ‖ seq(u64 BE) */
export function associatedData(conversationHex, epoch, rosterHashBytes, senderPk, recipientPk, seq) {
  if (rosterHashBytes.length !== 32) throw new RangeError("roster hash must be 32 bytes");
  if (senderPk.length !== KX_BYTES || recipientPk.length !== KX_BYTES) {
    throw new RangeError("kx_pk must be 32 bytes");
  }
  const ad = concat([
    Uint8Array.from(AD_PREFIX),
    hexToBytes(conversationHex, ID_BYTES),
    u32be(epoch),
    rosterHashBytes,
    senderPk,
    recipientPk,
    u64be(seq),
  ]);
  if (ad.length !== AD_BYTES) throw new RangeError("bad associated data length");
  return ad;
}

/**
 * libsodium's sodium_pad (ISO/IEC 7816-4): 0x80, then zeros up to the next
 * multiple of `block`; always at least one byte, so a full block gains a block.
 */
export function pad(raw, block) {
  if (!Number.isInteger(block) || block <= 0) throw new RangeError("bad block size");
  const out = new Uint8Array((Math.floor(raw.length / block) + 1) * block);
  out.set(raw);
  out[raw.length] = 0x80;
  return out;
}

/**
 * libsodium's sodium_unpad: the last `block` bytes must hold 0x80 followed
 * only by zeros. Scans the whole last block without stopping early, as
 * libsodium does, so the time taken does not depend on the message length.
 */
export function unpad(padded, block) {
  if (!Number.isInteger(block) || block <= 0 || padded.length < block) {
    throw new RangeError("bad padding");
  }
  let found = 0; // becomes 1 at the marker, scanning from the end
  let at = 0;
  let bad = 0;
  for (let i = padded.length - 1; i >= padded.length - block; i--) {
    const c = padded[i];
    const isMarker = found === 0 && c === 0x80 ? 1 : 0;
    bad |= found === 0 && c !== 0 && c !== 0x80 ? 1 : 0;
    at = isMarker ? i : at;
    found |= isMarker;
  }
  if (bad || !found) throw new RangeError("bad padding");
  return padded.slice(0, at);
}

/** JSON → UTF-8 → sodium_pad(256). */
export function encodePlaintext(obj) {
  const raw = new TextEncoder().encode(JSON.stringify(obj));
  const padded = pad(raw, PAD_BLOCK);
  wipe(raw);
  return padded;
}

/** Inverse of encodePlaintext; throws on bad padding or JSON. */
export function decodePlaintext(padded) {
  const raw = unpad(padded, PAD_BLOCK);
  let obj;
  try {
    obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } finally {
    wipe(raw);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new TypeError("not an object");
  return obj;
}

/** Encrypt one padded plaintext for one recipient. Returns {nonce, ct} as bytes. */
export function seal(padded, ad, txKey, nonce) {
  const n = nonce || randomBytes(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new RangeError("nonce must be 24 bytes");
  // libsodium's crypto_aead_xchacha20poly1305_ietf: ciphertext ‖ 16-byte tag.
  const ct = xchacha20poly1305(txKey, n, ad).encrypt(padded);
  return { nonce: n, ct };
}

/** Open one box; throws if the tag, AD or key is wrong. */
export function open(ct, ad, nonce, rxKey) {
  if (nonce.length !== NONCE_BYTES) throw new RangeError("nonce must be 24 bytes");
  return xchacha20poly1305(rxKey, nonce, ad).decrypt(ct);
}

/** Overwrite a secret buffer (no-op for anything that is not a Uint8Array). */
export function wipe(buf) {
  if (buf instanceof Uint8Array && buf.length) buf.fill(0);
}

/** Constant-time equality of two byte strings (libsodium's sodium_memcmp). */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The one source of randomness: the browser's CSPRNG. */
export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

/**
 * Pure helpers exposed on the page for the crypto known-answer tests, which
 * must exercise the exact built bundle. They hold no state and no key.
 */
export const testSurface = Object.freeze({
  ready: () => ready().then(() => true),
  base64: (text) => b64(unb64(text)),
  rosterHash: (members, conversation, epoch) => b64(rosterHash(members, conversation, epoch)),
  associatedData: (conversation, epoch, rh, senderPk, recipientPk, seq) =>
    b64(associatedData(conversation, epoch, unb64(rh, 32), unb64(senderPk, 32), unb64(recipientPk, 32), seq)),
  sessionKeys: (myPk, mySk, theirPk) => {
    const k = sessionKeys(unb64(myPk, 32), unb64(mySk, 32), unb64(theirPk, 32));
    return { tx: b64(k.tx), rx: b64(k.rx) };
  },
  keypair: () => {
    const k = keypair();
    return { pk: b64(k.pk), sk: b64(k.sk) };
  },
  pad: (bytes, block) => b64(pad(unb64(bytes), block)),
  unpad: (bytes, block) => b64(unpad(unb64(bytes), block)),
  encodePlaintext: (obj) => b64(encodePlaintext(obj)),
  decodePlaintext: (padded) => decodePlaintext(unb64(padded)),
  seal: (padded, ad, key, nonce) => {
    const r = seal(unb64(padded), unb64(ad), unb64(key, 32), nonce ? unb64(nonce, 24) : undefined);
    return { nonce: b64(r.nonce), ct: b64(r.ct) };
  },
  open: (ct, ad, nonce, key) => b64(open(unb64(ct), unb64(ad), unb64(nonce, 24), unb64(key, 32))),
});
