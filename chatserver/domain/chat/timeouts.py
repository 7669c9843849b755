"""What each deadline does when it falls due (``tick``, every 0.5 s): a
pause, a personal wait, a transfer offer, an invite, a member's grace period,
the presence grace and a counsellor's duty. A deadline whose token no longer
matches (the member came back, the offer was answered) does nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.domain.chat import deadlines, duty, escalation, lifecycle, seats, transfers
from chatserver.domain.events import Outcome
from chatserver.domain.model import EndReason, State

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def tick(chat: ChatService) -> Outcome:
    """Process every deadline that has passed."""
    now = chat.clock.now()
    out = Outcome()
    for kind, conv_id, subject, token in deadlines.due(chat, now):
        if kind == "duty":
            duty.duty_timeout(chat, int(subject), token, out)
            continue
        conv = chat.conversations.get(conv_id)
        if conv is None:
            continue
        if kind == "pause" and conv.state is State.PAUSED and conv.paused_at == token:
            out.merge(lifecycle.end_conversation(chat, conv, EndReason.TIMED_OUT,
                                                 actor="system"))
        elif kind == "personal" and conv.personal_since == token and conv.id in chat.queue:
            # The wait for their own counsellor is over: offer the choice again.
            youth = conv.youth()
            if youth is not None and youth.conn is not None:
                out.emit("choose", {"conversation": conv.id}, (youth.conn,))
        elif kind == "transfer" and conv.transfer is not None and \
                conv.transfer.offered_at == token:
            out.merge(transfers.decline_transfer(chat, conv, reason="timed_out"))
        elif kind == "invite":
            escalation.expire_invite(chat, subject, conv.pseudonym, now, out)
        elif kind == "grace":
            member = conv.members.get(subject)
            if member is not None and member.offline_since == token:
                out.merge(lifecycle.member_timed_out(chat, conv, member))
        elif kind == "presence":
            member = conv.members.get(subject)
            if member is not None and member.conn is None and \
                    member.offline_since == token and not member.away:
                out.merge(seats.presence_changed(chat, conv, member, away=True))
    return out
