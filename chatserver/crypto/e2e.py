"""End-to-end encryption between conversation members (docs/protocol.md,
"End-to-end encryption"; docs/security-design.md, "Keys and messages").

The server never calls these functions on live traffic: they are what the
*clients* do. They live here so the Python reference client, the load
generator and the known-answer vectors (tests/data/e2e_vectors.json, which the
browser bundle is checked against) share one implementation, and so that only
``chatserver/crypto/`` imports ``nacl``.

Errors raised for anything a peer or the server could cause are subclasses of
:class:`E2EError` (client-side errors, not server ``ChatError`` codes).
Programming errors (wrong sizes or types from our own code) are ``ValueError``
or ``TypeError``.

Memory hygiene is best effort: CPython copies ``bytes`` freely and cannot
``memzero`` them, so :meth:`KxKeyPair.wipe` overwrites the one buffer we own and
drops references. The pages overwrite their key buffers in place (``wipe`` in
web_client/src/lib/e2e.js).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils

# Sizes fixed by libsodium and by protocol.md.
KX_PK_BYTES = sodium.crypto_kx_PUBLIC_KEY_BYTES  # 32
KX_SK_BYTES = sodium.crypto_kx_SECRET_KEY_BYTES  # 32
KX_SEED_BYTES = sodium.crypto_kx_SEED_BYTES  # 32
SESSION_KEY_BYTES = sodium.crypto_kx_SESSION_KEY_BYTES  # 32
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
ID_BYTES = 16  # conversation and member ids
ROSTER_HASH_BYTES = 32  # BLAKE2b-256
AD_BYTES = 127  # 3 + 16 + 4 + 32 + 32 + 32 + 8
AD_PREFIX = b"cv1"  # protocol/version tag at the head of every AD
PAD_BLOCK = 256  # hides message length to within 256 bytes
# Settings.max_padded_plaintext_bytes default (8 KiB holds max_text_chars of any
# script); the server refuses larger boxes, so we refuse before encrypting.
MAX_PADDED_BYTES = 8192
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1
ROLES = frozenset({"youth", "counsellor", "liaison"})


class E2EError(Exception):
    """A box or roster could not be used. Safe to show as "could not be verified"."""


class DecryptFailed(E2EError):
    """Authentication failed: tampered box, wrong key, or a different roster view."""


class BadPlaintext(E2EError):
    """The box authenticated but its content is not valid padded JSON of the agreed shape."""


class PlaintextTooLarge(E2EError):
    """The padded plaintext would exceed the limit; nothing was encrypted."""


class BadPeerKey(E2EError):
    """The peer's key is our own key or a degenerate point (a server-side lie)."""


class KeyWiped(E2EError):
    """The key pair was wiped and may not be used again."""


def _check_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes")
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return value


def _check_uint(name: str, value: object, maximum: int) -> int:
    # bool is an int subclass; True as an epoch is a bug, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ValueError(f"{name} must be an integer in 0..{maximum}")
    return value


# --- key exchange ------------------------------------------------------------


class KxKeyPair:
    """A ``crypto_kx`` key pair for one conversation, kept in memory only."""

    __slots__ = ("_public", "_secret")

    def __init__(self, public_key: bytes, secret_key: bytes) -> None:
        self._public = _check_bytes("public_key", public_key, KX_PK_BYTES)
        # A bytearray we own, so wipe() can overwrite it in place.
        self._secret: bytearray | None = bytearray(
            _check_bytes("secret_key", secret_key, KX_SK_BYTES))

    @classmethod
    def generate(cls) -> KxKeyPair:
        pk, sk = sodium.crypto_kx_keypair()
        return cls(pk, sk)

    @classmethod
    def from_seed(cls, seed: bytes) -> KxKeyPair:
        """Deterministic key pair: for known-answer vectors and tests only."""
        pk, sk = sodium.crypto_kx_seed_keypair(_check_bytes("seed", seed, KX_SEED_BYTES))
        return cls(pk, sk)

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def wiped(self) -> bool:
        return self._secret is None

    def _secret_bytes(self) -> bytes:
        if self._secret is None:
            raise KeyWiped("key pair was wiped")
        return bytes(self._secret)

    def wipe(self) -> None:
        if self._secret is not None:
            self._secret[:] = bytes(len(self._secret))
            self._secret = None

    def __repr__(self) -> str:
        # The public key is public, but a short prefix is enough to tell pairs apart.
        state = "wiped" if self._secret is None else "secret=<hidden>"
        return f"KxKeyPair(public={self._public[:4].hex()}…, {state})"

    def __reduce__(self) -> Any:
        raise TypeError("KxKeyPair cannot be pickled")  # keys never leave memory


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """Keys for one ordered pair: ``tx`` encrypts to the peer, ``rx`` opens from it."""

    rx: bytes = field(repr=False)
    tx: bytes = field(repr=False)

    def __iter__(self) -> Iterator[bytes]:
        # Allows ``rx, tx = session_keys(...)``.
        return iter((self.rx, self.tx))


