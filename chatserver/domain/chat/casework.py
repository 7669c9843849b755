"""What a counsellor records about a conversation and where a return
passphrase goes: contact-reason tags (counted when the chat ends), referrals
(the slussfunktion), and the youth's page as the only target of an offered
return passphrase."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.domain.chat import seats
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Role, StaffRef, State
from chatserver.errors import NotAllowed, WrongState

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def tag(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str,
        reasons: frozenset[str]) -> Outcome:
    """Contact-reason tags for statistics; counted once, when the chat ends."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR:
        raise NotAllowed()
    conv.reasons = set(reasons)
    out = Outcome(reply={"reasons": sorted(conv.reasons)})
    out.audit(staff.username, "tagged", conv.pseudonym, count=len(conv.reasons))
    return out


def return_target(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str
                  ) -> tuple[Conn, str | None]:
    """Where a counsellor's offered return passphrase goes: to the youth's
    page only (the counsellor never sees it), and that page's language at
    start, which picks the words' list. The youth must be online."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
        raise NotAllowed()
    youth = conv.youth()
    if conv.state not in (State.ACTIVE, State.PAUSED) or youth is None or youth.conn is None:
        raise WrongState()
    return youth.conn, conv.profile.page_language


def refer(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str, partner: str,
          kind: str) -> Outcome:
    """Record a referral (the slussfunktion): metadata to audit and statistics."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.COUNSELLOR:
        raise NotAllowed()
    if chat.stats is not None:
        chat.stats.count("referral", kind)
        chat.stats.count("referral_partner", partner)
    out = Outcome()
    out.audit(staff.username, "referral", conv.pseudonym, partner=partner, role=kind)
    return out
