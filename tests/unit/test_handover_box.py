"""The handover box (chatserver/crypto/handover.py; docs/protocol.md,
"Handover"), with real PyNaCl: it is always labelled a handover, whatever
the body it is given holds, and it opens only as a handover, never as a
message between the same keys, nor a message as a handover."""

from __future__ import annotations

import os

import pytest

from chatserver.crypto import e2e, handover


def test_a_handover_box_is_a_handover_and_nothing_else() -> None:
    sender, receiver = e2e.KxKeyPair.generate(), e2e.KxKeyPair.generate()
    conv = os.urandom(16)
    # A body that names another type must not turn the box into one
    nonce, ct = handover.seal(sender, receiver.public_key, conv,
                              {"type": "msg", "text": "hej", "sent_at": 1, "note": "n"})
    body = handover.open_(receiver, sender.public_key, conv, nonce, ct)
    assert body["type"] == "handover" and body["note"] == "n"

    # Not as a message between the same two keys (any epoch, roster, seq ≥ 1)
    keys = e2e.session_keys(receiver, sender.public_key)
    as_message = e2e.associated_data(conv, 0, os.urandom(32), sender.public_key,
                                     receiver.public_key, 1)
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(keys.rx, as_message, nonce, ct)
    # Not for another conversation
    with pytest.raises(e2e.DecryptFailed):
        handover.open_(receiver, sender.public_key, os.urandom(16), nonce, ct)

    # And a message between the same keys does not open as a handover
    tx = e2e.session_keys(sender, receiver.public_key).tx
    m_nonce, m_ct = e2e.seal_box(tx, e2e.associated_data(
        conv, 1, os.urandom(32), sender.public_key, receiver.public_key, 1),
        {"type": "handover", "note": "forged", "items": []})
    with pytest.raises(e2e.DecryptFailed):
        handover.open_(receiver, sender.public_key, conv, m_nonce, m_ct)