def session_keys(own: KxKeyPair, peer_pk: bytes) -> SessionKeys:
    """Session keys with a peer. The byte-wise smaller public key is the kx client,
    so both sides agree on roles without talking; our ``tx`` is the peer's ``rx``."""
    _check_bytes("peer_pk", peer_pk, KX_PK_BYTES)
    own_pk = own.public_key
    if own_pk == peer_pk:
        # Only a lying roster puts our own key on another member.
        raise BadPeerKey("peer key equals own key")
    sk = own._secret_bytes()
    try:
        if own_pk < peer_pk:
            rx, tx = sodium.crypto_kx_client_session_keys(own_pk, sk, peer_pk)
        else:
            rx, tx = sodium.crypto_kx_server_session_keys(own_pk, sk, peer_pk)
    except nacl.exceptions.CryptoError:
        # libsodium refuses low-order points (an all-zero shared secret).
        raise BadPeerKey("degenerate peer key") from None
    return SessionKeys(rx=rx, tx=tx)


def usable_peer_key(peer_pk: bytes) -> bool:
    """Whether a page could make session keys with this public key.

    libsodium (PyNaCl here) refuses low-order points, and the pages' X25519
    (@noble's ladder, web_client/src/lib/x25519.js) refuses the same ones.
    The server checks at the edge so that a youth cannot seat a counsellor in
    a conversation whose keys the counsellor's page cannot use; a throw-away
    scalar is enough, since only the refusal matters.
    """
    if not isinstance(peer_pk, bytes) or len(peer_pk) != KX_PK_BYTES:
        return False
    try:
        sodium.crypto_scalarmult(nacl.utils.random(sodium.crypto_scalarmult_SCALARBYTES),
                                 peer_pk)
    except nacl.exceptions.CryptoError:
        return False
    return True


# --- roster hash and associated data -----------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One roster entry as the receiver sees it (public data only)."""

    member_id: bytes
    role: str
    kx_pk: bytes

    def __post_init__(self) -> None:
        _check_bytes("member_id", self.member_id, ID_BYTES)
        _check_bytes("kx_pk", self.kx_pk, KX_PK_BYTES)
        if self.role not in ROLES:
            raise ValueError("unknown role")


def roster_hash(conversation_id: bytes, epoch: int, members: Iterable[Member]) -> bytes:
    """BLAKE2b-256 (unkeyed) over, for each member sorted by raw member id,
    ``member_id(16) ‖ len(role)(u8) ‖ role ‖ kx_pk(32)``, then
    ``conversation_id(16) ‖ epoch(u32 BE)``."""
    return hashlib.blake2b(
        roster_hash_input(conversation_id, epoch, members), digest_size=ROSTER_HASH_BYTES
    ).digest()


def roster_hash_input(conversation_id: bytes, epoch: int, members: Iterable[Member]) -> bytes:
    """The exact bytes hashed by :func:`roster_hash` (exposed for the vectors)."""
    _check_bytes("conversation_id", conversation_id, ID_BYTES)
    _check_uint("epoch", epoch, MAX_U32)
    ordered = sorted(members, key=lambda m: m.member_id)
    ids = [m.member_id for m in ordered]
    if not ordered or len(set(ids)) != len(ids):
        raise ValueError("roster must be non-empty with unique member ids")
    parts: list[bytes] = []
    for m in ordered:
        role = m.role.encode("ascii")
        parts += [m.member_id, bytes([len(role)]), role, m.kx_pk]
    parts += [conversation_id, struct.pack(">I", epoch)]
    return b"".join(parts)


