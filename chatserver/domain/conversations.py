"""Conversations, the queue and counsellor duty: the chat's whole live state.

Design: docs/design/conversations.md and docs/design/queue.md. Everything is
in memory and synchronous: a call checks, changes state and returns an
``Outcome`` without awaiting, so under asyncio two claims for one conversation
can never interleave (exactly one winner). Time comes from the injected clock;
timers are deadlines processed by ``tick``.
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chatserver.crypto.tokens import equal, keyed_hash, new_id, new_pseudonym, new_secret
from chatserver.domain import handover, presence, relay
from chatserver.domain.clock import Clock, to_ms
from chatserver.domain.events import Conn, Emit, Outcome
from chatserver.domain.model import (
    Conversation,
    Counsellor,
    EndReason,
    HandoverBox,
    Invite,
    JoinRequest,
    Member,
    Profile,
    Role,
    StaffRef,
    State,
    Transfer,
)
from chatserver.domain.staff_views import AT_CAPACITY, SHARED, StaffViews
from chatserver.domain.stats import hour_band
from chatserver.errors import (
    AlreadyClaimed,
    AlreadyStarted,
    AtCapacity,
    BadInvite,
    BadPayload,
    BadResume,
    NobodyOnDuty,
    NotAllowed,
    NotMember,
    NotOnDuty,
    QueueEmpty,
    QueueFull,
    TransferPending,
    UnknownConversation,
    WrongState,
    YouthOffline,
)
from chatserver.queue.model import GENERAL_LANE, WaitingQueue
from chatserver.queue.view import View
from chatserver.settings import Settings

YOUTH_NS = "/youth"
LIAISON_NS = "/liaison"
PROFESSIONAL_LANE = "professional"
STAFF_NS = "/staff"
ROLE_NAMESPACE = {Role.YOUTH: YOUTH_NS, Role.COUNSELLOR: STAFF_NS, Role.LIAISON: LIAISON_NS}

# A queue position this close to the front is pushed at once; up to
# NEAR_FRONT_OF_QUEUE at most every queue_position_min_interval_secs, and
# further back at most every queue_position_far_interval_secs: a claim shifts
# everyone, and at 10 000 waiting a push per youth every 5 s cost more than the
# chat itself (docs/performance.md, "National evening peak").
FRONT_OF_QUEUE = 3
NEAR_FRONT_OF_QUEUE = 20
# Far-back places a round looks at, per lane, from a cursor that goes round
# the far part of the queue: a round costs O(log n + this) per lane, not O(n)
# (at 10 000 waiting, scanning everyone each second stalled the loop ~10 ms),
# and youths who arrived together fall due in different rounds instead of all
# at once. At 10 000 waiting each far youth is looked at every ~20 s, so its
# pushes come every ~40 s (30 s at the least).
FAR_SCAN_PER_ROUND = 500
# Estimated seconds per place in the queue are smoothed over recent claims.
ETA_SMOOTHING = 0.2
ETA_MIN_SECS, ETA_MAX_SECS = 15.0, 1800.0
OPS_HISTORY_SAMPLES = 360  # 6 hours of 1-minute samples
# Invites outstanding per conversation: room for a police and a health liaison
# and one retry; more would only be links lying about.
MAX_INVITES_PER_CONVERSATION = 3


def personal_lane(staff_id: int) -> str:
    return f"personal:{staff_id}"


class StatsSink(Protocol):
    def count(self, dimension: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StartProfile:
    language: str | None = None
    age_band: str | None = None
    gender: str | None = None
    municipality: str | None = None
    topic: str | None = None
    urgent: bool = False
    professional: bool = False  # the consultation lane, for professionals
    workplace_municipality: str | None = None  # professionals only, for statistics
    profession: str | None = None  # professionals only, for statistics
    district: str | None = None  # youths in a municipality with districts, for statistics
    page_language: str | None = None  # the youth page's language (a catalog code)


class ChatService:
    def __init__(self, settings: Settings, clock: Clock, stats: StatsSink | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.stats = stats
        self._resume_key = settings.require_secrets().session_key
        self.conversations: dict[str, Conversation] = {}
        self.queue = WaitingQueue()
        self.counsellors: dict[int, Counsellor] = {}
        self._by_conn: dict[Conn, set[tuple[str, str]]] = {}
        self._deadlines: list[tuple[float, int, str, str, str, float]] = []
        self._deadline_counter = itertools.count()
        self._secs_per_place = float(settings.eta_secs_per_position)
        self._last_claim_at: float | None = None
        self._queue_dirty = True
        self._queue_version = 0  # counted up by queue_updates for each new state
        self._push_owed = False  # a push was held back by a gap or budget
        # lane -> (next far-back place to look at, far places not looked at since
        # the queue last changed); only lanes that have a far-back part
        self._far_scan: dict[str, tuple[int, int]] = {}
        self._abandoned: dict[str, int] = {}  # UTC day -> conversations left while waiting
        self._history: deque[tuple[int, int]] = deque(maxlen=OPS_HISTORY_SAMPLES)
        self.relayed = 0  # sends accepted since start (a metric, never per conversation)
        self.invites: dict[str, Invite] = {}  # invite id -> invite (escalation.py)
        # Conversations whose youth is shown as offline (domain/presence.py).
        self.away: set[str] = set()
        # The queue view each console holds (domain/staff_views.py).
        self.staff_views = StaffViews(deltas=settings.queue_deltas)

    # ----------------------------------------------------------------- youth

    def status(self) -> dict[str, Any]:
        svc = self.settings.service
        return {
            "open": self.is_open(),
            "hours": _plain(svc.get("hours", {})),
            "alternatives": _plain(svc.get("alternatives", ())),
            "emergency": svc.get("emergency", "112"),
            "profile": _plain(svc.get("profile", {})),
        }

    def is_open(self) -> bool:
        return any(c.on_duty and c.conns for c in self.counsellors.values())

    def has_conversation(self, conn: Conn) -> bool:
        return bool(self._by_conn.get(conn))

    def start(self, conn: Conn, kx_pk: str, profile: StartProfile,
              returning_to: int | None = None) -> Outcome:
        if self._by_conn.get(conn):
            raise AlreadyStarted()
        if not self.is_open():
            # Nothing is queued or kept when nobody can answer; only the unmet
            # demand is counted, by hour-of-week band (docs/statistics.md).
            if self.stats is not None:
                self.stats.count("unmet_closed", hour_band(
                    self.clock.now(), self.settings.stats_timezone))
            info = self.status()
            raise NobodyOnDuty({"hours": info["hours"], "alternatives": info["alternatives"]})
        if len(self.queue) >= self.settings.queue_max:
            raise QueueFull()
        now = self.clock.now()
        conv = Conversation(id=new_id(), pseudonym=new_pseudonym(), created_at=now,
                            profile=Profile(profile.language, profile.age_band,
                                            profile.topic, profile.urgent,
                                            profile.professional, profile.page_language))
        secret = new_secret()
        youth = Member(id=new_id(), role=Role.YOUTH, alias="", kx_pk=kx_pk,
                       resume_hash=self._hash_resume(secret), conn=conn)
        conv.members[youth.id] = youth
        self.conversations[conv.id] = conv
        self._attach(conn, conv.id, youth.id)
        returning = None
        if returning_to is not None:
            # A returning youth waits in their counsellor's personal lane, first
            # in it. If that counsellor is not on duty the youth chooses: wait
            # for them or anyone now (and learns nothing about their schedule).
            conv.returning_to = returning_to
            conv.lane = personal_lane(returning_to)
            conv.personal_since = now
            self._schedule(now + self.settings.personal_wait_secs, "personal", conv.id, "", now)
            returning = "queued" if self._on_duty(returning_to) else "choose"
        elif profile.professional:
            conv.lane = PROFESSIONAL_LANE
        self.queue.add(conv.id, now, urgent=profile.urgent or returning_to is not None,
                       lane=conv.lane, tag=conv.profile.match_language())
        self._queue_dirty = True
        self._count_profile(profile, returning=returning_to is not None)
        position, eta = self._place(conv.id)
        conv.last_pushed = (position, eta, now)
        out = Outcome(reply={"conversation": conv.id, "member": youth.id, "resume": secret,
                             "position": position, "eta_secs": eta})
        if returning is not None:
            out.reply["returning"] = returning
        out.audit("youth", "conversation_start", conv.pseudonym, urgent=profile.urgent,
                  role="professional" if profile.professional else "youth")
        return out

    def choose(self, conn: Conn, conv_id: str, wait: bool) -> Outcome:
        """A returning youth's choice: keep waiting for their counsellor, or anyone."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.YOUTH or conv.returning_to is None or \
                not conv.lane.startswith("personal:") or conv.id not in self.queue:
            raise WrongState()
        now = self.clock.now()
        if wait:
            conv.personal_since = now
            self._schedule(now + self.settings.personal_wait_secs, "personal", conv.id, "", now)
        else:
            self.queue.remove(conv.id)
            conv.lane, conv.personal_since = GENERAL_LANE, None
            self.queue.add(conv.id, conv.created_at, urgent=conv.profile.urgent,
                           tag=conv.profile.match_language())
        self._queue_dirty = True
        position, eta = self._place(conv.id)
        conv.last_pushed = (position, eta, now)
        return Outcome(reply={"position": position, "eta_secs": eta})

    def _on_duty(self, staff_id: int) -> bool:
        c = self.counsellors.get(staff_id)
        return c is not None and c.on_duty and bool(c.conns)

    def resume(self, conn: Conn, conv_id: str, member_id: str, secret: str,
               staff: StaffRef | None = None) -> Outcome:
        conv = self._conversation(conv_id)
        member = conv.members.get(member_id)
        if member is None or not equal(member.resume_hash, self._hash_resume(secret)):
            raise BadResume()
        if (staff is None) != (member.staff_id is None) or (
                staff is not None and staff.id != member.staff_id):
            raise BadResume()  # a staff seat is resumed only by the same account
        if conn.namespace != ROLE_NAMESPACE[member.role]:
            raise BadResume()  # a seat is resumed only from its own kind of page
        if member.conn is not None and member.conn != conn:
            self._detach(member.conn, conv.id, member.id)
        member.conn = conn
        member.offline_since = None
        self._attach(conn, conv.id, member.id)
        out = Outcome(reply={"state": conv.state.value, "role": member.role.value,
                             **self._roster(conv)})
        if member.away:
            out.merge(self._presence_changed(conv, member, away=False))
        if member.role is not Role.YOUTH:
            # A console back from a drop may have missed a presence push.
            out.reply["youth_online"] = conv.id not in self.away
        if conv.state is State.WAITING or (conv.state is State.PAUSED and
                                            conv.id in self.queue):
            position, eta = self._place(conv.id)
            out.reply.update(position=position, eta_secs=eta)
        for payload in relay.pending(member):
            out.emit("box", payload, (conn,))
        return out

    def pause(self, conn: Conn, conv_id: str, paused: bool) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.YOUTH:
            raise NotAllowed()
        now = self.clock.now()
        # Only a waiting youth's pause shows in the counsellors' queue view; an
        # active conversation's pause is news for its members alone.
        in_queue = State.WAITING in (conv.state, conv.paused_from)
        if paused:
            if conv.state not in (State.WAITING, State.ACTIVE):
                raise WrongState()
            conv.paused_from, conv.state, conv.paused_at = conv.state, State.PAUSED, now
            self._schedule(now + self.settings.pause_max_secs, "pause", conv.id, "", now)
        else:
            if conv.state is not State.PAUSED or conv.paused_from is None:
                raise WrongState()
            conv.state, conv.paused_from, conv.paused_at = conv.paused_from, None, None
        if in_queue:
            self._queue_dirty = True
        out = Outcome(reply={"state": conv.state.value})
        out.emit("state", {"conversation": conv.id, "state": conv.state.value},
                 conv.online(exclude=member.id))
        return out

    def leave(self, conn: Conn, conv_id: str, reason: str) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.YOUTH:
            raise NotAllowed()
        why = {"panic": EndReason.PANIC_EXIT,
               "closed": EndReason.PAGE_CLOSED}.get(reason, EndReason.YOUTH_LEFT)
        return self._end(conv, why, actor="youth")

    # ------------------------------------------------------------- both roles

    def send(self, conn: Conn, conv_id: str, epoch: int, seq: int,
             boxes: Sequence[relay.BoxIn]) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        out = relay.relay(conv, member, epoch, seq, boxes, self.settings.backlog_max_boxes)
        self.relayed += 1
        return out

    def delivered(self, conn: Conn, conv_id: str, sender_id: str, seq: int) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if sender_id not in conv.members or sender_id == member.id:
            raise NotMember()
        relay.acknowledge(member, sender_id, seq)
        return Outcome()

    def typing(self, conn: Conn, conv_id: str, active: bool) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if conv.state is State.ENDED:
            raise WrongState()
        out = Outcome()
        out.emit("typing", {"conversation": conv.id, "from": member.id, "active": active},
                 conv.online(exclude=member.id))
        return out

    def disconnect(self, conn: Conn) -> Outcome:
        """A transport went away: keep every place it held for the grace period."""
        now = self.clock.now()
        for conv_id, member_id in self._by_conn.pop(conn, set()):
            conv = self.conversations.get(conv_id)
            if conv is not None and member_id in conv.requests:
                del conv.requests[member_id]  # a waiting liaison went away
                continue
            member = conv.members.get(member_id) if conv else None
            if conv is None or member is None or member.conn != conn:
                continue
            member.conn = None
            member.offline_since = now
            self._schedule(now + self.settings.grace_secs, "grace", conv_id, member_id, now)
            if presence.watched(member):
                self._schedule(now + self.settings.presence_grace_secs, "presence", conv_id,
                               member_id, now)
        for counsellor in self.counsellors.values():
            if conn in counsellor.conns:
                counsellor.conns.discard(conn)
                self.staff_views.forget(conn)
                counsellor.handover_keys.pop(conn, None)
                if not counsellor.conns:
                    counsellor.offline_since = now
                    self._schedule(now + self.settings.grace_secs, "duty", "",
                                   str(counsellor.staff.id), now)
                self._queue_dirty = True
        return Outcome()

    # ------------------------------------------------------------------ staff

    def staff_connected(self, staff: StaffRef, conn: Conn) -> Outcome:
        c = self.counsellors.get(staff.id)
        if c is None:
            c = self.counsellors[staff.id] = Counsellor(staff)
        else:
            c.staff = staff  # alias/capacity may have changed
        c.conns.add(conn)
        c.offline_since = None
        out = Outcome()
        out.emit("duty", self._duty_payload(c), (conn,))
        if c.on_duty:
            out.emit("queue", self._staff_snapshot(c, (conn,)), (conn,))
        return out

    def duty(self, staff: StaffRef, on: bool) -> Outcome:
        if staff.role != Role.COUNSELLOR.value:
            raise NotAllowed()
        c = self.counsellors.get(staff.id)
        if c is None or not c.conns:
            raise NotAllowed()
        changed = c.on_duty != on
        c.on_duty = on
        self._queue_dirty = True
        out = Outcome(reply={"on": on})
        out.emit("duty", self._duty_payload(c), tuple(c.conns))
        if on:
            out.emit("queue", self._staff_snapshot(c, c.conns), tuple(c.conns))
        if changed:
            out.audit(staff.username, "duty_on" if on else "duty_off")
        return out

    def claim(self, staff: StaffRef, conn: Conn, conv_id: str | None, kx_pk: str,
              offline_ok: bool = False) -> Outcome:
        if staff.role != Role.COUNSELLOR.value:
            raise NotAllowed()
        c = self.counsellors.get(staff.id)
        if c is None or not c.on_duty:
            raise NotOnDuty()
        if c.load >= staff.capacity:
            raise AtCapacity()
        if conv_id is None:
            conv_id = self._next_waiting(staff.id, staff.languages)
        conv = self.conversations.get(conv_id)
        if conv is None:
            raise UnknownConversation()
        if conv.lane.startswith("personal:") and conv.lane != personal_lane(staff.id) \
                and conv.id in self.queue:
            raise NotAllowed()  # waiting for their own counsellor
        if conv.state is State.PAUSED and conv.id in self.queue:
            raise WrongState()  # the youth is on the decoy screen; claim when back
        if conv.state is not State.WAITING or conv.id not in self.queue:
            raise AlreadyClaimed()
        if conv.id in self.away and not offline_ok:
            raise YouthOffline()  # the console asks the counsellor first

        now = self.clock.now()
        waited = now - conv.created_at
        self.queue.remove(conv.id)
        conv.lane, conv.personal_since = GENERAL_LANE, None
        self._queue_dirty = True
        self._observe_claim(now)
        conv.state = State.ACTIVE
        out = self._add_member(conv, Role.COUNSELLOR, staff.alias, kx_pk, conn, staff.id)
        out.reply["youth_online"] = conv.id not in self.away
        out.emit("duty", self._duty_payload(c), tuple(c.conns))
        # Not whether the youth came back with a code: that would tie this
        # conversation to the counsellor's earlier return_issued entries
        # (docs/design/audit.md, "Returns leave no link").
        out.audit(staff.username, "claim", conv.pseudonym, waited_secs=int(waited))
        return out

    def _add_member(self, conv: Conversation, role: Role, alias: str, kx_pk: str, conn: Conn,
                    staff_id: int | None) -> Outcome:
        """Seat a new member: epoch +1, roster to the others, the seat in the reply."""
        secret = new_secret()
        member = Member(id=new_id(), role=role, alias=alias, kx_pk=kx_pk,
                        resume_hash=self._hash_resume(secret), staff_id=staff_id, conn=conn)
        conv.members[member.id] = member
        conv.epoch += 1
        if staff_id is not None and staff_id in self.counsellors:
            self.counsellors[staff_id].active.add(conv.id)
        self._attach(conn, conv.id, member.id)
        roster = self._roster(conv)
        out = Outcome(reply={"conversation": conv.id, "member": member.id, "resume": secret,
                             "state": conv.state.value, "pseudonym": conv.pseudonym, **roster})
        out.emit("roster", {"conversation": conv.id, "state": conv.state.value, **roster},
                 conv.online(exclude=member.id))
        return out

    def _remove_member(self, conv: Conversation, member: Member, reason: EndReason) -> Outcome:
        """Unseat a member: epoch +1, the roster to those left, ``ended`` to the one
        who goes (their view of the conversation is over; it goes on for others)."""
        out = Outcome()
        if member.conn is not None:
            out.emit("state", {"conversation": conv.id, "state": State.ENDED.value,
                               "reason": reason.value}, (member.conn,))
            self._detach(member.conn, conv.id, member.id)
        del conv.members[member.id]
        if member.staff_id is not None and member.staff_id in self.counsellors:
            c = self.counsellors[member.staff_id]
            c.active.discard(conv.id)
            out.emit("duty", self._duty_payload(c), tuple(c.conns))
        conv.epoch += 1
        roster = self._roster(conv)
        out.emit("roster", {"conversation": conv.id, "state": conv.state.value, **roster},
                 conv.online())
        return out

    def end(self, staff: StaffRef, conn: Conn, conv_id: str) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
            raise NotAllowed()
        return self._end(conv, EndReason.DONE, actor=staff.username)

    def tag(self, staff: StaffRef, conn: Conn, conv_id: str, reasons: frozenset[str]) -> Outcome:
        """Contact-reason tags for statistics; counted once, when the chat ends."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR:
            raise NotAllowed()
        conv.reasons = set(reasons)
        out = Outcome(reply={"reasons": sorted(conv.reasons)})
        out.audit(staff.username, "tagged", conv.pseudonym, count=len(conv.reasons))
        return out

    # ------------------------------------------- return passphrase, referrals

    def return_target(self, staff: StaffRef, conn: Conn, conv_id: str
                      ) -> tuple[Conn, str | None]:
        """Where a counsellor's offered return passphrase goes: to the youth's
        page only (the counsellor never sees it), and that page's language at
        start, which picks the words' list. The youth must be online."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
            raise NotAllowed()
        youth = conv.youth()
        if conv.state not in (State.ACTIVE, State.PAUSED) or youth is None or youth.conn is None:
            raise WrongState()
        return youth.conn, conv.profile.page_language

    def refer(self, staff: StaffRef, conn: Conn, conv_id: str, partner: str, kind: str
              ) -> Outcome:
        """Record a referral (the slussfunktion): metadata to audit and statistics."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR:
            raise NotAllowed()
        if self.stats is not None:
            self.stats.count("referral", kind)
            self.stats.count("referral_partner", partner)
        out = Outcome()
        out.audit(staff.username, "referral", conv.pseudonym, partner=partner, role=kind)
        return out

    # ----------------------------------------------------- transfer (warm)

    def colleagues(self, staff: StaffRef) -> Outcome:
        """On-duty counsellors one could hand a conversation to."""
        return Outcome(reply={"colleagues": [
            {"staff": c.staff.id, "alias": c.staff.alias, "load": c.load,
             "capacity": c.staff.capacity, "handover_pk": handover.current_key(c)}
            for c in self.counsellors.values()
            if c.staff.id != staff.id and c.on_duty and c.conns
        ]})

    def offer_transfer(self, staff: StaffRef, conn: Conn, conv_id: str, to_staff: int,
                       box: HandoverBox | None = None) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR or member.staff_id != staff.id:
            raise NotAllowed()
        if conv.state not in (State.ACTIVE, State.PAUSED):
            raise WrongState()
        if conv.transfer is not None:
            raise TransferPending()
        target = self.counsellors.get(to_staff)
        if target is None or target.staff.id == staff.id or not (target.on_duty and target.conns):
            raise NotOnDuty()
        if target.load >= target.staff.capacity:
            raise AtCapacity()
        if any(m.staff_id == to_staff for m in conv.members.values()):
            raise WrongState()
        if len(conv.members) >= self.settings.max_members:
            raise WrongState()  # the receiver joins before the sender leaves
        if box is not None:
            handover.check(self.counsellors[staff.id], conn, target, box)
        now = self.clock.now()
        conv.transfer = Transfer(staff.id, to_staff, now, box)
        self._schedule(now + self.settings.transfer_offer_secs, "transfer", conv.id, "", now)
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

    def answer_transfer(self, staff: StaffRef, conn: Conn, conv_id: str, accept: bool,
                        kx_pk: str | None) -> Outcome:
        conv = self._conversation(conv_id)
        offer = conv.transfer
        if offer is None or offer.to_staff != staff.id:
            raise WrongState()
        if not accept:
            return self.decline_transfer(conv, reason="declined", actor=staff.username)
        c = self.counsellors.get(staff.id)
        if c is None or not c.on_duty:
            raise NotOnDuty()
        if c.load >= staff.capacity:
            raise AtCapacity()
        if kx_pk is None:
            raise BadPayload()
        conv.transfer = None
        # Warm: the new counsellor joins first (the youth sees them arrive)...
        out = self._add_member(conv, Role.COUNSELLOR, staff.alias, kx_pk, conn, staff.id)
        out.emit("duty", self._duty_payload(c), tuple(c.conns))
        # ...then the one who handed over leaves.
        for old in [m for m in conv.counsellors() if m.staff_id == offer.from_staff]:
            out.merge(self._remove_member(conv, old, EndReason.TRANSFERRED))
        out.reply.update(self._roster(conv))
        out.reply["youth_online"] = conv.id not in self.away
        if offer.handover is not None:
            out.reply["handover"] = offer.handover.public()
            offer.handover = None
        out.audit(staff.username, "transfer_accepted", conv.pseudonym)
        return out

    def decline_transfer(self, conv: Conversation, reason: str, actor: str = "system"
                         ) -> Outcome:
        """Nothing changes for the youth; the offering counsellor is told."""
        offer, conv.transfer = conv.transfer, None
        out = Outcome(reply={})
        if offer is None:
            return out
        offer.handover = None  # the ciphertext goes at once (nothing else holds it)
        sender = self.counsellors.get(offer.from_staff)
        if sender is not None:
            out.emit("transfer_declined", {"conversation": conv.id, "reason": reason},
                     tuple(sender.conns))
        out.audit(actor, "transfer_declined", conv.pseudonym, reason=reason)
        return out

    def register_handover_key(self, staff: StaffRef, conn: Conn, kx_pk: str) -> Outcome:
        """A console's handover public key (domain/handover.py)."""
        c = self.counsellors.get(staff.id)
        if staff.role != Role.COUNSELLOR.value or c is None:
            raise NotAllowed()
        handover.register(c, conn, kx_pk, self.counsellors.values())
        return Outcome()

    def _presence_changed(self, conv: Conversation, member: Member, away: bool) -> Outcome:
        out = presence.mark_away(conv, member) if away else presence.mark_back(conv, member)
        if away:
            self.away.add(conv.id)
        else:
            self.away.discard(conv.id)
        if conv.id in self.queue:
            self._queue_dirty = True  # the queue shows them apart
        return out

    # --------------------------------------------------- liaison invites

    def create_invite(self, staff: StaffRef, conn: Conn, conv_id: str, invite_id: str,
                      role: str) -> Outcome:
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR:
            raise NotAllowed()
        if conv.state not in (State.ACTIVE, State.PAUSED):
            raise WrongState()
        pending = sum(1 for i in self.invites.values() if i.conversation == conv.id)
        if pending >= MAX_INVITES_PER_CONVERSATION or invite_id in self.invites:
            raise WrongState()
        now = self.clock.now()
        expires = now + self.settings.invite_ttl_secs
        self.invites[invite_id] = Invite(invite_id, conv.id, role, expires, staff.id)
        self._schedule(expires, "invite", conv.id, invite_id, now)
        out = Outcome(reply={"expires_at": to_ms(expires)})
        out.audit(staff.username, "invite_created", conv.pseudonym, role=role)
        return out

    def join(self, conn: Conn, invite_id: str, kx_pk: str, mac: str) -> Outcome:
        """A liaison presents an invite. Unknown, used, expired and revoked
        invites get one answer; a valid one is used up at once."""
        invite = self.invites.get(invite_id)
        if invite is None or invite.expires_at <= self.clock.now():
            raise BadInvite()
        conv = self.conversations.get(invite.conversation)
        if conv is None or conv.state not in (State.ACTIVE, State.PAUSED):
            raise BadInvite()
        if len(conv.members) + len(conv.requests) >= self.settings.max_members:
            raise WrongState()
        del self.invites[invite_id]
        request = JoinRequest(new_id(), invite.role, kx_pk, mac, conn)
        conv.requests[request.id] = request
        self._attach_request(conn, conv.id, request.id)
        out = Outcome(reply={"conversation": conv.id, "request": request.id,
                             "role": invite.role})
        out.emit("join_request", {"conversation": conv.id, "request": request.id,
                                  "role": invite.role, "kx_pk": kx_pk, "mac": mac},
                 [m.conn for m in conv.counsellors() if m.conn is not None])
        out.audit("liaison", "invite_used", conv.pseudonym, role=invite.role)
        return out

    def admit(self, staff: StaffRef, conn: Conn, conv_id: str, request_id: str,
              accept: bool) -> Outcome:
        """The counsellor (whose page checked the MAC) lets the request on to
        the youth, or turns it away."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.COUNSELLOR:
            raise NotAllowed()
        request = conv.requests.get(request_id)
        if request is None or request.state != "waiting":
            raise WrongState()
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

    def consent(self, conn: Conn, conv_id: str, request_id: str, accept: bool) -> Outcome:
        """Only the youth lets a liaison in."""
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.YOUTH:
            raise NotAllowed()
        request = conv.requests.get(request_id)
        if request is None or request.state != "consent":
            raise WrongState()
        if len(conv.members) >= self.settings.max_members:
            raise WrongState()
        del conv.requests[request_id]
        if not accept:
            out = Outcome(reply={})
            out.emit("join_declined", {"conversation": conv.id}, (request.conn,))
            out.emit("consent_declined", {"conversation": conv.id, "request": request_id},
                     [m.conn for m in conv.counsellors() if m.conn is not None])
            out.audit("youth", "liaison_declined", conv.pseudonym, role=request.role)
            return out
        added = self._add_member(conv, Role.LIAISON, request.role, request.kx_pk,
                                 request.conn, None)
        # The liaison's seat (member id, resume secret, roster) goes to the liaison.
        out = Outcome(reply={**self._roster(conv)})
        out.emit("joined", added.reply, (request.conn,))
        out.emits.extend(e for e in added.emits if request.conn not in e.to)
        out.audit("youth", "liaison_joined", conv.pseudonym, role=request.role)
        return out

    def remove_member(self, conn: Conn, conv_id: str, member_id: str) -> Outcome:
        """The youth or a counsellor removes a liaison, at any time."""
        conv, member = self._membership(conn, conv_id)
        if member.role not in (Role.YOUTH, Role.COUNSELLOR):
            raise NotAllowed()
        target = conv.members.get(member_id)
        if target is None or target.role is not Role.LIAISON:
            raise NotAllowed()
        out = self._remove_member(conv, target, EndReason.REMOVED)
        actor = "youth" if member.role is Role.YOUTH else (
            self.counsellors[member.staff_id].staff.username
            if member.staff_id in self.counsellors else "staff")
        out.audit(actor, "member_removed", conv.pseudonym, role=target.alias)
        return out

    def liaison_leave(self, conn: Conn, conv_id: str) -> Outcome:
        conv = self._conversation(conv_id)
        for req_id, request in list(conv.requests.items()):
            if request.conn == conn:  # left while still waiting to be let in
                del conv.requests[req_id]
                self._detach(conn, conv.id, req_id)
                return Outcome()
        conv, member = self._membership(conn, conv_id)
        if member.role is not Role.LIAISON:
            raise NotAllowed()
        out = self._remove_member(conv, member, EndReason.LEFT)
        out.audit("liaison", "liaison_left", conv.pseudonym)
        return out

    def _attach_request(self, conn: Conn, conv_id: str, request_id: str) -> None:
        # A waiting liaison is not a member; remembering the pair lets a dropped
        # connection withdraw the request (see disconnect).
        self._by_conn.setdefault(conn, set()).add((conv_id, request_id))

    # ------------------------------------------------------------- periodic

    def tick(self) -> Outcome:
        """Process every deadline that has passed (grace, pause, duty)."""
        now = self.clock.now()
        out = Outcome()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, kind, conv_id, subject, token = heapq.heappop(self._deadlines)
            if kind == "duty":
                self._duty_timeout(int(subject), token, out)
                continue
            conv = self.conversations.get(conv_id)
            if conv is None:
                continue
            if kind == "pause" and conv.state is State.PAUSED and conv.paused_at == token:
                out.merge(self._end(conv, EndReason.TIMED_OUT, actor="system"))
            elif kind == "personal" and conv.personal_since == token and conv.id in self.queue:
                # The wait for their own counsellor is over: offer the choice again.
                youth = conv.youth()
                if youth is not None and youth.conn is not None:
                    out.emit("choose", {"conversation": conv.id}, (youth.conn,))
            elif kind == "transfer" and conv.transfer is not None and \
                    conv.transfer.offered_at == token:
                out.merge(self.decline_transfer(conv, reason="timed_out"))
            elif kind == "invite":
                invite = self.invites.get(subject)
                if invite is not None and invite.expires_at <= now:
                    del self.invites[subject]
                    out.audit("system", "invite_expired", conv.pseudonym, role=invite.role)
            elif kind == "grace":
                member = conv.members.get(subject)
                if member is not None and member.offline_since == token:
                    out.merge(self._member_timed_out(conv, member))
            elif kind == "presence":
                member = conv.members.get(subject)
                if member is not None and member.conn is None and \
                        member.offline_since == token and not member.away:
                    out.merge(self._presence_changed(conv, member, away=True))
        return out

    def queue_updates(self) -> Outcome:
        """Coalesced queue pushes: positions to youths whose place changed,
        a snapshot to on-duty counsellors. Called every queue_push_interval_secs."""
        out = Outcome()
        if not (self._queue_dirty or self._push_owed):
            return out
        changed = self._queue_dirty
        if changed:
            self._queue_version += 1  # a new state to publish
        self._queue_dirty = self._push_owed = False
        now = self.clock.now()
        # Snapshots first: the transport sends a round in slices, and a view
        # sent after a later claim would show that youth as still waiting.
        self._push_staff_snapshots(out, now)
        self._push_positions(out, now, changed)
        return out

    def queue_push_current(self, emit: Emit) -> bool:
        """Whether a push from queue_updates() may still go. The transport sends
        a round in slices (docs/design/queue.md): a youth claimed or gone
        meanwhile must not get a position after that, nor one older than what a
        reply told them since (``choose`` moves a youth and answers with the new
        place). A position one place off after someone else's claim is
        corrected by the next round; counsellors' snapshots are views and go."""
        if emit.event != "queue" or "position" not in emit.payload:
            return True
        conv = self.conversations.get(str(emit.payload.get("conversation")))
        if conv is None or conv.id not in self.queue or conv.last_pushed is None:
            return False
        return conv.last_pushed[:2] == (emit.payload["position"], emit.payload["eta_secs"])

    def _push_positions(self, out: Outcome, now: float, changed: bool) -> None:
        near_gap = self.settings.queue_position_min_interval_secs
        far_gap = self.settings.queue_position_far_interval_secs
        near = NEAR_FRONT_OF_QUEUE
        lanes = self.queue.lanes()
        for lane in lanes:  # the fronts of all lanes before any far-back window
            for conv_id, position in self.queue.iter_range(lane, 0, near):
                self._push_position(out, conv_id, position, now, near_gap)
        far_scan: dict[str, tuple[int, int]] = {}
        for lane in lanes:
            far = self.queue.lane_length(lane) - near
            if far <= 0:
                continue
            cursor, unscanned = self._far_scan.get(lane, (0, far))
            if changed:
                unscanned = far  # every far-back place is to be looked at again
            first = cursor % far
            take = min(far, FAR_SCAN_PER_ROUND)
            stop = min(far, first + take)
            window = itertools.chain(  # to the end of the lane, then round from the start
                self.queue.iter_range(lane, near + first, near + stop),
                self.queue.iter_range(lane, near, near + take - (stop - first)))
            for conv_id, position in window:
                self._push_position(out, conv_id, position, now, far_gap)
            # Until one whole pass since the last change, later rounds owe a look
            # at the rest; after it a still queue costs nothing.
            unscanned -= take
            far_scan[lane] = ((first + take) % far, max(unscanned, 0))
            if unscanned > 0:
                self._push_owed = True
        self._far_scan = far_scan  # lanes emptied or short again are forgotten

    def _push_position(self, out: Outcome, conv_id: str, position: int, now: float,
                       gap: float) -> None:
        conv = self.conversations[conv_id]
        eta = self._eta(position)
        last = conv.last_pushed
        if last is not None:
            if last[0] == position and last[1] == eta:
                return
            if position > FRONT_OF_QUEUE and now - last[2] < gap:
                self._push_owed = True  # try again in a later round
                return
        youth = conv.youth()
        if youth is None or youth.conn is None:
            return
        conv.last_pushed = (position, eta, now)
        out.emit("queue", {"conversation": conv_id, "position": position, "eta_secs": eta},
                 (youth.conn,))

    def _push_staff_snapshots(self, out: Outcome, now: float) -> None:
        # Each console gets the change from the view it holds to the newest
        # (domain/staff_views.py). Most counsellors have nobody in their
        # personal lane and see the same view, built once: one event per
        # starting version goes to all of them, encoded once by the transport.
        # Per counsellor at most one push every queue_snapshot_min_gap_secs,
        # and while at capacity (they cannot claim) every
        # queue_snapshot_at_capacity_secs: a push then covers everything since
        # the one before, so what a console receives per second stays bounded
        # however often one youth changes something. At capacity the view
        # lists only the first staff_queue_at_capacity_max: at a peak most
        # counsellors are full, the first 50 places turn over within their 5 s,
        # and a whole list to each of them was most of the bytes
        # (docs/performance.md).
        at_capacity_gap = self.settings.queue_snapshot_at_capacity_secs
        min_gap = self.settings.queue_snapshot_min_gap_secs
        views = self.staff_views
        shared: list[dict[str, Any]] | None = None
        common: dict[str, tuple[View, list[Conn]]] = {}
        for c in self.counsellors.values():
            if not (c.on_duty and c.conns) or c.snapshot_version == self._queue_version:
                continue
            full = c.load >= c.staff.capacity
            gap = max(min_gap, at_capacity_gap if full else 0.0)
            if now - c.snapshot_at < gap:
                self._push_owed = True
                continue
            c.snapshot_version = self._queue_version
            if shared is None:
                shared = self._snapshot_entries((GENERAL_LANE, PROFESSIONAL_LANE))
            key = self._view_key(c)
            if key not in common:
                view = self._staff_view(c, shared)
                if not key.startswith(SHARED):
                    sends = views.push(key, view, c.conns)
                    _emit_views(out, sends)
                    if sends:
                        c.snapshot_at = now
                    continue
                common[key] = (view, [])
            view, to = common[key]
            if any(views.held(conn) != view.version for conn in c.conns):
                c.snapshot_at = now
                to.extend(c.conns)
        for key, (view, to) in common.items():
            _emit_views(out, views.push(key, view, to))
        views.prune()

    def queue_sync(self, staff: StaffRef, conn: Conn) -> Outcome:
        """A console that missed a change asks for its whole view again."""
        if staff.role != Role.COUNSELLOR.value:
            raise NotAllowed()
        c = self.counsellors.get(staff.id)
        if c is None or conn not in c.conns or not c.on_duty:
            raise NotOnDuty()
        out = Outcome(reply={})
        out.emit("queue", self._staff_snapshot(c, (conn,)), (conn,))
        return out

    def _view_key(self, c: Counsellor) -> str:
        """Which view ``c`` sees: the shared one or their own (returning youths
        waiting), whole or, at capacity, its front (domain/staff_views.py)."""
        own = personal_lane(c.staff.id)
        base = own if self.queue.lane_length(own) else SHARED
        if base == SHARED:
            self.staff_views.drop_key(own)
            self.staff_views.drop_key(own + AT_CAPACITY)
        return base + AT_CAPACITY if c.load >= c.staff.capacity else base

    def listed_max(self, staff_id: int) -> int | None:
        """How many entries ``staff_id``'s view lists now, if fewer than all."""
        c = self.counsellors.get(staff_id)
        if c is None or c.load < c.staff.capacity:
            return None
        return self.settings.staff_queue_at_capacity_max

    def _staff_view(self, c: Counsellor, shared: list[dict[str, Any]] | None = None) -> View:
        """The newest view of what ``c`` sees, published under its key."""
        key = self._view_key(c)
        snap = self.staff_queue_snapshot(c.staff.id, shared, self.listed_max(c.staff.id))
        return self.staff_views.publish(key, snap["entries"], snap["total"], snap["offline"])

    def _staff_snapshot(self, c: Counsellor, conns: Iterable[Conn]) -> dict[str, Any]:
        """The whole view for ``conns`` (a connect, duty on, a console's ask)."""
        return self.staff_views.snapshot(self._view_key(c), self._staff_view(c), conns)

    def staff_queue_snapshot(self, staff_id: int,
                             shared: list[dict[str, Any]] | None = None,
                             listed: int | None = None) -> dict[str, Any]:
        """What one counsellor sees: their own returning youths (flagged), then
        the general and professional lanes; the first ``listed`` of them if
        given. Nobody sees another's personal lane."""
        own = self._snapshot_entries((personal_lane(staff_id),))
        if shared is None:
            shared = self._snapshot_entries((GENERAL_LANE, PROFESSIONAL_LANE))
        visible = self.queue.lane_length(GENERAL_LANE) + \
            self.queue.lane_length(PROFESSIONAL_LANE) + len(own)
        lanes = (GENERAL_LANE, PROFESSIONAL_LANE, personal_lane(staff_id))
        offline = sum(1 for cid in self.away
                      if cid in self.queue and self.conversations[cid].lane in lanes)
        entries = own + shared
        return {"total": visible, "offline": offline,
                "entries": entries if listed is None else entries[:listed]}

    def _snapshot_entries(self, lanes: tuple[str, ...]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for lane in lanes:
            for conv_id in self.queue.iter_lane(lane):
                if len(entries) >= self.settings.staff_queue_snapshot_max:
                    return entries
                conv = self.conversations[conv_id]
                entries.append({
                    "conversation": conv.id, "pseudonym": conv.pseudonym,
                    "since": to_ms(conv.created_at), "language": conv.profile.language,
                    "page_language": conv.profile.page_language,
                    "age_band": conv.profile.age_band, "topic": conv.profile.topic,
                    "urgent": conv.profile.urgent, "state": conv.state.value,
                    "lane": "personal" if lane.startswith("personal:") else lane,
                    "returning": lane.startswith("personal:"),
                    "offline": conv.id in self.away,
                })
        return entries

    def ops_snapshot(self) -> dict[str, Any]:
        now = self.clock.now()
        waits = sorted(now - (self.queue.arrived(cid) or now) for cid, _ in self.queue.iter_all())
        states = [c.state for c in self.conversations.values()]
        return {
            "at": to_ms(now),
            "queue_length": len(self.queue),
            "longest_wait_secs": int(waits[-1]) if waits else 0,
            "median_wait_secs": int(statistics.median(waits)) if waits else 0,
            "active": sum(s is State.ACTIVE for s in states),
            "paused": sum(s is State.PAUSED for s in states),
            "abandoned_today": self._abandoned.get(_day(now), 0),
            "counsellors": [
                {"alias": c.staff.alias, "on_duty": c.on_duty and bool(c.conns),
                 "load": c.load, "capacity": c.staff.capacity}
                for c in self.counsellors.values() if c.staff.role == Role.COUNSELLOR.value
            ],
            "history": [{"at": at, "queue_length": n} for at, n in self._history],
        }

    def sample_history(self) -> None:
        self._history.append((to_ms(self.clock.now()), len(self.queue)))

    # -------------------------------------------------------------- internals

    def _hash_resume(self, secret: str) -> bytes:
        return keyed_hash(self._resume_key, secret, "resume")

    def _conversation(self, conv_id: str) -> Conversation:
        conv = self.conversations.get(conv_id)
        if conv is None:
            raise UnknownConversation()
        return conv

    def _membership(self, conn: Conn, conv_id: str) -> tuple[Conversation, Member]:
        conv = self._conversation(conv_id)
        for m in conv.members.values():
            if m.conn == conn:
                return conv, m
        raise NotMember()

    def _attach(self, conn: Conn, conv_id: str, member_id: str) -> None:
        self._by_conn.setdefault(conn, set()).add((conv_id, member_id))

    def _detach(self, conn: Conn, conv_id: str, member_id: str) -> None:
        held = self._by_conn.get(conn)
        if held is not None:
            held.discard((conv_id, member_id))
            if not held:
                del self._by_conn[conn]

    def _schedule(self, when: float, kind: str, conv_id: str, subject: str,
                  token: float) -> None:
        heapq.heappush(self._deadlines,
                       (when, next(self._deadline_counter), kind, conv_id, subject, token))

    def _roster(self, conv: Conversation) -> dict[str, Any]:
        return {"epoch": conv.epoch, "members": [m.public() for m in conv.members.values()]}

    def _place(self, conv_id: str) -> tuple[int, int]:
        position = self.queue.position(conv_id)
        return position, self._eta(position)

    def _eta(self, position: int) -> int:
        # The smoothed interval between claims already reflects how many
        # counsellors are working, so a place costs one interval.
        return int(position * self._secs_per_place)

    def _observe_claim(self, now: float) -> None:
        if self._last_claim_at is not None:
            gap = min(max(now - self._last_claim_at, ETA_MIN_SECS), ETA_MAX_SECS)
            self._secs_per_place += ETA_SMOOTHING * (gap - self._secs_per_place)
        self._last_claim_at = now

    def _next_waiting(self, staff_id: int, languages: Sequence[str] = ()) -> str:
        # Their own returning youths first, then everyone, then professionals.
        # In general and professional: the oldest youth of the first waiting
        # one's priority whose language the counsellor speaks, else that first
        # one, so nobody waits forever because of language (docs/design/queue.md).
        own = personal_lane(staff_id)
        for lane in (own, GENERAL_LANE, PROFESSIONAL_LANE):
            for conv_id in self.queue.iter_lane(lane):
                if self.conversations[conv_id].state is State.WAITING and \
                        conv_id not in self.away:  # never someone who is not there
                    if lane == own or not languages:
                        return conv_id
                    return self._speaks(lane, conv_id, languages) or conv_id
        raise QueueEmpty()

    def _speaks(self, lane: str, head: str, languages: Sequence[str]) -> str | None:
        """The first waiting conversation of ``head``'s priority in ``lane``
        whose language is one of ``languages``; None if there is none."""
        priority = self.queue.priority(head)
        best: tuple[float, str] | None = None
        for language in languages:
            for conv_id, p in self.queue.iter_tagged(lane, language):
                if p != priority:
                    if priority is not None and p > priority:
                        break
                    continue  # more urgent but paused: head is the first waiting one
                if self.conversations[conv_id].state is not State.WAITING or \
                        conv_id in self.away:
                    continue
                place = self.queue.position(conv_id)
                if best is None or place < best[0]:
                    best = (place, conv_id)
                break
        return None if best is None else best[1]

    def _count_profile(self, profile: StartProfile, returning: bool = False) -> None:
        if self.stats is None:
            return
        self.stats.count("contact_kind", "returning" if returning else "first")
        self.stats.count("language", profile.language or "unsaid")  # the chosen chat language
        if profile.professional:
            self.stats.count("contacts", "professional")
            self.stats.count("workplace_municipality",
                             profile.workplace_municipality or "unsaid")
            self.stats.count("profession", profile.profession or "unsaid")
            return
        self.stats.count("contacts", "youth")
        districts = self.settings.service.get("profile", {}).get("districts", {})
        if profile.municipality is not None and profile.municipality in districts:
            self.stats.count("district", profile.district or "unsaid")
        for dim in ("gender", "age_band", "municipality", "topic"):
            value = getattr(profile, dim)
            self.stats.count(dim, value if value is not None else "unsaid")

    def _duty_payload(self, c: Counsellor) -> dict[str, Any]:
        return {"on": c.on_duty, "load": c.load, "capacity": c.staff.capacity}

    def _end(self, conv: Conversation, reason: EndReason, actor: str) -> Outcome:
        was_waiting = conv.id in self.queue
        recipients = conv.online()
        # Whoever was on the way in is turned away; invites die with the chat.
        recipients_declined = [r.conn for r in conv.requests.values()]
        conv.requests.clear()
        for invite_id in [i for i, inv in self.invites.items() if inv.conversation == conv.id]:
            del self.invites[invite_id]
        conv.state = State.ENDED
        conv.ended_reason = reason
        self.queue.remove(conv.id)
        self.away.discard(conv.id)
        self._queue_dirty = True
        relay.drop_all(conv)
        for m in conv.members.values():
            if m.conn is not None:
                self._detach(m.conn, conv.id, m.id)
            if m.staff_id is not None and m.staff_id in self.counsellors:
                self.counsellors[m.staff_id].active.discard(conv.id)
        del self.conversations[conv.id]
        now = self.clock.now()
        if was_waiting:
            day = _day(now)
            self._abandoned = {day: self._abandoned.get(day, 0) + 1}
        out = Outcome(reply={})
        out.emit("state", {"conversation": conv.id, "state": State.ENDED.value,
                           "reason": reason.value}, recipients)
        out.emit("join_declined", {"conversation": conv.id}, recipients_declined)
        for m in conv.staff_members():
            c = self.counsellors.get(m.staff_id) if m.staff_id is not None else None
            if c is not None:
                out.emit("duty", self._duty_payload(c), tuple(c.conns))
        out.audit(actor, "conversation_end", conv.pseudonym, reason=reason.value,
                  count=conv.message_count, waiting=was_waiting)
        if self.stats is not None:  # after every state change: counting never blocks an end
            for tag in conv.reasons:
                self.stats.count("reason", tag)
            if was_waiting and reason is not EndReason.DONE:
                # Demand not met: left the queue; the band of when they asked.
                self.stats.count("unmet_left", hour_band(
                    conv.created_at, self.settings.stats_timezone))
        return out

    def _member_timed_out(self, conv: Conversation, member: Member) -> Outcome:
        if member.role is Role.YOUTH:
            return self._end(conv, EndReason.TIMED_OUT, actor="system")
        # A staff page died: the youth is never dropped. The seat goes and the
        # epoch moves on; with no counsellor left, a liaison cannot stay alone
        # with the youth, and the youth queues again, first.
        out = self._remove_member(conv, member, EndReason.TIMED_OUT)
        out.audit("system", "staff_timed_out", conv.pseudonym, role=member.role.value)
        if not conv.counsellors():
            for other in conv.staff_members():
                out.merge(self._remove_member(conv, other, EndReason.TIMED_OUT))
            conv.transfer = None
            if conv.state is State.PAUSED:
                conv.paused_from = State.WAITING
            else:
                conv.state = State.WAITING
            self.queue.add(conv.id, conv.created_at, urgent=True,
                           tag=conv.profile.match_language())
            self._queue_dirty = True
            out.emit("state", {"conversation": conv.id, "state": conv.state.value},
                     conv.online())
        return out

    def _duty_timeout(self, staff_id: int, token: float, out: Outcome) -> None:
        c = self.counsellors.get(staff_id)
        if c is None or c.conns or c.offline_since != token:
            return
        if c.on_duty:
            c.on_duty = False
            self._queue_dirty = True
            out.audit(c.staff.username, "duty_off", reason="disconnected")


def _emit_views(out: Outcome, sends: list[tuple[dict[str, Any], list[Conn]]]) -> None:
    for payload, to in sends:
        if "from_v" in payload:
            out.emit("queue_delta", payload, to)
        else:
            out.emit("queue", payload, to)


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def _plain(value: Any) -> Any:
    """Config data (read-only mappings/tuples) as JSON-ready dicts/lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
