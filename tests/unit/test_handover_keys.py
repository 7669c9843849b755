"""A handover key belongs to the one console that announced it first
(domain/handover.py; docs/protocol.md, "Handover").

The server cannot see whether a console holds the secret half of the key it
announces, and `transfer` checks only that `from_pk` is the key the sending
connection announced. So if a console could announce a colleague's key, a
malicious colleague could have handovers meant for it sealed to another
console's key and pass a colleague's sealed box on as its own. These tests
play that through the real ChatService."""

from __future__ import annotations

import os
from typing import Any

import pytest

from chatserver import errors
from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn
from chatserver.domain.model import HandoverBox, StaffRef
from chatserver.settings import Settings


def pk() -> str:
    return b64e(os.urandom(32))


@pytest.fixture
def chat(settings: Settings, make_chat: Any) -> ChatService:
    # In memory, and through a Redis log with two replicas (conftest.py).
    made: ChatService = make_chat(FakeClock(), None, settings)
    return made


def counsellor(chat: ChatService, n: int) -> tuple[StaffRef, Conn]:
    ref = StaffRef(id=n, username=f"user{n}", role="counsellor", alias=f"A{n}", capacity=3)
    conn = Conn(STAFF_NS, f"s{n}")
    chat.staff_connected(ref, conn)
    chat.duty(ref, True)
    return ref, conn


def handover_pks(chat: ChatService, viewer: StaffRef) -> dict[int, str | None]:
    return {c["staff"]: c["handover_pk"] for c in chat.colleagues(viewer).reply["colleagues"]}


def test_a_console_cannot_announce_a_key_another_console_holds(chat: ChatService) -> None:
    sender, sender_conn = counsellor(chat, 1)
    receiver, receiver_conn = counsellor(chat, 2)
    mallory, mallory_conn = counsellor(chat, 3)
    sender_key, receiver_key = pk(), pk()
    chat.register_handover_key(sender, sender_conn, sender_key)
    chat.register_handover_key(receiver, receiver_conn, receiver_key)
    for taken in (receiver_key, sender_key):
        with pytest.raises(errors.NotAllowed):
            chat.register_handover_key(mallory, mallory_conn, taken)
    # Nothing changed: colleagues still seal to the consoles that hold the keys
    assert handover_pks(chat, sender)[3] is None
    assert handover_pks(chat, mallory) == {1: sender_key, 2: receiver_key}
    # A console may announce its own key again, and a fresh key of its own
    chat.register_handover_key(receiver, receiver_conn, receiver_key)
    mallory_key = pk()
    chat.register_handover_key(mallory, mallory_conn, mallory_key)
    assert handover_pks(chat, sender)[3] == mallory_key
    # Once its console is gone a key is nobody's: announcing it takes nothing
    chat.disconnect(receiver_conn)
    chat.register_handover_key(mallory, mallory_conn, receiver_key)
    assert chat.counsellors[mallory.id].handover_keys == {mallory_conn: receiver_key}


def test_a_colleagues_sealed_box_cannot_be_passed_on_as_ones_own(chat: ChatService) -> None:
    """Mallory holds the conversation (taken over from the sender) and the box
    the sender sealed to the receiver's key; to offer it onward she must
    announce the sender's key as hers, which is refused, so the offer is."""
    sender, sender_conn = counsellor(chat, 1)
    receiver, receiver_conn = counsellor(chat, 2)
    mallory, mallory_conn = counsellor(chat, 3)
    sender_key, receiver_key = pk(), pk()
    chat.register_handover_key(sender, sender_conn, sender_key)
    chat.register_handover_key(receiver, receiver_conn, receiver_key)
    chat.register_handover_key(mallory, mallory_conn, pk())
    conv = str(chat.start(Conn(YOUTH_NS, "y1"), pk(), StartProfile()).reply["conversation"])
    chat.claim(mallory, mallory_conn, conv, pk())
    lifted = HandoverBox(sender_key, receiver_key, b64e(os.urandom(24)), b64e(os.urandom(272)))
    with pytest.raises(errors.NotAllowed):
        chat.register_handover_key(mallory, mallory_conn, sender_key)
    with pytest.raises(errors.NotAllowed):
        chat.offer_transfer(mallory, mallory_conn, conv, receiver.id, lifted)
    assert chat.conversations[conv].transfer is None

