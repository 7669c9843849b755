"""Connections coming and going: a seat resumed on a new connection (every
unacknowledged box again, in arrival order), a transport that went away (its
places kept for the grace period), a whole node gone, and a staff console
connecting (its duty, its queue view, the seats it may take back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.crypto.tokens import equal
from chatserver.domain import presence, relay
from chatserver.domain.chat import deadlines, duty, queueing, reattach, seats, views
from chatserver.domain.chat.names import ROLE_NAMESPACE
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Counsellor, Role, StaffRef, State
from chatserver.errors import BadResume

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def has_conversation(chat: ChatService, conn: Conn) -> bool:
    return bool(chat._by_conn.get(conn))


def resume(chat: ChatService, conn: Conn, conv_id: str, member_id: str, secret: str,
           staff: StaffRef | None = None) -> Outcome:
    return resume_hashed(chat, conn, conv_id, member_id, chat._hash_resume(secret), staff)


def resume_hashed(chat: ChatService, conn: Conn, conv_id: str, member_id: str,
                  resume_hash: bytes, staff: StaffRef | None = None) -> Outcome:
    """``resume`` given the secret's keyed hash: on several nodes the log
    carries only the hash, the secret stays on the node that took the call."""
    conv = seats.conversation(chat, conv_id)
    member = conv.members.get(member_id)
    if member is None or not equal(member.resume_hash, resume_hash):
        raise BadResume()
    if (staff is None) != (member.staff_id is None) or (
            staff is not None and staff.id != member.staff_id):
        raise BadResume()  # a staff seat is resumed only by the same account
    if conn.namespace != ROLE_NAMESPACE[member.role]:
        raise BadResume()  # a seat is resumed only from its own kind of page
    if member.conn is not None and member.conn != conn:
        seats.detach(chat, member.conn, conv.id, member.id)
    member.conn = conn
    member.offline_since = None
    seats.attach(chat, conn, conv.id, member.id)
    out = Outcome(reply={"state": conv.state.value, "role": member.role.value,
                         **seats.roster(conv)})
    if member.away:
        out.merge(seats.presence_changed(chat, conv, member, away=False))
    if member.role is not Role.YOUTH:
        # A console back from a drop may have missed a presence push.
        out.reply["youth_online"] = conv.id not in chat.away
    if member.role is not Role.COUNSELLOR:
        out.reply["counsellor_online"] = reattach.counsellor_online(conv)
    if conv.state is State.WAITING or (conv.state is State.PAUSED and
                                        conv.id in chat.queue):
        position, eta = queueing.place(chat, conv.id)
        out.reply.update(position=position, eta_secs=eta)
    for payload in relay.pending(member):
        out.emit("box", payload, (conn,))
    return out


def disconnect(chat: ChatService, conn: Conn) -> Outcome:
    """A transport went away: keep every place it held for the grace period."""
    now = chat.clock.now()
    # Sorted: a set's order differs between processes, and every node
    # applying this must schedule the same deadlines in the same order.
    for conv_id, member_id in sorted(chat._by_conn.pop(conn, set())):
        conv = chat.conversations.get(conv_id)
        if conv is not None and member_id in conv.requests:
            del conv.requests[member_id]  # a waiting liaison went away
            continue
        member = conv.members.get(member_id) if conv else None
        if conv is None or member is None or member.conn != conn:
            continue
        member.conn = None
        member.offline_since = now
        deadlines.schedule(chat, now + chat.settings.grace_secs, "grace", conv_id, member_id,
                           now)
        if presence.watched(member):
            deadlines.schedule(chat, now + chat.settings.presence_grace_secs, "presence",
                               conv_id, member_id, now)
    for counsellor in chat.counsellors.values():
        if conn in counsellor.conns:
            counsellor.conns.discard(conn)
            chat.staff_views.forget(conn)
            counsellor.handover_keys.pop(conn, None)
            if not counsellor.conns:
                counsellor.offline_since = now
                deadlines.schedule(chat, now + chat.settings.grace_secs, "duty", "",
                                   str(counsellor.staff.id), now)
            chat._queue_dirty = True
    return Outcome()


def disconnect_node(chat: ChatService, node_id: str) -> Outcome:
    """Every connection of a node that is gone (killed, restarted) goes
    away at once: each is treated as a dropped transport, so its places
    are kept for the grace period while its clients reconnect to another
    node and resume (chatserver/live/)."""
    prefix = node_id + "."
    conns = {c for c in chat._by_conn if c.sid.startswith(prefix)}
    for counsellor in chat.counsellors.values():
        conns.update(c for c in counsellor.conns if c.sid.startswith(prefix))
    out = Outcome()
    for conn in sorted(conns, key=lambda c: (c.namespace, c.sid)):
        out.merge(disconnect(chat, conn))
    return out


def staff_connected(chat: ChatService, staff: StaffRef, conn: Conn) -> Outcome:
    c = chat.counsellors.get(staff.id)
    if c is None:
        c = chat.counsellors[staff.id] = Counsellor(staff)
    else:
        c.staff = staff  # alias/capacity may have changed
    c.conns.add(conn)
    c.offline_since = None
    out = Outcome()
    out.emit("duty", duty.duty_payload(c), (conn,))
    if c.on_duty:
        out.emit("queue", views.staff_snapshot(chat, c, (conn,)), (conn,))
    out.merge(reattach.seats_event(chat, c, conn))  # a reloaded console takes them back
    return out
