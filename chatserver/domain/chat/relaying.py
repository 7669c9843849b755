"""Relaying between members: a send (domain/relay.py checks and buffers the
boxes), a cumulative acknowledgement, and typing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatserver.domain import relay
from chatserver.domain.chat import seats
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import State
from chatserver.errors import NotMember, WrongState

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def send(chat: ChatService, conn: Conn, conv_id: str, epoch: int, seq: int,
         boxes: Sequence[relay.BoxIn]) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    out = relay.relay(conv, member, epoch, seq, boxes, chat.settings.backlog_max_boxes)
    chat.relayed += 1
    return out


def delivered(chat: ChatService, conn: Conn, conv_id: str, sender_id: str, seq: int) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if sender_id not in conv.members or sender_id == member.id:
        raise NotMember()
    relay.acknowledge(member, sender_id, seq)
    return Outcome()


def typing(chat: ChatService, conn: Conn, conv_id: str, active: bool) -> Outcome:
    conv, member = seats.membership(chat, conn, conv_id)
    if conv.state is State.ENDED:
        raise WrongState()
    out = Outcome()
    out.emit("typing", {"conversation": conv.id, "from": member.id, "active": active},
             conv.online(exclude=member.id))
    return out
