"""A counsellor's console that lost its keys takes its seats back (re-attach).

Design: docs/design/conversations.md, "Re-attach after a reload"; wire:
docs/protocol.md, ``seats`` and ``reattach``. A reloaded console (or one on a
new laptop, or behind another node) has lost every key and resume secret: it
lived in page memory only. The seat itself is still on the server for
``grace_secs``. The console learns which seats its account holds (``seats``,
on connect) and takes each back with a new ``crypto_kx`` key: authorised by
the session's staff id matching the seat's, not by the lost resume secret.
The seat keeps its member id and its ``seq`` (the console counts on from it);
its key changes, so the epoch moves on and every other member gets the new
roster. Boxes buffered for the old key can never be opened and are dropped;
each sender is told which of its seqs those were (``undelivered``) so its
page can send them again under the new epoch.

These functions change one ChatService and return an Outcome: ``seats_event``
when a console connects (connections.py), ``reattach`` for ChatService's call
of that name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatserver.domain.chat import seats
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Conversation, Counsellor, Member, Role, StaffRef, State
from chatserver.errors import BadPayload, NotAllowed, NotMember, UnknownConversation

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService

# The end reason a console still connected gets when another console of the
# same account took its seat: its keys no longer match the roster.
REATTACHED = "reattached"


def seats_event(svc: ChatService, counsellor: Counsellor, conn: Conn) -> Outcome:
    """``seats`` for a console that just connected: which conversations it may
    take back. Ids, pseudonym and state only; nothing about the youth."""
    listed: list[dict[str, Any]] = []
    for conv_id in sorted(counsellor.active):
        conv = svc.conversations.get(conv_id)
        if conv is None or not any(m.staff_id == counsellor.staff.id
                                   for m in conv.counsellors()):
            continue
        listed.append({"conversation": conv.id, "pseudonym": conv.pseudonym,
                       "state": conv.state.value})
    out = Outcome()
    out.emit("seats", {"conversations": listed}, (conn,))
    return out


def reattach(svc: ChatService, staff: StaffRef, conn: Conn, conv_id: str,
             kx_pk: str) -> Outcome:
    """Seat ``conn`` (a console of ``staff``) in ``staff``'s seat of ``conv_id``
    under the new key ``kx_pk``. Checks everything before changing anything."""
    if staff.role != Role.COUNSELLOR.value:
        raise NotAllowed()
    conv = svc.conversations.get(conv_id)
    if conv is None or conv.state is State.ENDED:
        raise UnknownConversation()
    seat = next((m for m in conv.counsellors() if m.staff_id == staff.id), None)
    if seat is None:
        raise NotMember()  # another account's seat, or none: only its own account
    if any(m.kx_pk == kx_pk for m in conv.members.values()):
        # A new key is the point: the old one is lost, and a roster that gives
        # two members one key is refused by every page.
        raise BadPayload()

    out = Outcome()
    old = seat.conn
    if old is not None and old != conn:
        # Another console of this account held the seat: its keys no longer
        # match the roster, so its view of this conversation is over.
        out.emit("state", {"conversation": conv.id, "state": State.ENDED.value,
                           "reason": REATTACHED}, (old,))
        seats.detach(svc, old, conv.id, seat.id)
    undelivered = _drop_inbox(seat)
    secret, resume_hash = svc.draws.secret()
    seat.kx_pk = kx_pk
    seat.resume_hash = resume_hash
    seat.conn = conn
    seat.offline_since = None
    seats.attach(svc, conn, conv.id, seat.id)
    conv.epoch += 1
    if seat.away:
        out.merge(seats.presence_changed(svc, conv, seat, away=False))
    roster = {"epoch": conv.epoch, "members": [m.public() for m in conv.members.values()]}
    out.reply = {"conversation": conv.id, "member": seat.id, "resume": secret,
                 "state": conv.state.value, "pseudonym": conv.pseudonym, **roster,
                 "seq": seat.last_seq, "youth_online": conv.id not in svc.away}
    for m in conv.members.values():
        if m.id == seat.id or m.conn is None:
            continue
        push: dict[str, Any] = {"conversation": conv.id, "state": conv.state.value,
                                **roster, "reattached": seat.id}
        if m.id in undelivered:
            first, last = undelivered[m.id]
            push["undelivered"] = {"first": first, "last": last}
        out.emit("roster", push, (m.conn,))
    # Metadata only: who, which conversation, how many boxes could not be opened.
    out.audit(staff.username, "reattached", conv.pseudonym,
              count=sum(last - first + 1 for first, last in undelivered.values()))
    return out


def _drop_inbox(seat: Member) -> dict[str, tuple[int, int]]:
    """Drop every box buffered for the seat's old key; per sender, the first
    and last seq dropped (a sender's buffered seqs are one unbroken run:
    sends are accepted in seq order and acknowledged from the oldest)."""
    dropped = {sender: (queue[0].seq, queue[-1].seq)
               for sender, queue in seat.inbox.items() if queue}
    seat.inbox.clear()
    seat.inbox_count = 0
    return dropped


def counsellor_online(conv: Conversation) -> bool:
    """For a youth or liaison resuming: no counsellor seat is shown away (a
    ``presence`` push may have been missed meanwhile)."""
    return not any(m.away for m in conv.counsellors())