def associated_data(
    conversation_id: bytes,
    epoch: int,
    roster_hash: bytes,
    sender_pk: bytes,
    recipient_pk: bytes,
    seq: int,
) -> bytes:
    """``"cv1" ‖ conversation_id(16) ‖ epoch(u32 BE) ‖ roster_hash(32) ‖
    sender_kx_pk(32) ‖ recipient_kx_pk(32) ‖ seq(u64 BE)`` — 127 bytes."""
    ad = b"".join((
        AD_PREFIX,
        _check_bytes("conversation_id", conversation_id, ID_BYTES),
        struct.pack(">I", _check_uint("epoch", epoch, MAX_U32)),
        _check_bytes("roster_hash", roster_hash, ROSTER_HASH_BYTES),
        _check_bytes("sender_pk", sender_pk, KX_PK_BYTES),
        _check_bytes("recipient_pk", recipient_pk, KX_PK_BYTES),
        struct.pack(">Q", _check_uint("seq", seq, MAX_U64)),
    ))
    return ad


# --- padding and boxes -------------------------------------------------------


def pad(plaintext: bytes, block: int = PAD_BLOCK) -> bytes:
    """ISO/IEC 7816-4 padding (``sodium_pad``): always adds 1..block bytes."""
    return sodium.sodium_pad(plaintext, block)


def unpad(padded: bytes, block: int = PAD_BLOCK) -> bytes:
    try:
        return sodium.sodium_unpad(padded, block)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError):
        raise BadPlaintext("bad padding") from None


