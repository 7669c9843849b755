"""The queue: a youth starts (or a returning youth chooses to wait for their
counsellor or take anyone), a counsellor claims one by name or takes the
next, and every place has an estimated wait (docs/design/queue.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatserver.domain.chat import deadlines, duty, seats
from chatserver.domain.chat.names import PROFESSIONAL_LANE, personal_lane
from chatserver.domain.chat.profile import StartProfile, count_profile
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Conversation, Member, Profile, Role, StaffRef, State
from chatserver.domain.stats import hour_band
from chatserver.errors import (
    AlreadyClaimed,
    AlreadyStarted,
    NobodyOnDuty,
    NotAllowed,
    QueueEmpty,
    QueueFull,
    UnknownConversation,
    WrongState,
    YouthOffline,
)
from chatserver.queue.model import GENERAL_LANE

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService

# Estimated seconds per place in the queue are smoothed over recent claims.
ETA_SMOOTHING = 0.2
ETA_MIN_SECS, ETA_MAX_SECS = 15.0, 1800.0


def start(chat: ChatService, conn: Conn, kx_pk: str, profile: StartProfile,
          returning_to: int | None = None) -> Outcome:
    if chat._by_conn.get(conn):
        raise AlreadyStarted()
    if not duty.is_open(chat):
        # Nothing is queued or kept when nobody can answer; only the unmet
        # demand is counted, by hour-of-week band (docs/statistics.md).
        if chat.stats is not None:
            chat.stats.count("unmet_closed", hour_band(
                chat.clock.now(), chat.settings.stats_timezone))
        info = duty.status(chat)
        raise NobodyOnDuty({"hours": info["hours"], "alternatives": info["alternatives"]})
    if len(chat.queue) >= chat.settings.queue_max:
        raise QueueFull()
    now = chat.clock.now()
    conv = Conversation(id=chat.draws.id(), pseudonym=chat.draws.pseudonym(), created_at=now,
                        profile=Profile(profile.language, profile.age_band,
                                        profile.topic, profile.urgent,
                                        profile.professional, profile.page_language))
    secret, resume_hash = chat.draws.secret()
    youth = Member(id=chat.draws.id(), role=Role.YOUTH, alias="", kx_pk=kx_pk,
                   resume_hash=resume_hash, conn=conn)
    conv.members[youth.id] = youth
    chat.conversations[conv.id] = conv
    seats.attach(chat, conn, conv.id, youth.id)
    returning = None
    if returning_to is not None:
        # A returning youth waits in their counsellor's personal lane, first
        # in it. If that counsellor is not on duty the youth chooses: wait
        # for them or anyone now (and learns nothing about their schedule).
        conv.returning_to = returning_to
        conv.lane = personal_lane(returning_to)
        conv.personal_since = now
        deadlines.schedule(chat, now + chat.settings.personal_wait_secs, "personal", conv.id,
                           "", now)
        returning = "queued" if duty.on_duty(chat, returning_to) else "choose"
    elif profile.professional:
        conv.lane = PROFESSIONAL_LANE
    chat.queue.add(conv.id, now, urgent=profile.urgent or returning_to is not None,
                   lane=conv.lane, tag=conv.profile.match_language())
    chat._queue_dirty = True
    count_profile(chat.stats, chat.settings, profile, returning=returning_to is not None)
    position, eta = place(chat, conv.id)
    conv.last_pushed = (position, eta, now)
    out = Outcome(reply={"conversation": conv.id, "member": youth.id, "resume": secret,
                         "position": position, "eta_secs": eta})
    if returning is not None:
        out.reply["returning"] = returning
    out.audit("youth", "conversation_start", conv.pseudonym, urgent=profile.urgent,
              role="professional" if profile.professional else "youth")
    return out


def choose(chat: ChatService, conn: Conn, conv_id: str, wait: bool) -> Outcome:
    """A returning youth's choice: keep waiting for their counsellor, or anyone."""
    conv, member = seats.membership(chat, conn, conv_id)
    if member.role is not Role.YOUTH or conv.returning_to is None or \
            not conv.lane.startswith("personal:") or conv.id not in chat.queue:
        raise WrongState()
    now = chat.clock.now()
    if wait:
        conv.personal_since = now
        deadlines.schedule(chat, now + chat.settings.personal_wait_secs, "personal", conv.id,
                           "", now)
    else:
        chat.queue.remove(conv.id)
        conv.lane, conv.personal_since = GENERAL_LANE, None
        chat.queue.add(conv.id, conv.created_at, urgent=conv.profile.urgent,
                       tag=conv.profile.match_language())
    chat._queue_dirty = True
    position, eta = place(chat, conv.id)
    conv.last_pushed = (position, eta, now)
    return Outcome(reply={"position": position, "eta_secs": eta})


