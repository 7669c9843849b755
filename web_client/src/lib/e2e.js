// End-to-end encryption exactly as docs/protocol.md ("End-to-end encryption")
// specifies it. Pure functions over explicit keys: no key is stored here.
// The same byte layouts are implemented with PyNaCl in chatserver/client/ and
// checked against tests/data/e2e_vectors.json by tests/browser/.
import sodium from "libsodium-wrappers";

export const PAD_BLOCK = 256; // protocol.md: plaintext padded to 256-byte blocks
const AD_PREFIX = [0x63, 0x76, 0x31]; // "cv1"
export const AD_BYTES = 127;
const ID_BYTES = 16;
const KX_BYTES = 32;
const NONCE_BYTES = 24;

let readyPromise = null;

/** Resolve once libsodium's WASM is compiled (needs 'wasm-unsafe-eval'). */
export function ready() {
  if (!readyPromise) readyPromise = sodium.ready.then(() => sodium);
  return readyPromise;
}

const VARIANT = () => sodium.base64_variants.URLSAFE_NO_PADDING;

export function b64(bytes) {
  return sodium.to_base64(bytes, VARIANT());
}

export function unb64(text, expectedLength) {
  if (typeof text !== "string") throw new TypeError("base64 text expected");
  const bytes = sodium.from_base64(text, VARIANT());
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new RangeError("wrong length");
  }
  return bytes;
}

export function hexToBytes(hex, expectedLength) {
  if (typeof hex !== "string" || !/^[0-9a-f]*$/.test(hex) || hex.length % 2) {
    throw new TypeError("lowercase hex expected");
  }
  const bytes = sodium.from_hex(hex);
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new RangeError("wrong length");
  }
  return bytes;
}

/** A fresh crypto_kx key pair. The caller must wipe() it when done. */
export function keypair() {
  const kp = sodium.crypto_kx_keypair();
  return { pk: kp.publicKey, sk: kp.privateKey };
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
 */
export function sessionKeys(myPk, mySk, theirPk) {
  if (theirPk.length !== KX_BYTES) throw new RangeError("kx_pk must be 32 bytes");
  if (compareBytes(myPk, theirPk) === 0) throw new RangeError("same key on both sides");
  const keys = compareBytes(myPk, theirPk) < 0
    ? sodium.crypto_kx_client_session_keys(myPk, mySk, theirPk)
    : sodium.crypto_kx_server_session_keys(myPk, mySk, theirPk);
  return { tx: keys.sharedTx, rx: keys.sharedRx };
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
  return sodium.crypto_generichash(32, concat(parts), null);
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

/** JSON → UTF-8 → sodium_pad(256). */
export function encodePlaintext(obj) {
  const raw = new TextEncoder().encode(JSON.stringify(obj));
  const padded = sodium.pad(raw, PAD_BLOCK);
  sodium.memzero(raw);
  return padded;
}

/** Inverse of encodePlaintext; throws on bad padding or JSON. */
export function decodePlaintext(padded) {
  const raw = sodium.unpad(padded, PAD_BLOCK);
  const obj = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new TypeError("not an object");
  return obj;
}

/** Encrypt one padded plaintext for one recipient. Returns {nonce, ct} as bytes. */
export function seal(padded, ad, txKey, nonce) {
  const n = nonce || sodium.randombytes_buf(NONCE_BYTES);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, null, n, txKey);
  return { nonce: n, ct };
}

/** Open one box; throws if the tag, AD or key is wrong. */
export function open(ct, ad, nonce, rxKey) {
  if (nonce.length !== NONCE_BYTES) throw new RangeError("nonce must be 24 bytes");
  return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct, ad, nonce, rxKey);
}

/** Overwrite a secret buffer (no-op for anything that is not a Uint8Array). */
export function wipe(buf) {
  if (buf instanceof Uint8Array && buf.length) {
    try {
      sodium.memzero(buf);
    } catch {
      buf.fill(0);
    }
  }
}

export function randomBytes(n) {
  return sodium.randombytes_buf(n);
}

/**
 * Pure helpers exposed on the page for the crypto known-answer tests, which
 * must exercise the exact built bundle. They hold no state and no key.
 */
export const testSurface = Object.freeze({
  ready: () => ready().then(() => true),
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
  pad: (bytes, block) => b64(sodium.pad(unb64(bytes), block)),
  unpad: (bytes, block) => b64(sodium.unpad(unb64(bytes), block)),
  encodePlaintext: (obj) => b64(encodePlaintext(obj)),
  decodePlaintext: (padded) => decodePlaintext(unb64(padded)),
  seal: (padded, ad, key, nonce) => {
    const r = seal(unb64(padded), unb64(ad), unb64(key, 32), nonce ? unb64(nonce, 24) : undefined);
    return { nonce: b64(r.nonce), ct: b64(r.ct) };
  },
  open: (ct, ad, nonce, key) => b64(open(unb64(ct), unb64(ad), unb64(nonce, 24), unb64(key, 32))),
});