def encode_plaintext(plaintext_obj: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON in the object's key order, as ``JSON.stringify`` writes it."""
    if not isinstance(plaintext_obj.get("type"), str):
        raise ValueError("plaintext needs a string 'type'")
    try:
        text = json.dumps(dict(plaintext_obj), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        # e.g. a lone surrogate, which has no UTF-8 form.
        raise BadPlaintext("plaintext is not JSON-encodable UTF-8") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads would accept NaN/Infinity


def decode_plaintext(raw: bytes) -> dict[str, Any]:
    """Parse and shape-check a decrypted plaintext. Extra keys are tolerated
    (reserved for later types); ``msg`` must carry ``text`` and ``sent_at``."""
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise BadPlaintext("not UTF-8 JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise BadPlaintext("not an object with a string type")
    if obj["type"] == "msg":
        sent_at = obj.get("sent_at")
        if (not isinstance(obj.get("text"), str) or not isinstance(sent_at, int)
                or isinstance(sent_at, bool)):
            raise BadPlaintext("msg needs text and integer sent_at")
    return obj


def check_ct_size(ct: bytes, max_padded_bytes: int = MAX_PADDED_BYTES) -> bool:
    """True when ``ct`` has a size a valid box can have (protocol.md, ``send``)."""
    body = len(ct) - TAG_BYTES
    return PAD_BLOCK <= body <= max_padded_bytes and body % PAD_BLOCK == 0


def seal_box(
    tx_key: bytes,
    ad: bytes,
    plaintext_obj: Mapping[str, Any],
    *,
    max_padded_bytes: int = MAX_PADDED_BYTES,
) -> tuple[bytes, bytes]:
    """Encrypt one plaintext object for one recipient; returns ``(nonce, ct)``."""
    # 24 random bytes: XChaCha's nonce is large enough that random never repeats.
    return _seal_with_nonce(tx_key, ad, plaintext_obj, nacl.utils.random(NONCE_BYTES),
                            max_padded_bytes=max_padded_bytes)


def _seal_with_nonce(
    tx_key: bytes,
    ad: bytes,
    plaintext_obj: Mapping[str, Any],
    nonce: bytes,
    *,
    max_padded_bytes: int = MAX_PADDED_BYTES,
) -> tuple[bytes, bytes]:
    """:func:`seal_box` with a chosen nonce. Only for the known-answer vectors and
    tests: a reused nonce under one key destroys confidentiality."""
    _check_bytes("tx_key", tx_key, SESSION_KEY_BYTES)
    _check_bytes("ad", ad, AD_BYTES)
    _check_bytes("nonce", nonce, NONCE_BYTES)
    padded = pad(encode_plaintext(plaintext_obj))
    if len(padded) > max_padded_bytes:
        raise PlaintextTooLarge(f"padded plaintext exceeds {max_padded_bytes} bytes")
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad, nonce, tx_key)
    return nonce, ct


def open_box(
    rx_key: bytes,
    ad: bytes,
    nonce: bytes,
    ct: bytes,
    *,
    max_padded_bytes: int = MAX_PADDED_BYTES,
) -> dict[str, Any]:
    """Decrypt and check one box; raises :class:`DecryptFailed` or :class:`BadPlaintext`."""
    _check_bytes("rx_key", rx_key, SESSION_KEY_BYTES)
    _check_bytes("ad", ad, AD_BYTES)
    # Nonce and ct come off the wire: a wrong size is a bad box, not our bug.
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_BYTES:
        raise DecryptFailed("bad nonce size")
    if not isinstance(ct, bytes) or not check_ct_size(ct, max_padded_bytes):
        raise DecryptFailed("bad ciphertext size")
    try:
        padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, ad, nonce, rx_key)
    except nacl.exceptions.CryptoError:
        raise DecryptFailed("authentication failed") from None
    return decode_plaintext(unpad(padded))


# --- replay and gap detection --------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeqVerdict:
    """How an incoming ``seq`` relates to the last one accepted from its sender.

    ``missing`` is the inclusive range ``(first, last)`` skipped by a gap.
    """

    kind: Literal["ok", "replay", "gap"]
    missing: tuple[int, int] | None = None


class ReceiveState:
    """``last_seq[sender]`` for one conversation, as seen by one receiver.

    Check first, then :meth:`accept` only after the box decrypted: the seq is
    authenticated by the AD, so a forged box must not move the counter.
    """

    def __init__(self, initial: Mapping[str, int] | None = None) -> None:
        self._last: dict[str, int] = {}
        for sender, seq in (initial or {}).items():
            self._last[sender] = _check_uint("seq", seq, MAX_U64)

    @classmethod
    def from_roster(cls, members: Iterable[Mapping[str, Any]]) -> ReceiveState:
        """Start from a roster's ``{member, seq}`` entries (a newcomer's view)."""
        return cls({m["member"]: m["seq"] for m in members})

    def learn(self, sender: str, seq: int) -> None:
        """Record a member first seen in a later roster. Known senders keep their
        counter: the roster may run ahead of boxes still in flight."""
        self._last.setdefault(sender, _check_uint("seq", seq, MAX_U64))

    def last(self, sender: str) -> int:
        return self._last.get(sender, 0)

    def check(self, sender: str, seq: int) -> SeqVerdict:
        last = self.last(sender)
        if seq <= last:
            return SeqVerdict("replay")
        if seq > last + 1:
            return SeqVerdict("gap", (last + 1, seq - 1))
        return SeqVerdict("ok")

    def accept(self, sender: str, seq: int) -> None:
        if seq <= self.last(sender):
            raise ValueError("seq does not advance")  # check() said replay
        self._last[sender] = seq


# --- liaison invites (docs/protocol.md, "Liaison namespace /liaison") ----------

INVITE_SECRET_BYTES = 32  # lives only in the invite code, never in a URL
INVITE_ID_BYTES = 32
INVITE_MAC_BYTES = 32
INVITE_ID_LABEL = b"cv1-invite-id"
INVITE_MAC_LABEL = b"cv1-invite-mac"
COMPARISON_LABEL = b"cv1-invite-compare"
COMPARISON_DIGITS = 6


def _keyed_blake2b(key: bytes, message: bytes) -> bytes:
    """libsodium ``crypto_generichash(32, message, key)``: keyed BLAKE2b-256."""
    return nacl.hash.blake2b(message, digest_size=32, key=key,
                             encoder=nacl.encoding.RawEncoder)


def new_invite_secret() -> bytes:
    """32 random bytes for a new invite (the counsellor's page makes it)."""
    return nacl.utils.random(INVITE_SECRET_BYTES)


def invite_id(secret: bytes) -> bytes:
    """``BLAKE2b-256(key = invite_secret, message = "cv1-invite-id")``: the only
    thing the server learns about an invite."""
    return _keyed_blake2b(_check_bytes("secret", secret, INVITE_SECRET_BYTES), INVITE_ID_LABEL)


def invite_mac_key(secret: bytes) -> bytes:
    """``BLAKE2b-256(key = invite_secret, message = "cv1-invite-mac")``."""
    return _keyed_blake2b(_check_bytes("secret", secret, INVITE_SECRET_BYTES), INVITE_MAC_LABEL)


def invite_mac(mac_key: bytes, conversation_id: bytes, kx_pk: bytes) -> bytes:
    """``BLAKE2b-256(key = mac_key, message = conversation_id(16) ‖ kx_pk(32))``:
    the liaison proves it holds the link and binds its key to the conversation."""
    return _keyed_blake2b(
        _check_bytes("mac_key", mac_key, 32),
        _check_bytes("conversation_id", conversation_id, ID_BYTES)
        + _check_bytes("kx_pk", kx_pk, KX_PK_BYTES))


def verify_invite_mac(mac_key: bytes, conversation_id: bytes, kx_pk: bytes, mac: bytes) -> bool:
    """Constant-time check of a ``join_request``'s MAC (the counsellor's page).
    A MAC of the wrong size, or a malformed key from the wire, is simply False."""
    if not isinstance(mac, bytes) or len(mac) != INVITE_MAC_BYTES:
        return False
    if not isinstance(kx_pk, bytes) or len(kx_pk) != KX_PK_BYTES:
        return False
    return hmac.compare_digest(invite_mac(mac_key, conversation_id, kx_pk), mac)


def comparison_input(invite_id_: bytes, conversation_id: bytes, liaison_pk: bytes,
                     counsellor_pk: bytes) -> bytes:
    """The exact bytes MAC-ed for the comparison code (exposed for the vectors):
    ``"cv1-invite-compare" ‖ invite_id(32) ‖ conversation_id(16) ‖
    liaison_kx_pk(32) ‖ counsellor_kx_pk(32)``."""
    return b"".join((
        COMPARISON_LABEL,
        _check_bytes("invite_id", invite_id_, INVITE_ID_BYTES),
        _check_bytes("conversation_id", conversation_id, ID_BYTES),
        _check_bytes("liaison_pk", liaison_pk, KX_PK_BYTES),
        _check_bytes("counsellor_pk", counsellor_pk, KX_PK_BYTES),
    ))


def comparison_code(mac_key: bytes, invite_id_: bytes, conversation_id: bytes,
                    liaison_pk: bytes, counsellor_pk: bytes) -> str:
    """Six digits counsellor and liaison read to each other by phone.

    ``h = BLAKE2b-256(key = mac_key, message = comparison_input(...))``; the code
    is the first four bytes of ``h`` as a big-endian u32, modulo 10^6, written
    with leading zeros (JS: ``new DataView(h.buffer).getUint32(0, false) % 1e6``,
    ``padStart(6, "0")``). Both sides compute it from what they hold: the
    counsellor from its secret and the ``join_request``, the liaison from the
    link and the roster of ``joined``. A server that swapped either key cannot
    make the codes agree without the secret. The modulo bias (2^32 mod 10^6) is
    below 0.03 %.
    """
    digest = _keyed_blake2b(_check_bytes("mac_key", mac_key, 32),
                            comparison_input(invite_id_, conversation_id, liaison_pk,
                                             counsellor_pk))
    value = struct.unpack(">I", digest[:4])[0] % 10**COMPARISON_DIGITS
    return f"{value:0{COMPARISON_DIGITS}d}"
