"""Warm transfers (docs/design/invites.md): the colleagues one could hand a
conversation to, the offer (with an optional sealed handover,
domain/handover.py), the answer, and a decline or time-out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.domain import handover
from chatserver.domain.chat import deadlines, duty, seats
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import (
    Conversation,
    EndReason,
    HandoverBox,
    Role,
    StaffRef,
    State,
    Transfer,
)
from chatserver.errors import (
    AtCapacity,
    BadPayload,
    NotAllowed,
    NotOnDuty,
    TransferPending,
    WrongState,
)

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def colleagues(chat: ChatService, staff: StaffRef) -> Outcome:
    """On-duty counsellors one could hand a conversation to."""
    return Outcome(reply={"colleagues": [
        {"staff": c.staff.id, "alias": c.staff.alias, "load": c.load,
         "capacity": c.staff.capacity, "handover_pk": handover.current_key(c)}
        for c in chat.counsellors.values()
        if c.staff.id != staff.id and c.on_duty and c.conns
    ]})


def offer_transfer(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str, to_staff: int,
                   box: HandoverBox | None = None) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
        raise NotAllowed()
    if conv.state not in (State.ACTIVE, State.PAUSED):
        raise WrongState()
    if conv.transfer is not None:
        raise TransferPending()
    target = chat.counsellors.get(to_staff)
    if target is None or target.staff.id == staff.id or not (target.on_duty and target.conns):
        raise NotOnDuty()
    if target.load >= target.staff.capacity:
        raise AtCapacity()
    if any(m.staff_id == to_staff for m in conv.members.values()):
        raise WrongState()
    if len(conv.members) >= chat.settings.max_members:
        raise WrongState()  # the receiver joins before the sender leaves
    if box is not None:
        handover.check(chat.counsellors[staff.id], conn, target, box)
    now = chat.clock.now()
    conv.transfer = Transfer(staff.id, to_staff, now, box)
    deadlines.schedule(chat, now + chat.settings.transfer_offer_secs, "transfer", conv.id, "",
                       now)
    out = Outcome(reply={"offered": True})
    out.emit("transfer_offer", {
        "conversation": conv.id, "pseudonym": conv.pseudonym, "from_alias": staff.alias,
        "language": conv.profile.language, "age_band": conv.profile.age_band,
        "topic": conv.profile.topic, "state": conv.state.value,
        "handover": box is not None,
    }, tuple(target.conns))
    # That a handover came with it, never what it holds.
    out.audit(staff.username, "transfer_offered", conv.pseudonym, target=target.staff.username,
              handover=box is not None)
    return out


def answer_transfer(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str, accept: bool,
                    kx_pk: str | None) -> Outcome:
    conv = seats.conversation(chat, conv_id)
    offer = conv.transfer
    if offer is None or offer.to_staff != staff.id:
        raise WrongState()
    if not accept:
        return decline_transfer(chat, conv, reason="declined", actor=staff.username)
    c = duty.with_room(chat, staff)
    if kx_pk is None:
        raise BadPayload()
    conv.transfer = None
    # Warm: the new counsellor joins first (the youth sees them arrive)...
    out = seats.add_member(chat, conv, Role.COUNSELLOR, staff.alias, kx_pk, conn, staff.id)
    out.emit("duty", duty.duty_payload(c), tuple(c.conns))
    # ...then the one who handed over leaves.
    for old in [m for m in conv.counsellors() if m.staff_id == offer.from_staff]:
        out.merge(seats.remove_member(chat, conv, old, EndReason.TRANSFERRED))
    out.reply.update(seats.roster(conv))
    out.reply["youth_online"] = conv.id not in chat.away
    if offer.handover is not None:
        out.reply["handover"] = offer.handover.public()
        offer.handover = None
    out.audit(staff.username, "transfer_accepted", conv.pseudonym)
    return out


def decline_transfer(chat: ChatService, conv: Conversation, reason: str,
                     actor: str = "system") -> Outcome:
    """Nothing changes for the youth; the offering counsellor is told."""
    offer, conv.transfer = conv.transfer, None
    out = Outcome(reply={})
    if offer is None:
        return out
    offer.handover = None  # the ciphertext goes at once (nothing else holds it)
    sender = chat.counsellors.get(offer.from_staff)
    if sender is not None:
        out.emit("transfer_declined", {"conversation": conv.id, "reason": reason},
                 tuple(sender.conns))
    out.audit(actor, "transfer_declined", conv.pseudonym, reason=reason)
    return out


def register_handover_key(chat: ChatService, staff: StaffRef, conn: Conn,
                          kx_pk: str) -> Outcome:
    """A console's handover public key (domain/handover.py)."""
    c = chat.counsellors.get(staff.id)
    if staff.role != Role.COUNSELLOR.value or c is None:
        raise NotAllowed()
    handover.register(c, conn, kx_pk, chat.counsellors.values())
    return Outcome()
