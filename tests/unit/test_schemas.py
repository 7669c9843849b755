"""Edge validation of keys, secrets and ids: one canonical decoder
(``tokens.b64d``) for all of them, and keys the pages can use."""

from __future__ import annotations

import pytest

from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from chatserver.errors import BadPayload
from chatserver.transport import schemas

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def non_canonical(raw: bytes) -> str:
    text = b64e(raw)
    return text[:-1] + ALPHABET[ALPHABET.index(text[-1]) | 0b11]


def test_non_canonical_forms_decode_to_the_same_bytes_in_a_lax_decoder() -> None:
    # The reason for the check: Python's own decoder accepts both forms.
    import base64
    raw = bytes(range(32))
    lax = base64.urlsafe_b64decode(non_canonical(raw) + "=")
    assert lax == raw and non_canonical(raw) != b64e(raw)


@pytest.mark.parametrize("call", [
    lambda v: schemas.resume({"conversation": "a" * 32, "member": "b" * 32, "resume": v}),
    lambda v: schemas.invite_create({"conversation": "a" * 32, "invite": v, "role": "police"}),
    lambda v: schemas.take_next({"kx_pk": v}),
    lambda v: schemas.join({"invite": v, "kx_pk": b64e(e2e.KxKeyPair.generate().public_key),
                            "mac": b64e(bytes(32))}),
], ids=["resume", "invite", "take_next", "join"])
def test_every_32_byte_field_refuses_non_canonical_base64(call) -> None:  # type: ignore[no-untyped-def]
    raw = e2e.KxKeyPair.generate().public_key
    call(b64e(raw))  # the canonical form passes
    with pytest.raises(BadPayload):
        call(non_canonical(raw))


def test_low_order_points_are_not_usable_keys() -> None:
    assert e2e.usable_peer_key(e2e.KxKeyPair.generate().public_key)
    assert not e2e.usable_peer_key(bytes(32))
    assert not e2e.usable_peer_key((1).to_bytes(32, "little"))
    with pytest.raises(BadPayload):
        schemas.take_next({"kx_pk": b64e(bytes(32))})


@pytest.mark.parametrize("bad", ["", "A", "AAAA=", "AA AA", "+/+/", "\u00e5" * 43])
def test_garbage_is_bad_payload_not_a_crash(bad: str) -> None:
    with pytest.raises(BadPayload):
        schemas.take_next({"kx_pk": bad})
