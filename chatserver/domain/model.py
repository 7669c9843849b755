"""Conversation, member and counsellor state, held in memory only.

Design: docs/design/conversations.md. Nothing here is ever written to disk:
ciphertext sits in per-recipient buffers until the recipient acknowledges it
with ``delivered`` or the conversation ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chatserver.domain.events import Conn


class State(StrEnum):
    WAITING = "waiting"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class EndReason(StrEnum):
    DONE = "done"
    YOUTH_LEFT = "youth_left"
    PANIC_EXIT = "panic_exit"
    # The youth's page went away without the quick exit (reload, tab closed or
    # discarded): the counsellor must not read it as a panic.
    PAGE_CLOSED = "page_closed"
    TIMED_OUT = "timed_out"
    TRANSFERRED = "transferred"  # for the counsellor who handed over; the chat goes on
    REMOVED = "removed"  # for a liaison removed by the youth or the counsellor
    LEFT = "left"  # for a liaison who left


class Role(StrEnum):
    YOUTH = "youth"
    COUNSELLOR = "counsellor"
    LIAISON = "liaison"


STAFF_ROLES = frozenset({Role.COUNSELLOR, Role.LIAISON})


@dataclass(frozen=True, slots=True)
class StaffRef:
    """Who a staff connection belongs to, as the session says."""

    id: int
    username: str
    role: str
    alias: str
    capacity: int
    # The language codes the counsellor speaks (chatserver staff languages):
    # take next prefers a youth who chose one of them.
    languages: tuple[str, ...] = ()


@dataclass(slots=True)
class Buffered:
    arrival: int  # per-recipient counter: the order of redelivery
    seq: int
    payload: dict[str, Any]


@dataclass(slots=True)
class Member:
    id: str
    role: Role
    alias: str
    kx_pk: str
    resume_hash: bytes = field(repr=False)
    staff_id: int | None = None
    conn: Conn | None = None
    offline_since: float | None = None
    # Shown to the others as offline: gone longer than presence_grace_secs
    # (domain/presence.py); cleared when the member resumes.
    away: bool = False
    last_seq: int = 0  # the last seq this member sent
    # Undelivered boxes addressed to this member, per sender, oldest first.
    inbox: dict[str, deque[Buffered]] = field(default_factory=dict)
    inbox_count: int = 0
    arrivals: int = 0

    def public(self) -> dict[str, Any]:
        return {"member": self.id, "role": self.role.value, "alias": self.alias,
                "kx_pk": self.kx_pk, "seq": self.last_seq}


@dataclass(slots=True)
class Profile:
    """The optional, self-reported profile. Only these travel with the queue
    entry; gender and municipality go to statistics and nowhere else."""

    language: str | None = None
    age_band: str | None = None
    topic: str | None = None
    urgent: bool = False
    professional: bool = False
    page_language: str | None = None  # the language the youth's page was shown in

    def match_language(self) -> str | None:
        """The language a counsellor should speak: the chosen chat language,
        else the page's."""
        return self.language or self.page_language


@dataclass(slots=True)
class Invite:
    """A liaison invite. The server holds only the invite id (a hash of the
    secret in the invite code), never the secret."""

    invite_id: str
    conversation: str
    role: str
    expires_at: float
    created_by: int


@dataclass(slots=True)
class JoinRequest:
    id: str
    role: str
    kx_pk: str
    mac: str
    conn: Conn
    state: str = "waiting"  # waiting (for the counsellor) -> consent (asked of the youth)


@dataclass(frozen=True, slots=True)
class HandoverBox:
    """One handover, sealed by the sending console's handover key to the
    receiving console's (docs/protocol.md, "Handover"). Base64url strings."""

    from_pk: str
    to_pk: str
    nonce: str
    ct: str = field(repr=False)

    def public(self) -> dict[str, str]:
        return {"from_pk": self.from_pk, "to_pk": self.to_pk, "nonce": self.nonce,
                "ct": self.ct}


@dataclass(slots=True)
class Transfer:
    from_staff: int
    to_staff: int
    offered_at: float
    # The sending page's end-to-end encrypted handover (domain/handover.py):
    # ciphertext only, dropped with the offer on decline, time-out or end.
    handover: HandoverBox | None = None


@dataclass(slots=True)
class Conversation:
    id: str
    pseudonym: str
    created_at: float
    profile: Profile
    state: State = State.WAITING
    epoch: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    message_count: int = 0
    paused_from: State | None = None
    paused_at: float | None = None
    ended_reason: EndReason | None = None
    # Last queue update sent to the youth: (position, eta_secs, at).
    last_pushed: tuple[int, int, float] | None = None
    lane: str = "general"
    returning_to: int | None = None  # staff id, in memory only, from a return passphrase
    personal_since: float | None = None
    reasons: set[str] = field(default_factory=set)  # contact-reason tags, counted at the end
    transfer: Transfer | None = None
    requests: dict[str, JoinRequest] = field(default_factory=dict)

    def youth(self) -> Member | None:
        for m in self.members.values():
            if m.role is Role.YOUTH:
                return m
        return None

    def staff_members(self) -> list[Member]:
        return [m for m in self.members.values() if m.role in STAFF_ROLES]

    def counsellors(self) -> list[Member]:
        return [m for m in self.members.values() if m.role is Role.COUNSELLOR]

    def online(self, exclude: str | None = None) -> list[Conn]:
        return [m.conn for m in self.members.values()
                if m.conn is not None and m.id != exclude]


@dataclass(slots=True)
class Counsellor:
    staff: StaffRef
    on_duty: bool = False
    conns: set[Conn] = field(default_factory=set)
    active: set[str] = field(default_factory=set)  # conversation ids
    offline_since: float | None = None
    # Each console's handover public key (domain/handover.py), by connection.
    handover_keys: dict[Conn, str] = field(default_factory=dict)
    # The queue state (ChatService._queue_version) this counsellor last saw, and when.
    snapshot_version: int = -1
    snapshot_at: float = float("-inf")

    @property
    def load(self) -> int:
        return len(self.active)
