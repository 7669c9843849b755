"""Random identifiers and secrets, and how the server keeps secrets: as keyed
hashes compared in constant time. Nonces are never made by hand elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ID_BYTES = 16  # conversation and member ids (protocol.md, "Encodings")
SECRET_BYTES = 32  # resume secrets, session tokens, CSRF tokens


def new_id() -> str:
    """16 random bytes as lowercase hex, the wire form of conversation/member ids."""
    return secrets.token_hex(ID_BYTES)


def new_secret() -> str:
    """32 random bytes, base64url without padding."""
    return b64e(secrets.token_bytes(SECRET_BYTES))


def new_pseudonym() -> str:
    """A short label for audit and the console, unrelated to the wire id."""
    return "c-" + secrets.token_hex(4)


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def b64d(text: str) -> bytes:
    """Strict base64url (no padding) decode; raises ValueError on anything else."""
    if not isinstance(text, str) or "=" in text or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc
    if b64e(raw) != text:  # rejects non-canonical trailing bits
        raise ValueError("not canonical base64url")
    return raw


def keyed_hash(key: bytes, value: str, purpose: str) -> bytes:
    """BLAKE2b-256 keyed by a server secret, personalised per purpose.

    Used for resume secrets and session tokens (the server stores only this) and
    for client addresses (rate-limit keys), so a memory dump shows no raw value.
    """
    person = purpose.encode("ascii")[:16]
    return hashlib.blake2b(value.encode("utf-8"), key=key, digest_size=32, person=person).digest()


def equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
