"""The handover box of a warm transfer (docs/protocol.md, "Handover";
docs/security-design.md, "Handover on transfer"): the sending console seals
the conversation so far and a note to the receiving console, end to end.

Each console makes a ``crypto_kx`` key pair for handovers when it connects
(memory only) and publishes the public half; the pair of consoles gets
session keys exactly as two members do (the byte-wise smaller key is the kx
client). The associated data has a message's layout with values no message
can have: epoch 2^32−1, the roster hash replaced by BLAKE2b-256 of
``"cv1-handover"``, and seq 0 (a message's seq starts at 1). The plaintext
is padded to 256-byte blocks like a message and may be up to
``max_members − 1`` messages' worth (what one full ``send`` carries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from chatserver.crypto import e2e

HANDOVER_EPOCH = e2e.MAX_U32
HANDOVER_LABEL = hashlib.blake2b(b"cv1-handover", digest_size=32).digest()
HANDOVER_SEQ = 0


def max_padded_bytes(max_members: int = 4,
                     max_padded_plaintext_bytes: int = e2e.MAX_PADDED_BYTES) -> int:
    return (max_members - 1) * max_padded_plaintext_bytes


def associated_data(conversation_id: bytes, sender_pk: bytes, recipient_pk: bytes) -> bytes:
    return e2e.associated_data(conversation_id, HANDOVER_EPOCH, HANDOVER_LABEL, sender_pk,
                               recipient_pk, HANDOVER_SEQ)


def seal(own: e2e.KxKeyPair, recipient_pk: bytes, conversation_id: bytes,
         body: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """``(nonce, ct)`` of ``{"type": "handover", ...}`` from ``own`` to ``recipient_pk``."""
    keys = e2e.session_keys(own, recipient_pk)
    ad = associated_data(conversation_id, own.public_key, recipient_pk)
    # The label last, so no body can make the box claim another type.
    return e2e.seal_box(keys.tx, ad, {**body, "type": "handover"},
                        max_padded_bytes=max_padded_bytes())


def open_(own: e2e.KxKeyPair, sender_pk: bytes, conversation_id: bytes, nonce: bytes,
          ct: bytes) -> dict[str, Any]:
    keys = e2e.session_keys(own, sender_pk)
    ad = associated_data(conversation_id, sender_pk, own.public_key)
    body = e2e.open_box(keys.rx, ad, nonce, ct, max_padded_bytes=max_padded_bytes())
    if body.get("type") != "handover":
        raise e2e.BadPlaintext("not a handover")
    return body