def claim(chat: ChatService, staff: StaffRef, conn: Conn, conv_id: str | None, kx_pk: str,
          offline_ok: bool = False) -> Outcome:
    if staff.role != Role.COUNSELLOR.value:
        raise NotAllowed()
    c = duty.with_room(chat, staff)
    if conv_id is None:
        conv_id = _next_waiting(chat, staff.id, staff.languages)
    conv = chat.conversations.get(conv_id)
    if conv is None:
        raise UnknownConversation()
    if conv.lane.startswith("personal:") and conv.lane != personal_lane(staff.id) \
            and conv.id in chat.queue:
        raise NotAllowed()  # waiting for their own counsellor
    if conv.state is State.PAUSED and conv.id in chat.queue:
        raise WrongState()  # the youth is on the decoy screen; claim when back
    if conv.state is not State.WAITING or conv.id not in chat.queue:
        raise AlreadyClaimed()
    if conv.id in chat.away and not offline_ok:
        raise YouthOffline()  # the console asks the counsellor first

    now = chat.clock.now()
    waited = now - conv.created_at
    chat.queue.remove(conv.id)
    conv.lane, conv.personal_since = GENERAL_LANE, None
    chat._queue_dirty = True
    _observe_claim(chat, now)
    conv.state = State.ACTIVE
    out = seats.add_member(chat, conv, Role.COUNSELLOR, staff.alias, kx_pk, conn, staff.id)
    out.reply["youth_online"] = conv.id not in chat.away
    out.emit("duty", duty.duty_payload(c), tuple(c.conns))
    # Not whether the youth came back with a code: that would tie this
    # conversation to the counsellor's earlier return_issued entries
    # (docs/design/audit.md, "Returns leave no link").
    out.audit(staff.username, "claim", conv.pseudonym, waited_secs=int(waited))
    return out


def place(chat: ChatService, conv_id: str) -> tuple[int, int]:
    """A waiting conversation's position and estimated wait."""
    position = chat.queue.position(conv_id)
    return position, eta(chat, position)


def eta(chat: ChatService, position: int) -> int:
    # The smoothed interval between claims already reflects how many
    # counsellors are working, so a place costs one interval.
    return int(position * chat._secs_per_place)


def _observe_claim(chat: ChatService, now: float) -> None:
    if chat._last_claim_at is not None:
        gap = min(max(now - chat._last_claim_at, ETA_MIN_SECS), ETA_MAX_SECS)
        chat._secs_per_place += ETA_SMOOTHING * (gap - chat._secs_per_place)
    chat._last_claim_at = now


def _next_waiting(chat: ChatService, staff_id: int, languages: Sequence[str] = ()) -> str:
    # Their own returning youths first, then everyone, then professionals.
    # In general and professional: the oldest youth of the first waiting
    # one's priority whose language the counsellor speaks, else that first
    # one, so nobody waits forever because of language (docs/design/queue.md).
    own = personal_lane(staff_id)
    for lane in (own, GENERAL_LANE, PROFESSIONAL_LANE):
        for conv_id in chat.queue.iter_lane(lane):
            if chat.conversations[conv_id].state is State.WAITING and \
                    conv_id not in chat.away:  # never someone who is not there
                if lane == own or not languages:
                    return conv_id
                return _speaks(chat, lane, conv_id, languages) or conv_id
    raise QueueEmpty()


def _speaks(chat: ChatService, lane: str, head: str, languages: Sequence[str]) -> str | None:
    """The first waiting conversation of ``head``'s priority in ``lane``
    whose language is one of ``languages``; None if there is none."""
    priority = chat.queue.priority(head)
    best: tuple[float, str] | None = None
    for language in languages:
        for conv_id, p in chat.queue.iter_tagged(lane, language):
            if p != priority:
                if priority is not None and p > priority:
                    break
                continue  # more urgent but paused: head is the first waiting one
            if chat.conversations[conv_id].state is not State.WAITING or \
                    conv_id in chat.away:
                continue
            at = chat.queue.position(conv_id)
            if best is None or at < best[0]:
                best = (at, conv_id)
            break
    return None if best is None else best[1]
