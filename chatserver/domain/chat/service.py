"""ChatService: the chat's whole live state and every call on it.

Design: docs/design/conversations.md and docs/design/queue.md. Everything is
in memory and synchronous: a call checks, changes state and returns an
``Outcome`` without awaiting, so under asyncio two claims for one conversation
can never interleave (exactly one winner). Time comes from the injected clock;
timers are deadlines processed by ``tick``.

The state is this object's attributes and nothing else (a snapshot encodes
them: chatserver/live/codec.py). The rules are in this package's feature
modules; each method here only hands over to one. The underscore attributes
are the package's own: its modules read and change them, nothing outside it
does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from chatserver.crypto.tokens import keyed_hash
from chatserver.domain import relay
from chatserver.domain.chat import (
    casework,
    connections,
    duty,
    escalation,
    lifecycle,
    operator,
    queueing,
    reattach,
    relaying,
    rounds,
    timeouts,
    transfers,
    views,
)
from chatserver.domain.chat.profile import StartProfile, StatsSink
from chatserver.domain.clock import Clock
from chatserver.domain.draws import Draws, LocalDraws
from chatserver.domain.events import Conn, Emit, Outcome
from chatserver.domain.model import Conversation, Counsellor, HandoverBox, Invite, StaffRef
from chatserver.domain.staff_views import StaffViews
from chatserver.queue.model import WaitingQueue
from chatserver.settings import Settings


class ChatService:
    def __init__(self, settings: Settings, clock: Clock, stats: StatsSink | None = None,
                 draws: Draws | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.stats = stats
        self._resume_key = settings.require_secrets().session_key
        # Every random value the rules need comes from here: on several nodes
        # each node applies the same command and must draw the same values
        # (chatserver/live/), and a resume secret itself never leaves the node
        # that answers with it.
        self.draws: Draws = draws or LocalDraws(self._hash_resume)
        self.conversations: dict[str, Conversation] = {}
        self.queue = WaitingQueue()
        self.counsellors: dict[int, Counsellor] = {}
        # conn -> (conversation, member or join request) pairs it holds (seats.py)
        self._by_conn: dict[Conn, set[tuple[str, str]]] = {}
        self._deadlines: list[tuple[float, int, str, str, str, float]] = []  # deadlines.py
        self._deadline_counter = 0  # an int: a snapshot of the state holds it
        self._secs_per_place = float(settings.eta_secs_per_position)  # queueing.py
        self._last_claim_at: float | None = None
        self._queue_dirty = True
        self._queue_version = 0  # counted up by queue_updates for each new state
        self._push_owed = False  # a push was held back by a gap or budget
        # lane -> (next far-back place to look at, far places not looked at since
        # the queue last changed); only lanes that have a far-back part (rounds.py)
        self._far_scan: dict[str, tuple[int, int]] = {}
        self._abandoned: dict[str, int] = {}  # UTC day -> conversations left while waiting
        self._history: deque[tuple[int, int]] = deque(maxlen=operator.OPS_HISTORY_SAMPLES)
        self.relayed = 0  # sends accepted since start (a metric, never per conversation)
        self.invites: dict[str, Invite] = {}  # invite id -> invite (escalation.py)
        # Conversations whose youth is shown as offline (domain/presence.py).
        self.away: set[str] = set()
        # The queue view each console holds (domain/staff_views.py).
        self.staff_views = StaffViews(deltas=settings.queue_deltas)

    def _hash_resume(self, secret: str) -> bytes:
        return keyed_hash(self._resume_key, secret, "resume")

    # ----------------------------------------------------------------- youth

    def status(self) -> dict[str, Any]:
        return duty.status(self)

    def is_open(self) -> bool:
        return duty.is_open(self)

    def has_conversation(self, conn: Conn) -> bool:
        return connections.has_conversation(self, conn)

    def start(self, conn: Conn, kx_pk: str, profile: StartProfile,
              returning_to: int | None = None) -> Outcome:
        return queueing.start(self, conn, kx_pk, profile, returning_to)

    def choose(self, conn: Conn, conv_id: str, wait: bool) -> Outcome:
        """A returning youth's choice: keep waiting for their counsellor, or anyone."""
        return queueing.choose(self, conn, conv_id, wait)

    def resume(self, conn: Conn, conv_id: str, member_id: str, secret: str,
               staff: StaffRef | None = None) -> Outcome:
        return connections.resume(self, conn, conv_id, member_id, secret, staff)

    def resume_hashed(self, conn: Conn, conv_id: str, member_id: str, resume_hash: bytes,
                      staff: StaffRef | None = None) -> Outcome:
        """``resume`` with the secret already hashed (the replicated log's form)."""
        return connections.resume_hashed(self, conn, conv_id, member_id, resume_hash, staff)

    def pause(self, conn: Conn, conv_id: str, paused: bool) -> Outcome:
        return lifecycle.pause(self, conn, conv_id, paused)

    def leave(self, conn: Conn, conv_id: str, reason: str) -> Outcome:
        return lifecycle.leave(self, conn, conv_id, reason)

    # ------------------------------------------------------------- both roles

    def send(self, conn: Conn, conv_id: str, epoch: int, seq: int,
             boxes: Sequence[relay.BoxIn]) -> Outcome:
        return relaying.send(self, conn, conv_id, epoch, seq, boxes)

    def delivered(self, conn: Conn, conv_id: str, sender_id: str, seq: int) -> Outcome:
        return relaying.delivered(self, conn, conv_id, sender_id, seq)

    def typing(self, conn: Conn, conv_id: str, active: bool) -> Outcome:
        return relaying.typing(self, conn, conv_id, active)

    def disconnect(self, conn: Conn) -> Outcome:
        """A transport went away: keep every place it held for the grace period."""
        return connections.disconnect(self, conn)

    def disconnect_node(self, node_id: str) -> Outcome:
        """Every connection of a node that is gone goes away at once."""
        return connections.disconnect_node(self, node_id)

    # ------------------------------------------------------------------ staff

    def staff_connected(self, staff: StaffRef, conn: Conn) -> Outcome:
        return connections.staff_connected(self, staff, conn)

    def reattach(self, staff: StaffRef, conn: Conn, conv_id: str, kx_pk: str) -> Outcome:
        """A console that lost its keys takes its own seat back (reattach.py)."""
        return reattach.reattach(self, staff, conn, conv_id, kx_pk)

    def duty(self, staff: StaffRef, on: bool) -> Outcome:
        return duty.set_duty(self, staff, on)

    def claim(self, staff: StaffRef, conn: Conn, conv_id: str | None, kx_pk: str,
              offline_ok: bool = False) -> Outcome:
        return queueing.claim(self, staff, conn, conv_id, kx_pk, offline_ok)

    def end(self, staff: StaffRef, conn: Conn, conv_id: str) -> Outcome:
        return lifecycle.end(self, staff, conn, conv_id)

    def tag(self, staff: StaffRef, conn: Conn, conv_id: str, reasons: frozenset[str]) -> Outcome:
        """Contact-reason tags for statistics; counted once, when the chat ends."""
        return casework.tag(self, staff, conn, conv_id, reasons)

    def return_target(self, staff: StaffRef, conn: Conn, conv_id: str
                      ) -> tuple[Conn, str | None]:
        """Where a counsellor's offered return passphrase goes (the youth's page)."""
        return casework.return_target(self, staff, conn, conv_id)

    def refer(self, staff: StaffRef, conn: Conn, conv_id: str, partner: str, kind: str
              ) -> Outcome:
        """Record a referral (the slussfunktion): metadata to audit and statistics."""
        return casework.refer(self, staff, conn, conv_id, partner, kind)

    # ----------------------------------------------------- transfer (warm)

    def colleagues(self, staff: StaffRef) -> Outcome:
        """On-duty counsellors one could hand a conversation to."""
        return transfers.colleagues(self, staff)

    def offer_transfer(self, staff: StaffRef, conn: Conn, conv_id: str, to_staff: int,
                       box: HandoverBox | None = None) -> Outcome:
        return transfers.offer_transfer(self, staff, conn, conv_id, to_staff, box)

    def answer_transfer(self, staff: StaffRef, conn: Conn, conv_id: str, accept: bool,
                        kx_pk: str | None) -> Outcome:
        return transfers.answer_transfer(self, staff, conn, conv_id, accept, kx_pk)

    def decline_transfer(self, conv: Conversation, reason: str, actor: str = "system"
                         ) -> Outcome:
        """Nothing changes for the youth; the offering counsellor is told."""
        return transfers.decline_transfer(self, conv, reason, actor)

    def register_handover_key(self, staff: StaffRef, conn: Conn, kx_pk: str) -> Outcome:
        """A console's handover public key (domain/handover.py)."""
        return transfers.register_handover_key(self, staff, conn, kx_pk)

    # --------------------------------------------------- liaison invites

    def create_invite(self, staff: StaffRef, conn: Conn, conv_id: str, invite_id: str,
                      role: str) -> Outcome:
        return escalation.create_invite(self, staff, conn, conv_id, invite_id, role)

    def join(self, conn: Conn, invite_id: str, kx_pk: str, mac: str) -> Outcome:
        """A liaison presents an invite."""
        return escalation.join(self, conn, invite_id, kx_pk, mac)

    def admit(self, staff: StaffRef, conn: Conn, conv_id: str, request_id: str,
              accept: bool) -> Outcome:
        """The counsellor lets a liaison's request on to the youth, or turns it away."""
        return escalation.admit(self, staff, conn, conv_id, request_id, accept)

    def consent(self, conn: Conn, conv_id: str, request_id: str, accept: bool) -> Outcome:
        """Only the youth lets a liaison in."""
        return escalation.consent(self, conn, conv_id, request_id, accept)

    def remove_member(self, conn: Conn, conv_id: str, member_id: str) -> Outcome:
        """The youth or a counsellor removes a liaison, at any time."""
        return escalation.remove_liaison(self, conn, conv_id, member_id)

    def liaison_leave(self, conn: Conn, conv_id: str) -> Outcome:
        return escalation.liaison_leave(self, conn, conv_id)

    # ------------------------------------------------------------- periodic

    def tick(self) -> Outcome:
        """Process every deadline that has passed (timeouts.py)."""
        return timeouts.tick(self)

    def queue_updates(self) -> Outcome:
        """The queue round: coalesced pushes to youths and counsellors (rounds.py)."""
        return rounds.queue_updates(self)

    def queue_push_current(self, emit: Emit) -> bool:
        """Whether a push from queue_updates() may still go."""
        return rounds.queue_push_current(self, emit)

    # ------------------------------------------------------ views and snapshots

    def queue_sync(self, staff: StaffRef, conn: Conn) -> Outcome:
        """A console that missed a change asks for its whole view again."""
        return views.queue_sync(self, staff, conn)

    def listed_max(self, staff_id: int) -> int | None:
        """How many entries ``staff_id``'s view lists now, if fewer than all."""
        return views.listed_max(self, staff_id)

    def staff_queue_snapshot(self, staff_id: int,
                             shared: list[dict[str, Any]] | None = None,
                             listed: int | None = None) -> dict[str, Any]:
        """What one counsellor sees (views.py)."""
        return views.staff_queue_snapshot(self, staff_id, shared, listed)

    def ops_snapshot(self) -> dict[str, Any]:
        return operator.ops_snapshot(self)

    def sample_history(self) -> None:
        operator.sample_history(self)
