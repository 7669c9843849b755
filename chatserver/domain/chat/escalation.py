"""Liaisons (docs/design/invites.md): a counsellor's invite, a liaison
presenting it, the counsellor admitting the request, the youth's consent,
and a liaison removed or leaving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.domain.chat import deadlines, seats
from chatserver.domain.clock import to_ms
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import (
    Conversation,
    EndReason,
    Invite,
    JoinRequest,
    Role,
    StaffRef,
    State,
)
from chatserver.errors import BadInvite, NotAllowed, WrongState

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService

# Invites outstanding per conversation: room for a police and a health liaison
# and one retry; more would only be links lying about.
MAX_INVITES_PER_CONVERSATION = 3


def create_invite(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str,
                  invite_id: str, role: str) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR:
        raise NotAllowed()
    if conv.state not in (State.ACTIVE, State.PAUSED):
        raise WrongState()
    pending = sum(1 for i in chat.invites.values() if i.conversation == conv.id)
    if pending >= MAX_INVITES_PER_CONVERSATION or invite_id in chat.invites:
        raise WrongState()
    now = chat.clock.now()
    expires = now + chat.settings.invite_ttl_secs
    chat.invites[invite_id] = Invite(invite_id, conv.id, role, expires, staff.id)
    deadlines.schedule(chat, expires, "invite", conv.id, invite_id, now)
    out = Outcome(reply={"expires_at": to_ms(expires)})
    out.audit(staff.username, "invite_created", conv.pseudonym, role=role)
    return out


def join(chat: ChatService, conn: Conn, invite_id: str, kx_pk: str, mac: str) -> Outcome:
    """A liaison presents an invite. Unknown, used, expired and revoked
    invites get one answer; a valid one is used up at once."""
    invite = chat.invites.get(invite_id)
    if invite is None or invite.expires_at <= chat.clock.now():
        raise BadInvite()
    conv = chat.conversations.get(invite.conversation)
    if conv is None or conv.state not in (State.ACTIVE, State.PAUSED):
        raise BadInvite()
    if len(conv.members) + len(conv.requests) >= chat.settings.max_members:
        raise WrongState()
    del chat.invites[invite_id]
    request = JoinRequest(chat.draws.id(), invite.role, kx_pk, mac, conn)
    conv.requests[request.id] = request
    # A waiting liaison is not a member; remembering the pair lets a dropped
    # connection withdraw the request (connections.disconnect).
    seats.attach(chat, conn, conv.id, request.id)
    out = Outcome(reply={"conversation": conv.id, "request": request.id,
                         "role": invite.role})
    out.emit("join_request", {"conversation": conv.id, "request": request.id,
                              "role": invite.role, "kx_pk": kx_pk, "mac": mac},
             [m.conn for m in conv.counsellors() if m.conn is not None])
    out.audit("liaison", "invite_used", conv.pseudonym, role=invite.role)
    return out


def expire_invite(chat: ChatService, invite_id: str, pseudonym: str, now: float,
                  out: Outcome) -> None:
    """An invite's deadline: gone unless it was used or revoked meanwhile."""
    invite = chat.invites.get(invite_id)
    if invite is not None and invite.expires_at <= now:
        del chat.invites[invite_id]
        out.audit("system", "invite_expired", pseudonym, role=invite.role)


def _request(chat: ChatService, conn: Conn, conv_id: str, role: Role, request_id: str,
             state: str) -> tuple[Conversation, JoinRequest]:
    """The join request a member in ``role`` may answer now (``state``)."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not role:
        raise NotAllowed()
    request = conv.requests.get(request_id)
    if request is None or request.state != state:
        raise WrongState()
    return conv, request


def admit(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str, request_id: str,
          accept: bool) -> Outcome:
    """The counsellor (whose page checked the MAC) lets the request on to
    the youth, or turns it away."""
    conv, request = _request(chat, conn, conv_id, Role.COUNSELLOR, request_id, "waiting")
    out = Outcome(reply={})
    if not accept:
        del conv.requests[request_id]
        out.emit("join_declined", {"conversation": conv.id}, (request.conn,))
        out.audit(staff.username, "liaison_refused", conv.pseudonym, role=request.role)
        return out
    request.state = "consent"
    youth = conv.youth()
    if youth is not None and youth.conn is not None:
        out.emit("consent_request", {"conversation": conv.id, "request": request.id,
                                     "role": request.role, "kx_pk": request.kx_pk},
                 (youth.conn,))
    out.audit(staff.username, "liaison_admitted", conv.pseudonym, role=request.role)
    return out


def consent(chat: ChatService, conn: Conn, conv_id: str, request_id: str,
            accept: bool) -> Outcome:
    """Only the youth lets a liaison in."""
    conv, request = _request(chat, conn, conv_id, Role.YOUTH, request_id, "consent")
    if len(conv.members) >= chat.settings.max_members:
        raise WrongState()
    del conv.requests[request_id]
    if not accept:
        out = Outcome(reply={})
        out.emit("join_declined", {"conversation": conv.id}, (request.conn,))
        out.emit("consent_declined", {"conversation": conv.id, "request": request_id},
                 [m.conn for m in conv.counsellors() if m.conn is not None])
        out.audit("youth", "liaison_declined", conv.pseudonym, role=request.role)
        return out
    added = seats.add_member(chat, conv, Role.LIAISON, request.role, request.kx_pk,
                             request.conn, None)
    # The liaison's seat (member id, resume secret, roster) goes to the liaison.
    out = Outcome(reply={**seats.roster(conv)})
    out.emit("joined", added.reply, (request.conn,))
    out.emits.extend(e for e in added.emits if request.conn not in e.to)
    out.audit("youth", "liaison_joined", conv.pseudonym, role=request.role)
    return out


def remove_liaison(chat: ChatService, conn: Conn, conv_id: str, member_id: str) -> Outcome:
    """The youth or a counsellor removes a liaison, at any time."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role not in (Role.YOUTH, Role.COUNSELLOR):
        raise NotAllowed()
    target = conv.members.get(member_id)
    if target is None or target.role is not Role.LIAISON:
        raise NotAllowed()
    out = seats.remove_member(chat, conv, target, EndReason.REMOVED)
    actor = "youth" if member.role is Role.YOUTH else (
        chat.counsellors[member.staff_id].staff.username
        if member.staff_id in chat.counsellors else "staff")
    out.audit(actor, "member_removed", conv.pseudonym, role=target.alias)
    return out


def liaison_leave(chat: ChatService, conn: Conn, conv_id: str) -> Outcome:
    conv = seats.conversation(chat, conv_id)
    for req_id, request in list(conv.requests.items()):
        if request.conn == conn:  # left while still waiting to be let in
            del conv.requests[req_id]
            seats.detach(chat, conn, conv.id, req_id)
            return Outcome()
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.LIAISON:
        raise NotAllowed()
    out = seats.remove_member(chat, conv, member, EndReason.LEFT)
    out.audit("liaison", "liaison_left", conv.pseudonym)
    return out
