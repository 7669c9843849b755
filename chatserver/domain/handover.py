"""The handover that travels with a warm transfer (docs/protocol.md, "Handover";
docs/security-design.md, "Handover on transfer").

The sending counsellor's page seals the conversation so far and a note with
its console's handover key to the receiving console's handover key. The
server checks only who may hand what to whom and holds the ciphertext with
the offer: it goes to the receiver in the accept reply, and is dropped at
once, with the offer, on a decline, a time-out or the end of the chat. Each
console registers one handover public key per connection; it is forgotten
when that connection goes.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatserver.domain.events import Conn
from chatserver.domain.model import Counsellor, HandoverBox
from chatserver.errors import NotAllowed, UnknownRecipient


def register(counsellor: Counsellor, conn: Conn, kx_pk: str,
             everyone: Iterable[Counsellor]) -> None:
    if conn not in counsellor.conns:
        raise NotAllowed()  # only a console of this account, while it is connected
    # The server cannot see whether a console holds the secret half of what
    # it announces, and `check` compares only `from_pk` with the announced
    # key. A key another connection holds is therefore refused: otherwise a
    # colleague could announce a console's key, be sent handovers sealed to
    # it, or offer a box that colleague sealed as if it were their own.
    if any(key == kx_pk and other != conn
           for c in everyone for other, key in c.handover_keys.items()):
        raise NotAllowed()
    counsellor.handover_keys.pop(conn, None)  # to the end: the newest key
    counsellor.handover_keys[conn] = kx_pk


def current_key(counsellor: Counsellor) -> str | None:
    """The key a sender should seal to: the counsellor's most recently
    registered console (dicts keep insertion order; a re-registration moves
    to the end)."""
    keys = list(counsellor.handover_keys.values())
    return keys[-1] if keys else None


def check(sender: Counsellor, conn: Conn, receiver: Counsellor, box: HandoverBox) -> None:
    """A handover must come from the sending console's own key and be sealed
    to a key one of the receiver's consoles holds now."""
    if sender.handover_keys.get(conn) != box.from_pk:
        raise NotAllowed()
    if box.to_pk not in receiver.handover_keys.values():
        raise UnknownRecipient()
