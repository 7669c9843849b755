"""Sealing TOTP seeds at rest with a server secret (``settings.secrets.totp_key``).

A leaked database alone does not give the seeds: the key lives in env or the
secrets file, never in the database. XSalsa20-Poly1305 (NaCl SecretBox) with a
random nonce chosen by the library; the sealed form is ``nonce ‖ ciphertext``.
"""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

KEY_BYTES = SecretBox.KEY_SIZE  # 32


class SealBroken(Exception):
    """The sealed value was altered or sealed under another key."""

    def __init__(self) -> None:
        super().__init__("sealed value could not be opened")


def _box(key: bytes) -> SecretBox:
    if len(key) != KEY_BYTES:
        raise ValueError(f"seal key must be {KEY_BYTES} bytes")
    return SecretBox(key)


def seal(key: bytes, plaintext: str) -> bytes:
    return bytes(_box(key).encrypt(plaintext.encode("utf-8")))


def unseal(key: bytes, sealed: bytes) -> str:
    try:
        return _box(key).decrypt(sealed).decode("utf-8")
    except (CryptoError, UnicodeDecodeError, ValueError):
        raise SealBroken() from None
