"""How a conversation pauses and ends: the youth's decoy screen (pause), the
youth leaving, the counsellor ending it, and a member whose grace period ran
out (a youth ends it; a staff seat goes and, with no counsellor left, the
youth queues again, first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.domain import relay
from chatserver.domain.chat import deadlines, duty, operator, seats
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Conversation, EndReason, Member, Role, StaffRef, State
from chatserver.domain.stats import hour_band
from chatserver.errors import NotAllowed, WrongState

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def pause(chat: ChatService, conn: Conn, conv_id: str, paused: bool) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.YOUTH:
        raise NotAllowed()
    now = chat.clock.now()
    # Only a waiting youth's pause shows in the counsellors' queue view; an
    # active conversation's pause is news for its members alone.
    in_queue = State.WAITING in (conv.state, conv.paused_from)
    if paused:
        if conv.state not in (State.WAITING, State.ACTIVE):
            raise WrongState()
        conv.paused_from, conv.state, conv.paused_at = conv.state, State.PAUSED, now
        deadlines.schedule(chat, now + chat.settings.pause_max_secs, "pause", conv.id, "", now)
    else:
        if conv.state is not State.PAUSED or conv.paused_from is None:
            raise WrongState()
        conv.state, conv.paused_from, conv.paused_at = conv.paused_from, None, None
    if in_queue:
        chat._queue_dirty = True
    out = Outcome(reply={"state": conv.state.value})
    out.emit("state", {"conversation": conv.id, "state": conv.state.value},
             conv.online(exclude=member.id))
    return out


def leave(chat: ChatService, conn: Conn, conv_id: str, reason: str) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.YOUTH:
        raise NotAllowed()
    why = {"panic": EndReason.PANIC_EXIT,
           "closed": EndReason.PAGE_CLOSED}.get(reason, EndReason.YOUTH_LEFT)
    return end_conversation(chat, conv, why, actor="youth")


def end(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
        raise NotAllowed()
    return end_conversation(chat, conv, EndReason.DONE, actor=staff.username)


def end_conversation(chat: ChatService, conv: Conversation, reason: EndReason,
                     actor: str) -> Outcome:
    was_waiting = conv.id in chat.queue
    recipients = conv.online()
    # Whoever was on the way in is turned away; invites die with the chat.
    recipients_declined = [r.conn for r in conv.requests.values()]
    conv.requests.clear()
    for invite_id in [i for i, inv in chat.invites.items() if inv.conversation == conv.id]:
        del chat.invites[invite_id]
    conv.state = State.ENDED
    conv.ended_reason = reason
    chat.queue.remove(conv.id)
    chat.away.discard(conv.id)
    chat._queue_dirty = True
    relay.drop_all(conv)
    for m in conv.members.values():
        if m.conn is not None:
            seats.detach(chat, m.conn, conv.id, m.id)
        if m.staff_id is not None and m.staff_id in chat.counsellors:
            chat.counsellors[m.staff_id].active.discard(conv.id)
    del chat.conversations[conv.id]
    now = chat.clock.now()
    if was_waiting:
        operator.note_abandoned(chat, now)
    out = Outcome(reply={})
    out.emit("state", {"conversation": conv.id, "state": State.ENDED.value,
                       "reason": reason.value}, recipients)
    out.emit("join_declined", {"conversation": conv.id}, recipients_declined)
    for m in conv.staff_members():
        c = chat.counsellors.get(m.staff_id) if m.staff_id is not None else None
        if c is not None:
            out.emit("duty", duty.duty_payload(c), tuple(c.conns))
    out.audit(actor, "conversation_end", conv.pseudonym, reason=reason.value,
              count=conv.message_count, waiting=was_waiting)
    if chat.stats is not None:  # after every state change: counting never blocks an end
        for tag in conv.reasons:
            chat.stats.count("reason", tag)
        if was_waiting and reason is not EndReason.DONE:
            # Demand not met: left the queue; the band of when they asked.
            chat.stats.count("unmet_left", hour_band(
                conv.created_at, chat.settings.stats_timezone))
    return out


def member_timed_out(chat: ChatService, conv: Conversation, member: Member) -> Outcome:
    if member.role is Role.YOUTH:
        return end_conversation(chat, conv, EndReason.TIMED_OUT, actor="system")
    # A staff page died: the youth is never dropped. The seat goes and the
    # epoch moves on; with no counsellor left, a liaison cannot stay alone
    # with the youth, and the youth queues again, first.
    out = seats.remove_member(chat, conv, member, EndReason.TIMED_OUT)
    out.audit("system", "staff_timed_out", conv.pseudonym, role=member.role.value)
    if not conv.counsellors():
        for other in conv.staff_members():
            out.merge(seats.remove_member(chat, conv, other, EndReason.TIMED_OUT))
        conv.transfer = None
        if conv.state is State.PAUSED:
            conv.paused_from = State.WAITING
        else:
            conv.state = State.WAITING
        chat.queue.add(conv.id, conv.created_at, urgent=True,
                       tag=conv.profile.match_language())
        chat._queue_dirty = True
        out.emit("state", {"conversation": conv.id, "state": conv.state.value},
                 conv.online())
    return out
