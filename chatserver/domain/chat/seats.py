"""Members' seats: finding a caller's seat, which connection holds which
seat, seating and unseating members (each moves the epoch on), and whether a
seat is shown online (domain/presence.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatserver.domain import presence
from chatserver.domain.chat import duty
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Conversation, EndReason, Member, Role, State
from chatserver.errors import NotMember, UnknownConversation

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def conversation(chat: ChatService, conv_id: str) -> Conversation:
    conv = chat.conversations.get(conv_id)
    if conv is None:
        raise UnknownConversation()
    return conv


def membership(chat: ChatService, conn: Conn, conv_id: str) -> tuple[Conversation, Member]:
    """The conversation and the seat ``conn`` holds in it."""
    conv = conversation(chat, conv_id)
    for m in conv.members.values():
        if m.conn == conn:
            return conv, m
    raise NotMember()


def attach(chat: ChatService, conn: Conn, conv_id: str, seat_id: str) -> None:
    """Remember that ``conn`` holds a seat (or a liaison's join request, so that
    a dropped connection withdraws it: connections.disconnect)."""
    chat._by_conn.setdefault(conn, set()).add((conv_id, seat_id))


def detach(chat: ChatService, conn: Conn, conv_id: str, member_id: str) -> None:
    held = chat._by_conn.get(conn)
    if held is not None:
        held.discard((conv_id, member_id))
        if not held:
            del chat._by_conn[conn]


def roster(conv: Conversation) -> dict[str, Any]:
    return {"epoch": conv.epoch, "members": [m.public() for m in conv.members.values()]}


def add_member(chat: ChatService, conv: Conversation, role: Role, alias: str, kx_pk: str,
               conn: Conn, staff_id: int | None) -> Outcome:
    """Seat a new member: epoch +1, roster to the others, the seat in the reply."""
    secret, resume_hash = chat.draws.secret()
    member = Member(id=chat.draws.id(), role=role, alias=alias, kx_pk=kx_pk,
                    resume_hash=resume_hash, staff_id=staff_id, conn=conn)
    conv.members[member.id] = member
    conv.epoch += 1
    if staff_id is not None and staff_id in chat.counsellors:
        chat.counsellors[staff_id].active.add(conv.id)
    attach(chat, conn, conv.id, member.id)
    seated = roster(conv)
    out = Outcome(reply={"conversation": conv.id, "member": member.id, "resume": secret,
                         "state": conv.state.value, "pseudonym": conv.pseudonym, **seated})
    out.emit("roster", {"conversation": conv.id, "state": conv.state.value, **seated},
             conv.online(exclude=member.id))
    return out


def remove_member(chat: ChatService, conv: Conversation, member: Member,
                  reason: EndReason) -> Outcome:
    """Unseat a member: epoch +1, the roster to those left, ``ended`` to the one
    who goes (their view of the conversation is over; it goes on for others)."""
    out = Outcome()
    if member.conn is not None:
        out.emit("state", {"conversation": conv.id, "state": State.ENDED.value,
                           "reason": reason.value}, (member.conn,))
        detach(chat, member.conn, conv.id, member.id)
    del conv.members[member.id]
    if member.staff_id is not None and member.staff_id in chat.counsellors:
        c = chat.counsellors[member.staff_id]
        c.active.discard(conv.id)
        out.emit("duty", duty.duty_payload(c), tuple(c.conns))
    conv.epoch += 1
    left = roster(conv)
    out.emit("roster", {"conversation": conv.id, "state": conv.state.value, **left},
             conv.online())
    return out


def presence_changed(chat: ChatService, conv: Conversation, member: Member,
                     away: bool) -> Outcome:
    out = presence.mark_away(conv, member) if away else presence.mark_back(conv, member)
    if member.role is not Role.YOUTH:
        return out  # a counsellor's seat: shown to the others, not in the queue
    if away:
        chat.away.add(conv.id)
    else:
        chat.away.discard(conv.id)
    if conv.id in chat.queue:
        chat._queue_dirty = True  # the queue shows them apart
    return out
